"""Hostile and arbitrary bodies to every simulator REST endpoint over loopback.

Two passes over a live simulator: a sweep that puts every hostile value (numbers past every
range, literals JSON does not allow, deep nesting, control characters, long text, wrong types)
into every field of a valid request to every endpoint, and a hypothesis search over whole bodies
(plausible fields with a few hostile ones, any JSON value, any bytes). Every request must be
answered, and only with the envelope (200, success true or false), a validation problem (400),
401, 404, 413 or 429; nothing may be logged as a failure of the simulator meanwhile.
"""

from __future__ import annotations

import copy
import json
import logging
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

import anyio.from_thread
import attrs
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tradeforge_proto.core.jsoncodec import loads
from tradeforge_proto.core.operations import HttpRequest, HttpResponse, RateBucket
from tradeforge_proto.http import HttpClientConnection
from tradeforge_proto.limits import RateBudget
from tradeforge_sim.auth import DEFAULT_API_KEY, DEFAULT_USERNAME
from tradeforge_sim.contracts import default_catalogue
from tradeforge_sim.engine import FIRST_ORDER_ID, SimAccount
from tradeforge_sim.rest import ROUTES
from tradeforge_sim.server import SimServer
from tradeforge_sim.simulation import SimConfig

ANSWERS = frozenset({200, 400, 401, 404, 413, 429})
JSON = (("Content-Type", "application/json"),)
ENDPOINTS = sorted(ROUTES)
BUDGETS = {RateBucket.GENERAL: RateBudget(10**6, 60), RateBucket.HISTORY: RateBudget(10**6, 30)}
ACCOUNT = 20258288  # Position brackets
OCO_ACCOUNT = 20258289  # Auto OCO brackets, so bracket values reach their checks
ACCOUNTS = (
    SimAccount(id=ACCOUNT, name="PRAC-FUZZ-1", balance=Decimal("150000.00")),
    SimAccount(
        id=OCO_ACCOUNT, name="PRAC-FUZZ-2", balance=Decimal("50000.00"), auto_oco_brackets=True
    ),
)
FUZZ = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    # One simulator serves every example of a run, on purpose: state builds up as it would.
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)


class Raw(str):
    """JSON text put into a body as it is, valid or not."""


def encode(value: Any) -> str:
    """``value`` as JSON text, with ``Raw`` parts spliced in unchanged."""
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{encode(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(encode(v) for v in value) + "]"
    return json.dumps(value)


def exchange(port: int, request: HttpRequest) -> HttpResponse:
    """One request on a new loopback connection; fails when no whole answer comes back."""
    conn = HttpClientConnection(f"127.0.0.1:{port}")
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(conn.send_request(request))
        while True:
            response = conn.receive_data(sock.recv(65536))
            if response is not None:
                return response


def login(port: int) -> str:
    """A new token from the simulator on ``port``."""
    credentials = json.dumps({"userName": DEFAULT_USERNAME, "apiKey": DEFAULT_API_KEY})
    request = HttpRequest("POST", "/api/Auth/loginKey", JSON, credentials.encode())
    return str(loads(exchange(port, request).body)["token"])


class Failures(logging.Handler):
    """Keeps every record of ERROR and above: the simulator reporting a failure of its own."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@attrs.frozen
class Live:
    """A simulator serving on a loopback port, a token it issued, and the failures it logged."""

    port: int
    token: str
    failures: Failures

    def post(self, path: str, body: bytes | dict[str, Any], auth: str = "valid") -> HttpResponse:
        """POST ``body`` to ``path``; ``auth`` is "valid", "none" or a whole header value."""
        headers: tuple[tuple[str, str], ...] = JSON
        if auth != "none":
            value = f"Bearer {self._token_for(path)}" if auth == "valid" else auth
            headers = (*JSON, ("Authorization", value))
        data = body if isinstance(body, bytes) else encode(body).encode()
        return exchange(self.port, HttpRequest("POST", path, headers, data))

    def _token_for(self, path: str) -> str:
        """A fresh token for a logout, which ends the token it is sent with; else the shared one."""
        return login(self.port) if path.lower() == "/api/auth/logout" else self.token


@pytest.fixture
def live() -> Iterator[Live]:
    """A simulator of its own for each test, so orders from one test do not slow the next."""
    failures = Failures()
    logger = logging.getLogger("tradeforge.sim")
    logger.addHandler(failures)
    server = SimServer(SimConfig(budgets=BUDGETS, accounts=ACCOUNTS))
    try:
        with (
            anyio.from_thread.start_blocking_portal() as portal,
            portal.wrap_async_context_manager(server) as sim,
        ):
            yield Live(sim.port, login(sim.port), failures)
    finally:
        logger.removeHandler(failures)


def assert_still_serving(live: Live) -> None:
    """The simulator answers a plain request and logged no failure of its own."""
    response = live.post("/api/Account/search", {"onlyActiveAccounts": True})
    assert response.status == 200
    assert [a["id"] for a in loads(response.body)["accounts"]] == [ACCOUNT, OCO_ACCOUNT]
    assert not live.failures.records, live.failures.records


def assert_only_simulator_answers(response: HttpResponse) -> None:
    """The answer is one the simulator gives on purpose: never a 500."""
    assert response.status in ANSWERS, (response.status, response.body[:300])
    if response.status == 200:
        data = loads(response.body)
        assert type(data) is dict
        assert type(data["success"]) is bool
        assert type(data["errorCode"]) is int
        assert data["success"] == (data["errorCode"] == 0)
    elif response.status == 400:
        assert "errors" in loads(response.body)


# --- values ----------------------------------------------------------------------------------

NOW = datetime.now(UTC)
CONTRACTS = [spec.contract.id for spec in default_catalogue(NOW)]
MES = next(c for c in CONTRACTS if ".MES." in c)  # the active month comes first
EXPIRED = CONTRACTS[-1]


def stamp(hours: float) -> str:
    return (NOW + timedelta(hours=hours)).isoformat()


TIMES = [
    *(stamp(hours) for hours in (-2, -26, -24 * 40, -24 * 400, 1)),
    "2025-01-01T00:00:00Z",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59.9999999+14:00",
    "0001-01-01T00:00:00+14:00",
    "2025-13-01T00:00:00Z",
    "2025-06-01",
    "yesterday",
    "",
]
HOSTILE_NUMBERS = [
    "1E+300000",
    "-1E+300000",
    "1E+1000000000",
    "1e-400",
    "NaN",
    "-Infinity",
    "Infinity",
    "-0",
    "9" * 5000,
    "0." + "1" * 5000,
    "123456789012345678901234567890123456789",
    "18446744073709551616",
    "-9223372036854775809",
    "0x10",
    "+1",
    "01",
    "1.",
]
HOSTILE_TEXT = ['"\x00\x01\x1f"', '"\\ud800"', '"\\u0000\\n\\t"', '"\\x41"', "'single'", '"open']
EDGE_INTS = [0, -1, 1, 2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 2**53 + 1, 2**63 - 1, 2**63]
EDGE_INTS += [2**64 - 1, -(2**63)]
EDGE_FLOATS = [1e308, -1e308, 5e-324, 0.25, 0.1, 6000.25, 1e28, 7.9e28, 8e28, 1e9, 1e17, -0.25]
# Every value the sweep puts into every field, as JSON text.
HOSTILE = [
    *HOSTILE_NUMBERS,
    *HOSTILE_TEXT,
    *(json.dumps(n) for n in (0, -1, 2**31 - 1, 2**31, -(2**31) - 1, 2**63, 2**64 - 1)),
    *(json.dumps(n) for n in (1e308, 5e-324, 0.1, -0.25, 1e17, 1e28, 8e28)),
    *(json.dumps(t) for t in ("0001-01-01T00:00:00Z", "9999-12-31T23:59:59.9999999+14:00")),
    *(json.dumps(t) for t in ("0001-01-01T00:00:00+14:00", "2025-13-01T00:00:00Z")),
    '"1E+1000000000"',
    '"6000.25"',
    json.dumps(EXPIRED),
    '"CON.F.US.NOPE.Z25"',
    json.dumps("x" * 100_000),
    json.dumps("\x00\x7f\u202e\ufeff" * 1000),
    "[" * 100 + "]" * 100,
    "[" * 2000 + "]" * 2000,
    '{"a":' * 600 + "1" + "}" * 600,
    "null",
    "true",
    "[]",
    "{}",
    "[1,2,3]",
    '{"ticks":-8,"type":4}',
]

hostile = st.one_of(
    st.sampled_from(HOSTILE_NUMBERS).map(Raw),
    st.sampled_from(HOSTILE_TEXT).map(Raw),
    st.integers(1, 3000).map(lambda n: Raw("[" * n + "]" * n)),
    st.integers(1, 3000).map(lambda n: Raw('{"a":' * n + "1" + "}" * n)),
    st.tuples(st.characters(), st.integers(0, 50_000)).map(lambda t: t[0] * t[1]),
)
leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(EDGE_INTS),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(EDGE_FLOATS),
    st.text(max_size=40),
    st.sampled_from(TIMES + CONTRACTS),
    hostile,
)
anything = st.recursive(
    leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=10,
)


# --- the sweep: every hostile value in every field of a valid request ------------------------

QUERY_FILTER = {
    "accountId": ACCOUNT,
    "statuses": [1, 2],
    "contractId": MES,
    "createdAfter": stamp(-24),
    "createdBefore": stamp(1),
}
BRACKETS = {
    "stopLossBracket": {"ticks": -8, "type": 4},
    "takeProfitBracket": {"ticks": 8, "type": 1},
}
# Valid bodies per endpoint; for Order/place one per price path (the first is swept whole).
VALID: dict[str, list[dict[str, Any]]] = {
    "/api/auth/loginkey": [{"userName": DEFAULT_USERNAME, "apiKey": DEFAULT_API_KEY}],
    "/api/auth/loginapp": [
        {"userName": "u", "password": "p", "deviceId": "d", "appId": "a", "verifyKey": "v"}
    ],
    "/api/auth/validate": [{"ignored": 1}],
    "/api/auth/logout": [{"ignored": 1}],
    "/api/account/search": [{"onlyActiveAccounts": True}],
    "/api/contract/search": [{"live": False, "searchText": "MES"}],
    "/api/contract/searchbyid": [{"contractId": MES}],
    "/api/contract/available": [{"live": False}],
    "/api/history/retrievebars": [
        {
            "contractId": MES,
            "live": False,
            "startTime": stamp(-2),
            "endTime": stamp(0),
            "unit": 2,
            "unitNumber": 1,
            "limit": 50,
            "includePartialBar": True,
        }
    ],
    "/api/order/search": [
        {"accountId": ACCOUNT, "startTimestamp": stamp(-24), "endTimestamp": stamp(1)}
    ],
    "/api/order/searchopen": [{"accountId": ACCOUNT}],
    "/api/order/searchbyid": [{"accountId": ACCOUNT, "orderId": FIRST_ORDER_ID}],
    "/api/order/v2/query": [
        {
            "filter": QUERY_FILTER,
            "pageSize": 10,
            "pageOffset": 0,
            "sortBy": 1,
            "sortDirection": 1,
            "includeTotalCount": True,
        }
    ],
    "/api/order/place": [
        {
            "accountId": OCO_ACCOUNT,
            "contractId": MES,
            "type": 1,
            "side": 0,
            "size": 1,
            "limitPrice": 1000.25,
            "stopPrice": None,
            "trailPrice": None,
            "customTag": None,
            **BRACKETS,
        },
        {"accountId": ACCOUNT, "contractId": MES, "type": 2, "side": 1, "size": 1},
        {"accountId": ACCOUNT, "contractId": MES, "type": 4, "side": 1, "size": 1, "stopPrice": 1},
        {"accountId": ACCOUNT, "contractId": MES, "type": 5, "side": 1, "size": 1, "trailPrice": 1},
    ],
    "/api/order/cancel": [{"accountId": ACCOUNT, "orderId": FIRST_ORDER_ID}],
    "/api/order/modify": [
        {
            "accountId": ACCOUNT,
            "orderId": FIRST_ORDER_ID,
            "size": 2,
            "limitPrice": 1000.5,
            "stopPrice": None,
            "trailPrice": None,
        }
    ],
    "/api/position/searchopen": [{"accountId": ACCOUNT}],
    "/api/position/closecontract": [{"accountId": ACCOUNT, "contractId": MES}],
    "/api/position/partialclosecontract": [{"accountId": ACCOUNT, "contractId": MES, "size": 1}],
    "/api/trade/search": [
        {"accountId": ACCOUNT, "startTimestamp": stamp(-24), "endTimestamp": stamp(1)}
    ],
}
# Fields swept in the later bodies of an endpoint (the first body has all of its own swept).
LATER_SLOTS: Final = (("size",), ("limitPrice",), ("stopPrice",), ("trailPrice",))


def slots(body: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The path to every field of ``body``, nested objects' fields included."""
    found = []
    for name, value in body.items():
        found.append((*prefix, name))
        if isinstance(value, dict):
            found.extend(slots(value, (*prefix, name)))
    return found


def replaced(body: dict[str, Any], slot: tuple[str, ...], value: Any) -> dict[str, Any]:
    """A copy of ``body`` with the field at ``slot`` set to ``value``."""
    out = copy.deepcopy(body)
    target = out
    for name in slot[:-1]:
        target = target[name]
    target[slot[-1]] = value
    return out


def resting_order(live: Live) -> int:
    """The id of a new working buy limit order far below the market."""
    body = {"accountId": ACCOUNT, "contractId": MES, "type": 1, "side": 0, "size": 1}
    answer = loads(live.post("/api/order/place", {**body, "limitPrice": 1000.25}).body)
    assert answer["success"], answer
    return int(answer["orderId"])


def open_position(live: Live) -> None:
    """Make sure the account holds a long position of a few contracts."""
    body = {"accountId": ACCOUNT, "contractId": MES, "type": 2, "side": 0, "size": 3}
    assert loads(live.post("/api/order/place", body).body)["success"]


def unchanged(live: Live, body: dict[str, Any]) -> dict[str, Any]:
    """Nothing to prepare: the valid body as it is."""
    return body


def with_working_order(live: Live, body: dict[str, Any]) -> dict[str, Any]:
    """The body aimed at a new working order."""
    return {**body, "orderId": resting_order(live)}


def with_position(live: Live, body: dict[str, Any]) -> dict[str, Any]:
    """The body, once the account holds a position to close."""
    open_position(live)
    return body


# What an endpoint needs in place for its valid body to do something.
Prepare = Callable[[Live, dict[str, Any]], dict[str, Any]]
PREPARE: dict[str, Prepare] = {
    "/api/order/cancel": with_working_order,
    "/api/order/modify": with_working_order,
    "/api/position/closecontract": with_position,
    "/api/position/partialclosecontract": with_position,
}


@pytest.mark.parametrize("path", ENDPOINTS)
def test_every_hostile_value_in_every_field_gets_one_of_the_simulators_answers(
    live: Live, path: str
):
    prepare = PREPARE.get(path, unchanged)
    for index, body in enumerate(VALID[path]):
        assert_only_simulator_answers(live.post(path, prepare(live, body)))
        swept = slots(body) if index == 0 else [s for s in LATER_SLOTS if s[0] in body]
        for slot in swept:
            for value in HOSTILE:
                response = live.post(path, replaced(prepare(live, body), slot, Raw(value)))
                assert_only_simulator_answers(response)
    assert_still_serving(live)


# --- the search: whole bodies ----------------------------------------------------------------

prices = st.one_of(
    st.decimals(min_value=-100, max_value=30_000, places=2).map(float),
    st.sampled_from(EDGE_FLOATS + EDGE_INTS),
)
ticks = st.one_of(st.integers(-50, 50), st.sampled_from(EDGE_INTS))
bracket = st.fixed_dictionaries({"ticks": ticks, "type": st.integers(-1, 8)})
order_filter = st.fixed_dictionaries(
    {"accountId": st.sampled_from([ACCOUNT, OCO_ACCOUNT])},
    optional={
        "statuses": st.lists(st.integers(-1, 8), max_size=4),
        "contractId": st.sampled_from(CONTRACTS),
        "createdAfter": st.sampled_from(TIMES),
        "createdBefore": st.sampled_from(TIMES),
    },
)
FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "userName": st.sampled_from(["trader", "TRADER", "", "nobody"]),
    "apiKey": st.sampled_from([DEFAULT_API_KEY, "wrong", ""]),
    "password": st.text(max_size=8),
    "deviceId": st.text(max_size=8),
    "appId": st.text(max_size=8),
    "verifyKey": st.text(max_size=8),
    "onlyActiveAccounts": st.booleans(),
    "live": st.booleans(),
    "searchText": st.sampled_from(["MES", "es", "", "Gold", "CON.F"]),
    "contractId": st.sampled_from([*CONTRACTS, MES, MES, "CON.F.US.NOPE.Z25", ""]),
    "accountId": st.sampled_from([ACCOUNT, ACCOUNT, OCO_ACCOUNT, 1, -1]),
    "orderId": st.one_of(
        st.integers(FIRST_ORDER_ID, FIRST_ORDER_ID + 50), st.sampled_from(EDGE_INTS)
    ),
    "startTime": st.sampled_from(TIMES),
    "endTime": st.sampled_from(TIMES),
    "startTimestamp": st.sampled_from(TIMES),
    "endTimestamp": st.sampled_from(TIMES),
    "unit": st.integers(-1, 8),
    "unitNumber": st.one_of(st.integers(-1, 100), st.sampled_from(EDGE_INTS)),
    "limit": st.one_of(st.integers(-1, 20_001), st.sampled_from(EDGE_INTS)),
    "includePartialBar": st.booleans(),
    "type": st.sampled_from([1, 1, 2, 2, 4, 5, 6, 7, 0, 3, -1, 8]),
    "side": st.integers(-1, 2),
    "size": st.one_of(st.integers(-2, 10), st.sampled_from(EDGE_INTS)),
    "limitPrice": prices,
    "stopPrice": prices,
    "trailPrice": prices,
    "customTag": st.one_of(st.text(max_size=20), st.integers(0, 5000).map(lambda n: "t" * n)),
    "stopLossBracket": bracket,
    "takeProfitBracket": bracket,
    "filter": order_filter,
    "pageSize": st.one_of(st.integers(-1, 200), st.sampled_from(EDGE_INTS)),
    "pageOffset": st.one_of(st.integers(-1, 200), st.sampled_from(EDGE_INTS)),
    "sortBy": st.integers(-1, 3),
    "sortDirection": st.integers(-1, 3),
    "includeTotalCount": st.booleans(),
}


@st.composite
def endpoint_bodies(draw: st.DrawFn, path: str) -> bytes:
    """A JSON object for ``path``: most of its fields plausible, a few hostile, some extra."""
    fields = sorted({name for body in VALID[path] for name in body} & FIELDS.keys())
    body: dict[str, Any] = {}
    for name in fields:
        if draw(st.integers(0, 19)):  # a field is left out now and then
            body[name] = draw(FIELDS[name])
    hostile_fields: list[str] = []
    mutate: bool = draw(st.booleans())
    if fields and mutate:
        hostile_fields = draw(
            st.lists(st.sampled_from(fields), min_size=1, max_size=2, unique=True)
        )
    for name in hostile_fields:
        body[name] = draw(anything)
    body.update(draw(st.dictionaries(st.sampled_from(sorted(FIELDS)), anything, max_size=1)))
    return encode(body).encode()


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, bytes, str]:
    """An endpoint's path (in either case), a body for it and how the request is authorized."""
    path = draw(st.sampled_from(ENDPOINTS))
    kind = draw(st.integers(0, 9))
    if kind < 7:
        body = draw(endpoint_bodies(path))
    elif kind < 9:
        body = encode(draw(anything)).encode()
    else:
        body = draw(st.binary(max_size=2000))
    auth = draw(st.sampled_from(["valid"] * 9 + ["none", "Bearer made-up", "Basic x"]))
    return (path.upper() if draw(st.booleans()) else path), body, auth


@FUZZ
@given(request=requests())
def test_every_endpoint_answers_any_body_with_one_of_the_simulators_answers(
    live: Live, request: tuple[str, bytes, str]
):
    path, body, auth = request
    response = live.post(path, body, auth)
    event(f"HTTP {response.status}")
    assert_only_simulator_answers(response)
    assert not live.failures.records, live.failures.records
