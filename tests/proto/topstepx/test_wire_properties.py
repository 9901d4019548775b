"""Properties of the TopstepX wire mapping and of the response parsers."""

from __future__ import annotations

import json
import math
import types
import typing
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradeforge_proto.core import jsoncodec
from tradeforge_proto.core.enums import OpenIntEnum
from tradeforge_proto.core.errors import LocalProtocolError, RateLimited, TradeForgeError
from tradeforge_proto.core.models import (
    Account,
    Bar,
    Contract,
    DepthUpdate,
    Fill,
    MarketTrade,
    Order,
    OrderPage,
    Position,
    Quote,
)
from tradeforge_proto.core.secret import Secret
from tradeforge_proto.providers.topstepx import rest, wire

from .support import OPERATIONS, SUCCESS_FIXTURES, fixture_json

# Deterministic runs, no example database written into the working tree.
PROPERTY = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)

# At most 12 significant digits and a bounded exponent: exactly representable by a JSON double.
DECIMALS = st.builds(
    lambda sign, digits, exponent: Decimal((sign, tuple(digits), exponent)),
    st.integers(0, 1),
    st.lists(st.integers(0, 9), min_size=1, max_size=12),
    st.integers(-9, 6),
)

TIMESTAMPS = st.datetimes(
    min_value=datetime(1970, 1, 1),
    max_value=datetime(2200, 12, 31),
    timezones=st.just(UTC),
)


def open_enum(cls: type[OpenIntEnum]) -> st.SearchStrategy[OpenIntEnum]:
    """Documented members and undocumented values alike."""
    return st.one_of(st.sampled_from(list(cls)), st.integers(-1000, 10**6).map(cls))


def strategy_for(hint: Any) -> st.SearchStrategy[Any]:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        inner = [a for a in args if a is not type(None)]
        assert len(inner) == 1, hint
        return st.none() | strategy_for(inner[0])
    if isinstance(hint, type) and issubclass(hint, OpenIntEnum):
        return open_enum(hint)
    if hint is bool:
        return st.booleans()
    if hint is int:
        return INT64
    if hint is str:
        return st.text(max_size=30)
    if hint is Decimal:
        return DECIMALS
    if hint is datetime:
        return TIMESTAMPS
    raise AssertionError(f"no strategy for {hint!r}")


def models(cls: type[Any]) -> st.SearchStrategy[Any]:
    hints = typing.get_type_hints(cls)
    return st.builds(cls, **{f.name: strategy_for(hints[f.name]) for f in attrs.fields(cls)})


def outside_fields(model: Any) -> dict[str, Any]:
    """Fields the hubs send beside the entity rather than inside it."""
    if isinstance(model, Quote | MarketTrade | DepthUpdate):
        return {"contract_id": model.contract_id}
    return {}


def test_every_wire_model_is_exercised() -> None:
    assert set(wire.WIRE_MODELS) == {
        Account,
        Contract,
        Order,
        Position,
        Fill,
        Bar,
        Quote,
        MarketTrade,
        DepthUpdate,
    }


@pytest.mark.parametrize("cls", wire.WIRE_MODELS, ids=lambda c: c.__name__)
@PROPERTY
@given(data=st.data())
def test_models_round_trip_through_json(cls: type[Any], data: st.DataObject) -> None:
    model = data.draw(models(cls))
    outside = outside_fields(model)

    rest_shape = wire.to_wire(model)
    if outside:
        assert "contractId" not in rest_shape
    decoded = jsoncodec.loads(jsoncodec.dumps(rest_shape))
    assert wire.from_wire(cls, decoded, **outside) == model

    hub_shape = wire.to_wire(model, omit_none=True)
    assert None not in hub_shape.values()
    decoded = jsoncodec.loads(jsoncodec.dumps(hub_shape))
    assert wire.from_wire(cls, decoded, **outside) == model


# The gateway's own field names, per model (as in the reference and the hub payloads).
WIRE_KEYS: dict[type[Any], set[str]] = {
    Account: {"id", "name", "balance", "canTrade", "isVisible", "simulated"},
    Contract: {"id", "name", "description", "tickSize", "tickValue", "activeContract", "symbolId"},
    Order: {
        "id",
        "accountId",
        "contractId",
        "symbolId",
        "creationTimestamp",
        "updateTimestamp",
        "status",
        "type",
        "side",
        "size",
        "limitPrice",
        "stopPrice",
        "fillVolume",
        "filledPrice",
        "customTag",
        "trailPrice",
        "trailDistance",
        "parentOrderId",
        "linkedOrderId",
    },
    Position: {
        "id",
        "accountId",
        "contractId",
        "creationTimestamp",
        "type",
        "size",
        "averagePrice",
        "contractDisplayName",
    },
    Fill: {
        "id",
        "accountId",
        "contractId",
        "creationTimestamp",
        "price",
        "profitAndLoss",
        "fees",
        "side",
        "size",
        "voided",
        "orderId",
        "commissions",
    },
    Bar: {"t", "o", "h", "l", "c", "v"},
    Quote: {
        "symbol",
        "symbolName",
        "lastPrice",
        "bestBid",
        "bestAsk",
        "change",
        "changePercent",
        "open",
        "high",
        "low",
        "volume",
        "lastUpdated",
        "timestamp",
    },
    MarketTrade: {"symbolId", "price", "timestamp", "type", "volume"},
    DepthUpdate: {"timestamp", "type", "price", "volume", "currentVolume"},
}


@pytest.mark.parametrize("cls", wire.WIRE_MODELS, ids=lambda c: c.__name__)
@settings(max_examples=10, deadline=None, derandomize=True, database=None)
@given(data=st.data())
def test_wire_field_names_are_the_gateways(cls: type[Any], data: st.DataObject) -> None:
    model = data.draw(models(cls))
    shape = wire.to_wire(model)
    assert set(shape) == WIRE_KEYS[cls]
    # Enums travel as plain integers and timestamps as UTC 'Z' strings.
    hints = typing.get_type_hints(cls)
    for field in attrs.fields(cls):
        if wire.wire_name(cls, field.name) not in shape:
            continue
        value = shape[wire.wire_name(cls, field.name)]
        original = getattr(model, field.name)
        if isinstance(original, OpenIntEnum):
            assert type(value) is int
            assert value == int(original)
        elif isinstance(original, datetime):
            assert isinstance(value, str)
            assert value.endswith("Z")
            assert wire.parse_timestamp(value) == original
        else:
            assert value == original, (field.name, hints[field.name])


def test_to_wire_formats_fixture_entities_back() -> None:
    raw = fixture_json("order_search.json")["orders"][0]
    order = wire.from_wire(Order, raw)
    shape = wire.to_wire(order)
    assert shape["creationTimestamp"] == "2025-07-18T21:00:01.268009Z"
    assert shape["updateTimestamp"] == "2025-07-18T21:00:01.496279Z"
    assert shape["status"] == 2
    assert type(shape["status"]) is int
    assert json.loads(jsoncodec.dumps(shape))["filledPrice"] == 6335.25


# --- parsers never fail with anything but a TradeForgeError ------------------------------------

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)

ALL_WIRE_KEYS = sorted(set().union(*WIRE_KEYS.values()))
PAYLOAD_KEYS = [
    "token",
    "newToken",
    "accounts",
    "contracts",
    "contract",
    "bars",
    "orders",
    "order",
    "orderId",
    "positions",
    "trades",
    "totalCount",
]
ENTITY_LIKE = st.dictionaries(
    st.sampled_from(ALL_WIRE_KEYS), JSON_SCALARS | st.lists(JSON_SCALARS, max_size=2), max_size=8
)
PAYLOADS = st.dictionaries(
    st.sampled_from(PAYLOAD_KEYS),
    JSON_SCALARS | ENTITY_LIKE | st.lists(ENTITY_LIKE, max_size=2),
    max_size=3,
)
ENVELOPES = st.builds(
    lambda head, payload: {**payload, **head},
    st.fixed_dictionaries(
        {"success": st.booleans() | JSON_SCALARS, "errorCode": st.integers(-5, 50) | JSON_SCALARS},
        optional={"errorMessage": st.none() | st.text(max_size=20)},
    ),
    PAYLOADS,
)

HEADER_VALUES = st.text(max_size=40).filter(lambda v: "\r" not in v and "\n" not in v)
# HTTP-date lookalikes with arbitrary numbers in every position.
HTTP_DATES = st.builds(
    "{}, {} {} {} {}:{}:{} {}".format,
    st.sampled_from(["Wed", "Sun", "xyz"]),
    st.integers(-(10**20), 10**20),
    st.sampled_from(["Jan", "Oct", "Dec", "Foo"]),
    st.integers(-(10**20), 10**20),
    st.integers(-(10**20), 10**20),
    st.integers(-(10**20), 10**20),
    st.integers(-(10**20), 10**20),
    st.sampled_from(["GMT", "GMT", "GMT", "UTC", "-0000"]),
)
HEADERS = st.dictionaries(
    st.sampled_from(["Retry-After", "Date", "Content-Type", "X-Other"]),
    HEADER_VALUES
    | HTTP_DATES
    | st.sampled_from(["7", "Wed, 21 Oct 2015 07:28:00 GMT", "Thu, 01 Jan 1970 00:00:00 -0000"]),
)

RESULT_TYPES: dict[str, type[Any] | None] = {
    "Auth/loginKey": Secret,
    "Auth/loginApp": Secret,
    "Auth/validate": Secret,
    "Auth/logout": None,
    "Account/search": list,
    "Contract/search": list,
    "Contract/searchById": Contract,
    "Contract/available": list,
    "History/retrieveBars": list,
    "Order/search": list,
    "Order/searchOpen": list,
    "Order/searchById": Order,
    "Order/v2/query": OrderPage,
    "Order/place": int,
    "Order/cancel": None,
    "Order/modify": None,
    "Position/searchOpen": list,
    "Position/closeContract": None,
    "Position/partialCloseContract": None,
    "Trade/search": list,
    "Status/ping": str,
}


def parse_everywhere(status: int, headers: Any, body: bytes) -> None:
    """Feed one response to every endpoint; only typed errors may come out."""
    for endpoint in rest.ENDPOINTS:
        op = OPERATIONS[endpoint]
        try:
            result = op.parse(status, headers, body)
        except TradeForgeError:
            continue
        except Exception as exc:
            raise AssertionError(
                f"{endpoint} raised {type(exc).__name__}: {exc!r} for status {status}, "
                f"headers {headers!r}, body {body[:200]!r}"
            ) from exc
        assert 200 <= status < 300, f"{endpoint} accepted HTTP {status}"
        expected = RESULT_TYPES[endpoint]
        if expected is None:
            assert result is None
        else:
            assert isinstance(result, expected), (endpoint, result)
            assert not isinstance(result, bool)


def test_result_types_cover_every_endpoint() -> None:
    assert sorted(RESULT_TYPES) == sorted(rest.ENDPOINTS)


@PROPERTY
@given(value=JSON_VALUES)
def test_any_json_body(value: Any) -> None:
    parse_everywhere(200, {"Content-Type": "application/json"}, json.dumps(value).encode())


@PROPERTY
@given(envelope=ENVELOPES)
def test_any_envelope(envelope: dict[str, Any]) -> None:
    parse_everywhere(200, (), json.dumps(envelope).encode())


@PROPERTY
@given(
    status=st.sampled_from([200, 204, 400, 401, 429, 500, 503]) | st.integers(100, 599),
    headers=HEADERS,
    body=st.binary(max_size=300) | JSON_VALUES.map(lambda v: json.dumps(v).encode()),
)
def test_any_status_headers_and_bytes(status: int, headers: dict[str, str], body: bytes) -> None:
    parse_everywhere(status, headers, body)


@PROPERTY
@given(
    retry_after=HTTP_DATES | HEADER_VALUES | st.floats().map(str),
    date=HTTP_DATES | HEADER_VALUES,
)
def test_rate_limit_hint_is_a_number_or_none(retry_after: str, date: str) -> None:
    headers = {"Retry-After": retry_after, "Date": date}
    for endpoint in rest.ENDPOINTS:
        try:
            OPERATIONS[endpoint].parse(429, headers, b"")
        except RateLimited as exc:
            hint = exc.retry_after
            assert hint is None or (math.isfinite(hint) and hint >= 0)
        else:
            raise AssertionError(f"{endpoint} accepted a 429")


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found: list[tuple[Any, ...]] = []
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return found
    for key, child in items:
        found.append((*prefix, key))
        found.extend(_paths(child, (*prefix, key)))
    return found


FIXTURE_DOCUMENTS = {
    endpoint: fixture_json(name)
    for endpoint, name in SUCCESS_FIXTURES.items()
    if endpoint != "Status/ping"
}
MUTATION_TARGETS = [
    (endpoint, path) for endpoint, doc in FIXTURE_DOCUMENTS.items() for path in _paths(doc)
]


@PROPERTY
@given(
    target=st.sampled_from(MUTATION_TARGETS),
    replacement=st.one_of(st.just("<delete>"), JSON_VALUES),
)
def test_mutated_success_answers(target: tuple[str, tuple[Any, ...]], replacement: Any) -> None:
    endpoint, path = target
    document = json.loads(json.dumps(FIXTURE_DOCUMENTS[endpoint]))
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    if replacement == "<delete>":
        del parent[path[-1]]
    else:
        parent[path[-1]] = replacement
    parse_everywhere(200, {"Content-Type": "application/json"}, json.dumps(document).encode())


@PROPERTY
@given(
    text=st.text(max_size=40)
    | st.from_regex(r"\A\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})?\Z")
)
def test_timestamps_are_utc_or_refused(text: str) -> None:
    try:
        parsed = wire.parse_timestamp(text)
    except ValueError:
        return
    assert parsed.utcoffset() is not None
    assert parsed.utcoffset().total_seconds() == 0


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_timestamp_beyond_the_utc_range_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="out of range"):
        wire.parse_timestamp(text)
    with pytest.raises(LocalProtocolError, match="out of range"):
        wire.format_timestamp(datetime.fromisoformat(text))


@PROPERTY
@given(moment=TIMESTAMPS)
def test_timestamp_format_round_trips(moment: datetime) -> None:
    text = wire.format_timestamp(moment)
    assert text.endswith("Z")
    assert wire.parse_timestamp(text) == moment
