"""The published ``/ws/stream`` schema describes every message the service sends and accepts."""

from __future__ import annotations

import enum
import json
import types
import typing
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import anyio
import attrs
import jsonschema_rs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeforge_anyio.service.fanout import EVENT_TYPES, FanoutClient, event_message, message_text
from tradeforge_anyio.service.wsschema import SCHEMA_PATH, stream_schema
from tradeforge_proto.core import events
from tradeforge_proto.core.enums import OpenIntEnum, OrderSide
from tradeforge_proto.core.errors import TradeForgeError
from tradeforge_proto.core.models import Fill
from tradeforge_proto.core.subscriptions import Channel, Subscription

from .test_ws import ACCOUNT, eventually, market, receive, send, serving

pytestmark = pytest.mark.anyio


def validator(part: str) -> Any:
    """A validator of one of the document's definitions, resolved within the document."""
    document = stream_schema()
    return jsonschema_rs.validator_for(
        {"$defs": document["$defs"], "$ref": f"#/$defs/{part}"}, validate_formats=True
    )


SERVER = validator("ServerMessage")
CLIENT = validator("ClientMessage")


def assert_valid(check: Any, message: Any) -> None:
    errors = [f"{e.instance_path}: {e.message}" for e in check.iter_errors(message)]
    assert not errors, (message, errors[:3])


def test_the_document_is_a_valid_schema_naming_every_event_type() -> None:
    document = stream_schema()
    assert jsonschema_rs.meta.is_valid(document)
    forms = document["$defs"]["ServerMessage"]["oneOf"]
    named = [form["properties"]["event_type"]["const"] for form in forms]
    assert len(named) == len(set(named))
    every_event = set(typing.get_args(events.StreamEvent))
    assert every_event == set(EVENT_TYPES), "each stream event has its own event_type"
    assert set(named) == {
        *EVENT_TYPES.values(),
        "SUBSCRIBED_ACK",
        "UNSUBSCRIBED_ACK",
        "ERROR",
        "SLOW_CONSUMER",
    }
    assert {"SUBSCRIBED", "SUBSCRIPTION_FAILED", "RESYNC_FAILED", "FEED_GAP"} <= set(named)


def _subscriptions() -> st.SearchStrategy[Subscription]:
    market_sub = st.builds(
        Subscription,
        st.sampled_from([c for c in Channel if c.is_market]),
        st.text(min_size=1, max_size=20),
    )
    user_sub = st.builds(
        Subscription,
        st.sampled_from([c for c in Channel if not c.is_market and c is not Channel.ACCOUNTS]),
        st.integers(1, 2**40),
    )
    return market_sub | user_sub | st.just(Subscription.accounts())


_VALUES: dict[Any, st.SearchStrategy[Any]] = {
    # Values as the decoders make them: finite decimals, aware times, sound subscriptions.
    Decimal: st.decimals(allow_nan=False, allow_infinity=False),
    datetime: st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5))])),
    Subscription: _subscriptions(),
    TradeForgeError: st.builds(TradeForgeError, st.text(max_size=30)),
    str: st.text(max_size=30),
    int: st.integers(-(2**53), 2**53),
    float: st.floats(allow_nan=False, allow_infinity=False),
    bool: st.booleans(),
    type(None): st.none(),
}


def values(hint: Any) -> st.SearchStrategy[Any]:
    """Any value of a model field's type, models built field by field."""
    if hint in _VALUES:
        return _VALUES[hint]
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return st.one_of([values(arg) for arg in args])
    if typing.get_origin(hint) is tuple:
        return st.lists(values(args[0]), max_size=3).map(tuple)
    if isinstance(hint, type) and issubclass(hint, OpenIntEnum):
        # Known members, and values a provider may add later (kept as UNKNOWN_<n>).
        return st.sampled_from(list(hint)) | st.integers(100, 10**6).map(hint)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return st.sampled_from(list(hint))
    assert attrs.has(hint), hint
    fields = typing.get_type_hints(hint)
    return st.builds(hint, **{f.name: values(fields[f.name]) for f in attrs.fields(hint)})


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_every_event_message_validates(data: st.DataObject) -> None:
    event = data.draw(st.one_of([values(cls) for cls in EVENT_TYPES]))
    message = json.loads(message_text(event_message(event)))
    assert message["event_type"] == EVENT_TYPES[type(event)]
    assert_valid(SERVER, message)


def test_the_schema_tells_a_sent_message_from_a_wrong_one() -> None:
    good = {
        "event_type": "ERROR",
        "data": {"message": "unknown action 'watch': 'subscribe' or 'unsubscribe'"},
    }
    assert_valid(SERVER, good)
    wrong = [
        {"event_type": "ERROR", "data": {}},
        {"event_type": "QUOTE", "data": {"contract_id": "X", "last_price": 1.5}},
        {"event_type": "NOT_A_TYPE", "data": {}},
        {"event_type": "SLOW_CONSUMER", "data": {"queued": -1, "limit": 4}},
    ]
    for message in wrong:
        assert not SERVER.is_valid(message), message


def test_client_requests_the_service_acts_on_match_the_schema() -> None:
    accepted = [
        {"action": "subscribe", "market_data": market("CON.F.US.MES.Z26", "QUOTE", "DEPTH")},
        {
            "action": "unsubscribe",
            "user_data": {"provider_account_ids": ["20258288", 7], "data_types": ["USER_TRADE"]},
        },
    ]
    for request in accepted:
        assert_valid(CLIENT, request)
    refused = [
        {"action": "watch", "market_data": market("X", "QUOTE")},
        {"action": "subscribe"},
        {"action": "subscribe", "market_data": market("X", "BOOK")},
        {"action": "subscribe", "market_data": {"provider_contract_ids": ["X"]}},
        {"action": "subscribe", "user_data": {"provider_account_ids": [0], "data_types": []}},
    ]
    for request in refused:
        assert not CLIENT.is_valid(request), request


async def test_every_message_a_live_session_receives_validates() -> None:
    """Market data, account data, lifecycle events, acknowledgements and errors from the
    service on the simulator: each one matches the document the service itself publishes."""
    async with serving() as service:
        served = await service.http.get(SCHEMA_PATH, headers={"Authorization": ""})
        assert served.status_code == 200
        assert served.json() == json.loads(json.dumps(stream_schema()))
        mes = await service.mes()
        seen: dict[str, int] = {}
        async with service.connect() as ws:

            async def read_until(wanted: set[str]) -> None:
                while not wanted <= seen.keys():
                    message = await receive(ws)
                    assert_valid(SERVER, message)
                    seen[message["event_type"]] = seen.get(message["event_type"], 0) + 1

            user = {
                "provider_account_ids": [str(ACCOUNT)],
                "data_types": ["ORDER_UPDATE", "POSITION_UPDATE", "USER_TRADE", "ACCOUNT_UPDATE"],
            }
            requests: list[dict[str, Any]] = [
                {"action": "subscribe", "market_data": market(mes, "QUOTE", "DEPTH", "TRADE")},
                {"action": "subscribe", "user_data": user},
            ]
            for request in requests:
                assert_valid(CLIENT, request)
                await send(ws, request)
            await read_until({"SUBSCRIBED_ACK", "SUBSCRIBED", "QUOTE", "DEPTH", "TRADE"})
            stream = service.fanout.stream
            assert stream is not None
            await eventually(lambda: stream.state("user").name == "CONNECTED")
            await eventually(lambda: Subscription.fills(ACCOUNT) in stream.subscriptions)
            order = {"account_id": ACCOUNT, "contract_id": mes, "side": "BUY", "type": "MARKET"}
            placed = await service.http.post("/orders", json={**order, "size": 1})
            assert placed.status_code == 201, placed.text
            await read_until({"ORDER_UPDATE", "USER_TRADE", "POSITION_UPDATE", "ACCOUNT_UPDATE"})
            closed = await service.http.post(
                "/positions/close", json={"account_id": ACCOUNT, "contract_id": mes}
            )
            assert closed.status_code in (200, 204), closed.text
            await send(ws, {"action": "watch"})
            await read_until({"ERROR"})
            leave = {"action": "unsubscribe", "market_data": market(mes, "DEPTH")}
            assert_valid(CLIENT, leave)
            await send(ws, leave)
            await read_until({"UNSUBSCRIBED_ACK"})
            with anyio.move_on_after(0.5):  # whatever else is already on its way
                while True:
                    message = await receive(ws)
                    assert_valid(SERVER, message)
        assert seen["POSITION_UPDATE"] >= 1


async def test_the_lag_warning_a_slow_client_gets_validates() -> None:
    client = FanoutClient(1, max_events=4)
    fills = [
        events.FillReceived(
            Fill(
                id=n,
                account_id=ACCOUNT,
                contract_id="CON.F.US.MES.Z26",
                created_at=datetime.now(UTC),
                price=Decimal("6150.25"),
                side=OrderSide.BUY,
                size=1,
                order_id=n,
            )
        )
        for n in range(1, 4)
    ]
    for fill in fills:
        client.push(fill)
    sent = [json.loads(text) for text in await client.next_batch()]
    assert [m["event_type"] for m in sent] == ["SLOW_CONSUMER", *["USER_TRADE"] * 3]
    for message in sent:
        assert_valid(SERVER, message)
