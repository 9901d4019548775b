"""Decoding of every hub event and the hub methods, on payloads shaped as the gateway sends."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeforge_proto.core import (
    DepthType,
    LocalProtocolError,
    OrderStatus,
    PositionSide,
    RemoteProtocolError,
    TradeForgeError,
    TradeSide,
)
from tradeforge_proto.core.events import (
    AccountUpdated,
    DepthReceived,
    FillReceived,
    MarketTradeReceived,
    OrderUpdated,
    PositionUpdated,
    QuoteUpdated,
    SessionLoggedOut,
)
from tradeforge_proto.core.models import DepthUpdate, MarketTrade, Quote
from tradeforge_proto.core.slots import slot_setters
from tradeforge_proto.core.subscriptions import Channel, Subscription
from tradeforge_proto.providers.topstepx.hubs import MarketHub, UserHub, hubs_for
from tradeforge_proto.providers.topstepx.wire import from_wire

ES = "CON.F.US.EP.U25"
ORDER = {
    "id": 2934939816,
    "accountId": 20258288,
    "contractId": "CON.F.US.MYM.M26",
    "symbolId": "F.US.MYM",
    "creationTimestamp": "2026-05-06T13:36:03.6112156+00:00",
    "updateTimestamp": "2026-05-06T13:36:03.6112156+00:00",
    "status": 6,
    "type": 2,
    "side": 0,
    "size": 15,
    "fillVolume": 0,
}
TRADE = {
    "id": 2555492505,
    "accountId": 20258288,
    "contractId": "CON.F.US.MYM.M26",
    "creationTimestamp": "2026-05-06T13:36:03.6185676+00:00",
    "price": 49909,
    "fees": 5.55,
    "commissions": 3.75,
    "side": 0,
    "size": 15,
    "voided": False,
    "orderId": 2934939816,
}
POSITION = {
    "id": 6124,
    "accountId": 20258288,
    "contractId": "CON.F.US.MYM.M26",
    "contractDisplayName": "MYMM26",
    "creationTimestamp": "2026-05-06T13:36:03.62+00:00",
    "type": 1,
    "size": 15,
    "averagePrice": 49909,
}
ACCOUNT = {
    "id": 20258288,
    "name": "150KTC-V2-478426-52758441",
    "balance": 150175.38,
    "canTrade": True,
    "isVisible": True,
    "simulated": True,
}


@pytest.fixture
def user() -> UserHub:
    return UserHub("https://rtc.topstepx.com/hubs/user")


@pytest.fixture
def market() -> MarketHub:
    return MarketHub("https://rtc.topstepx.com/hubs/market")


@pytest.mark.parametrize(
    "shape",
    [
        lambda e: (e,),
        lambda e: ({"action": 1, "data": e},),
        lambda e: ([{"action": 1, "data": e}],),
        lambda e: ([e],),
    ],
    ids=["bare", "envelope", "list-of-envelopes", "list-of-entities"],
)
def test_user_events_in_every_shape(user, shape):
    (event,) = user.decode("GatewayUserOrder", shape(ORDER))
    assert isinstance(event, OrderUpdated)
    assert event.order.id == 2934939816
    assert event.order.status is OrderStatus.PENDING
    assert event.order.limit_price is None  # left out on the stream, not an error
    assert event.order.created_at == datetime(2026, 5, 6, 13, 36, 3, 611215, tzinfo=UTC)


def test_each_user_event_type(user):
    (fill,) = user.decode("GatewayUserTrade", ({"action": 0, "data": TRADE},))
    assert isinstance(fill, FillReceived)
    assert fill.fill.profit_and_loss is None
    assert fill.fill.commissions == Decimal("3.75")
    (account,) = user.decode("GatewayUserAccount", ({"action": 1, "data": ACCOUNT},))
    assert isinstance(account, AccountUpdated)
    assert account.account.balance == Decimal("150175.38")
    (position,) = user.decode("GatewayUserPosition", ({"action": 1, "data": POSITION},))
    assert isinstance(position, PositionUpdated)
    assert position.position.side is PositionSide.LONG
    assert not position.is_flat


def test_flat_position_has_size_zero_even_without_type_or_price(user):
    flat = {k: v for k, v in POSITION.items() if k not in ("type", "averagePrice")} | {"size": 0}
    (event,) = user.decode("GatewayUserPosition", ({"action": 1, "data": flat},))
    assert event.is_flat
    assert event.position.size == 0


def test_several_entities_in_one_invocation_keep_their_order(user):
    second = ORDER | {"id": 2, "status": 2, "fillVolume": 15, "filledPrice": 49909}
    events = user.decode("gatewayuserorder", ([{"action": 1, "data": ORDER}, second],))
    assert [e.order.id for e in events] == [2934939816, 2]
    assert events[1].order.filled_price == Decimal(49909)


def test_logout_and_unknown_targets(user, market):
    assert user.decode("GatewayLogout", ()) == [SessionLoggedOut("user")]
    assert market.decode("GatewayLogout", ()) == [SessionLoggedOut("market")]
    assert user.decode("SomethingNew", ({"x": 1},)) == []
    assert market.decode("SomethingNew", (ES, {})) == []


@pytest.mark.parametrize(
    "arguments",
    [
        ("not an object",),
        ({"action": 1, "data": "nope"},),
        ({"id": "x"},),
        ([{"action": 1, "data": ORDER | {"status": "open"}}],),
    ],
)
def test_malformed_user_events(user, arguments):
    with pytest.raises(RemoteProtocolError):
        user.decode("GatewayUserOrder", arguments)


def test_partial_quotes_merge_into_the_last_full_quote(market):
    full = {
        "symbol": "F.US.EP",
        "symbolName": "/ES",
        "lastPrice": 2100.25,
        "bestBid": 2100.0,
        "bestAsk": 2100.5,
        "change": 25.5,
        "changePercent": 0.14,
        "open": 2090.0,
        "high": 2110.0,
        "low": 2080.0,
        "volume": 12000,
        "lastUpdated": "2024-07-21T13:45:00Z",
        "timestamp": "2024-07-21T13:45:00Z",
    }
    (first,) = market.decode("GatewayQuote", (ES, full))
    assert isinstance(first, QuoteUpdated)
    assert first.quote.last_price == Decimal("2100.25")
    partial = {
        "symbol": "F.US.EP",
        "bestBid": 2100.25,
        "bestAsk": 2100.75,
        "lastUpdated": "2024-07-21T13:45:01Z",
        "timestamp": "2024-07-21T13:45:01Z",
        "lastPrice": None,
    }
    (second,) = market.decode("GatewayQuote", (ES, partial))
    quote = second.quote
    assert quote.best_bid == Decimal("2100.25")
    assert quote.best_ask == Decimal("2100.75")
    assert quote.last_price == Decimal("2100.25")  # kept from the full quote; null is no change
    assert quote.volume == 12000
    assert quote.timestamp == datetime(2024, 7, 21, 13, 45, 1, tzinfo=UTC)
    assert market.last_quote(ES) == quote
    (volume,) = market.decode("GatewayQuote", (ES, {"volume": 12001.0}))
    assert volume.quote.volume == 12001
    (other,) = market.decode("GatewayQuote", ("CON.F.US.MNQ.U25", {"bestBid": 1}))
    assert other.quote.last_price is None  # quotes of different contracts never mix


def test_trades_as_list_or_single_object(market):
    prints = [
        {
            "symbolId": "F.US.EP",
            "price": 2100.25,
            "timestamp": "2024-07-21T13:45:00Z",
            "type": 0,
            "volume": 2,
        },
        {
            "symbolId": "F.US.EP",
            "price": 2100.5,
            "timestamp": "2024-07-21T13:45:00Z",
            "type": 1,
            "volume": 1,
        },
    ]
    events = market.decode("GatewayTrade", (ES, prints))
    assert all(isinstance(e, MarketTradeReceived) for e in events)
    assert [(e.trade.price, e.trade.aggressor, e.trade.volume) for e in events] == [
        (Decimal("2100.25"), TradeSide.BUY, 2),
        (Decimal("2100.5"), TradeSide.SELL, 1),
    ]
    assert events[0].trade.contract_id == ES
    (single,) = market.decode("GatewayTrade", (ES, prints[0]))
    assert single.trade.symbol_id == "F.US.EP"


def test_depth_as_list_or_single_object(market):
    entries = [
        {
            "timestamp": "2024-07-21T13:45:00Z",
            "type": 6,
            "price": 0,
            "volume": 0,
            "currentVolume": 0,
        },
        {
            "timestamp": "2024-07-21T13:45:00Z",
            "type": 2,
            "price": 2100.0,
            "volume": 10,
            "currentVolume": 5,
        },
        {"type": 1, "price": 2100.25, "volume": 7},
    ]
    (event,) = market.decode("GatewayDepth", (ES, entries))
    assert isinstance(event, DepthReceived)
    assert event.contract_id == ES
    assert [u.type for u in event.updates] == [DepthType.RESET, DepthType.BID, DepthType.ASK]
    assert event.updates[2].timestamp is None
    assert event.updates[2].current_volume is None
    (single,) = market.decode("GatewayDepth", (ES, entries[1]))
    assert single.updates[0].volume == 10
    (unknown,) = market.decode("GatewayDepth", (ES, [{"type": 42, "price": 1, "volume": 1}]))
    assert not unknown.updates[0].type.is_known


def test_market_events_are_the_instances_their_constructors_make(market):
    stamp = "2024-07-21T13:45:00.1234567Z"
    when = datetime(2024, 7, 21, 13, 45, 0, 123456, tzinfo=UTC)
    (quote,) = market.decode("GatewayQuote", (ES, {"bestBid": 2100.25, "timestamp": stamp}))
    (depth,) = market.decode(
        "GatewayDepth",
        (ES, [{"type": 2, "price": 2100.0, "volume": 3, "timestamp": stamp, "currentVolume": 1}]),
    )
    (trade,) = market.decode(
        "GatewayTrade", (ES, [{"price": 2100.5, "volume": 2, "type": 1, "timestamp": stamp}])
    )
    update = DepthUpdate(ES, DepthType.BID, Decimal("2100.0"), 3, when, 1)
    expected = [
        QuoteUpdated(Quote(ES, best_bid=Decimal("2100.25"), timestamp=when)),
        DepthReceived(ES, (update,)),
        MarketTradeReceived(MarketTrade(ES, Decimal("2100.5"), 2, TradeSide.SELL, when)),
    ]
    for event, wanted in zip([quote, depth, trade], expected, strict=True):
        assert type(event) is type(wanted)
        assert event == wanted
        assert repr(event) == repr(wanted)
        assert hash(event) == hash(wanted)
        assert attrs.asdict(event) == attrs.asdict(wanted)
    for frozen in (quote, quote.quote, depth, depth.updates[0]):
        assert not hasattr(frozen, "__dict__")
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            frozen.contract_id = "other"  # type: ignore[misc,union-attr]


def test_a_malformed_quote_leaves_the_merged_quote_as_it_was(market):
    (first,) = market.decode("GatewayQuote", (ES, {"bestBid": 2100.0, "volume": 7}))
    with pytest.raises(RemoteProtocolError, match="high"):
        market.decode("GatewayQuote", (ES, {"bestBid": 2101.0, "bestAsk": "high"}))
    assert market.last_quote(ES) == first.quote
    (second,) = market.decode("GatewayQuote", (ES, {"bestAsk": 2100.5}))
    assert second.quote.best_bid == Decimal("2100.0")  # the failed update left nothing behind
    assert second.quote.volume == 7


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("2024-07-21T13:45:00Z", datetime(2024, 7, 21, 13, 45, tzinfo=UTC)),
        ("2024-07-21T13:45:00.1234567+00:00", datetime(2024, 7, 21, 13, 45, 0, 123456, UTC)),
        ("2024-07-21T13:45:00.123456789Z", datetime(2024, 7, 21, 13, 45, 0, 123456, UTC)),
        ("2024-07-21T15:45:00.5+02:00", datetime(2024, 7, 21, 13, 45, 0, 500000, UTC)),
        ("2024-07-21T13:45:00", datetime(2024, 7, 21, 13, 45, tzinfo=UTC)),
        (" 2024-07-21T13:45:00.99999999Z ", datetime(2024, 7, 21, 13, 45, 0, 999999, UTC)),
    ],
)
def test_depth_timestamps_in_every_form_become_aware_utc(market, stamp, expected):
    for _ in range(2):  # the second read comes from the cache
        (event,) = market.decode(
            "GatewayDepth", (ES, [{"type": 1, "price": 1, "volume": 1, "timestamp": stamp}])
        )
        (update,) = event.updates
        assert update.timestamp == expected
        assert update.timestamp.tzinfo is UTC


def test_slot_setters_refuse_classes_that_need_their_init():
    @attrs.frozen
    class Checked:
        a: int = attrs.field(validator=attrs.validators.gt(0))

    @attrs.frozen
    class Converted:
        a: int = attrs.field(converter=int)

    @attrs.frozen
    class Derived:
        a: int

        def __attrs_post_init__(self) -> None:
            pass

    @attrs.frozen
    class Plain:
        a: int
        b: str

    for cls in (Checked, Converted, Derived):
        with pytest.raises(TypeError, match="cannot be built"):
            slot_setters(cls, "a")
    for names in (("a",), ("a", "b", "c"), ("a", "c")):
        with pytest.raises(TypeError, match="cannot be built"):
            slot_setters(Plain, *names)
    set_b, set_a = slot_setters(Plain, "b", "a")
    built = object.__new__(Plain)
    set_a(built, 1)
    set_b(built, "x")
    assert built == Plain(1, "x")


TIMESTAMPS = [
    "2024-07-21T13:45:00Z",
    "2024-07-21T13:45:00.1234567+00:00",
    "2024-07-21T13:45:00.123456789-05:00",
    "2024-07-21 13:45",
    " 2024-07-21T13:45:00.5Z",
]
# Values of every JSON type a gateway field could hold, mostly wrong for the field.
wire_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**60), max_value=2**60),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["F.US.EP", "2100.25", "1e3", "NaN", "x", "", "2024-13-21T13:45:00Z"]),
    st.sampled_from(TIMESTAMPS),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=1),
)
prices = st.one_of(
    st.integers(min_value=0, max_value=40_000).map(lambda ticks: ticks * 0.25),
    st.floats(min_value=-1e9, max_value=1e9, allow_nan=False),
    st.integers(min_value=-(10**6), max_value=10**6),
)
sizes = st.integers(min_value=0, max_value=10**6) | st.sampled_from([3.0, 2.0**53])
times = st.sampled_from(TIMESTAMPS)


def usually(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a right value for the field, one time in seven anything."""
    return st.integers(min_value=0, max_value=6).flatmap(lambda roll: good if roll else wire_values)


depth_entries = st.fixed_dictionaries(
    {
        "type": usually(st.integers(min_value=0, max_value=13) | st.just(2.0)),
        "price": usually(prices),
        "volume": usually(sizes),
    },
    optional={
        "timestamp": usually(times),
        "currentVolume": usually(sizes),
        "extra": wire_values,
    },
)
QUOTE_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "symbol": st.text(max_size=8),
    "symbolName": st.text(max_size=8),
    **dict.fromkeys(
        ["lastPrice", "bestBid", "bestAsk", "change", "changePercent", "open", "high", "low"],
        prices,
    ),
    "volume": sizes,
    "lastUpdated": times,
    "timestamp": times,
    "contractId": st.just("CON.F.US.NQ.U25"),
    "unknown": wire_values,
}
partial_quotes = st.fixed_dictionaries(
    {}, optional={key: usually(good) for key, good in QUOTE_VALUES.items()}
)


def _from_rest(cls: type[Any], data: dict[str, Any]) -> Any:
    """What the REST mapping reads from ``data``, or None where it refuses it."""
    try:
        return from_wire(cls, data, contract_id=ES)
    except RemoteProtocolError:
        return None


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(st.lists(depth_entries, min_size=1, max_size=4))
def test_depth_entries_read_as_the_rest_mapping_reads_them(entries):
    expected = [_from_rest(DepthUpdate, entry) for entry in entries]
    try:
        (event,) = MarketHub("https://h/hubs/market").decode("GatewayDepth", (ES, entries))
    except RemoteProtocolError:
        assert None in expected
    else:
        assert list(event.updates) == expected
        assert [repr(u) for u in event.updates] == [repr(u) for u in expected]


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(st.lists(partial_quotes, min_size=1, max_size=4))
def test_quotes_merge_as_the_rest_mapping_reads_the_merged_fields(partials):
    market = MarketHub("https://h/hubs/market")
    merged: dict[str, Any] = {}
    last = None
    for partial in partials:
        present = {key: value for key, value in partial.items() if value is not None}
        try:
            (event,) = market.decode("GatewayQuote", (ES, partial))
        except RemoteProtocolError:
            assert _from_rest(Quote, present) is None
        else:
            merged.update(present)
            last = _from_rest(Quote, merged)
            assert event.quote == last
            assert repr(event.quote) == repr(last)
        assert market.last_quote(ES) == last  # a refused update changes nothing


@pytest.mark.parametrize(
    ("target", "arguments"),
    [
        ("GatewayQuote", (ES,)),
        ("GatewayQuote", (42, {})),
        ("GatewayQuote", (ES, [1, 2])),
        ("GatewayQuote", (ES, {"bestBid": "high"})),
        ("GatewayQuote", (ES, {"symbol": 5})),
        ("GatewayQuote", (ES, {"volume": 1.5})),
        ("GatewayTrade", (ES, [{"price": 1, "volume": 1}])),
        ("GatewayTrade", (ES, "x")),
        ("GatewayDepth", (ES, [{"type": 1, "price": None, "volume": 1}])),
        ("GatewayDepth", (ES, [{"type": True, "price": 1, "volume": 1}])),
        ("GatewayDepth", (ES, [{"type": 1, "price": 1, "volume": 1, "timestamp": 5}])),
        ("GatewayDepth", (ES, [3])),
    ],
)
def test_malformed_market_events(market, target, arguments):
    with pytest.raises(RemoteProtocolError):
        market.decode(target, arguments)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=20,
)
targets = st.sampled_from(
    [
        "GatewayQuote",
        "GatewayTrade",
        "GatewayDepth",
        "GatewayUserOrder",
        "GatewayUserTrade",
        "GatewayUserPosition",
        "GatewayUserAccount",
        "GatewayLogout",
    ]
)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(target=targets, arguments=st.lists(json_values, max_size=3))
def test_any_payload_decodes_or_raises_a_library_error(target, arguments):
    for hub in hubs_for("https://h/hubs/user", "https://h/hubs/market"):
        with contextlib.suppress(TradeForgeError):
            hub.decode(target, tuple(arguments))


def test_hub_methods_for_every_channel(user, market):
    assert user.subscribe_call(Subscription.accounts()) == ("SubscribeAccounts", ())
    assert user.unsubscribe_call(Subscription.accounts()) == ("UnsubscribeAccounts", ())
    assert user.subscribe_call(Subscription.orders(7)) == ("SubscribeOrders", (7,))
    assert user.subscribe_call(Subscription.positions(7)) == ("SubscribePositions", (7,))
    assert user.subscribe_call(Subscription.fills(7)) == ("SubscribeTrades", (7,))
    assert user.unsubscribe_call(Subscription.fills(7)) == ("UnsubscribeTrades", (7,))
    assert market.subscribe_call(Subscription.quotes(ES)) == ("SubscribeContractQuotes", (ES,))
    assert market.subscribe_call(Subscription.trades(ES)) == ("SubscribeContractTrades", (ES,))
    assert market.subscribe_call(Subscription.depth(ES)) == (
        "SubscribeContractMarketDepth",
        (ES,),
    )
    assert market.unsubscribe_call(Subscription.depth(ES)) == (
        "UnsubscribeContractMarketDepth",
        (ES,),
    )
    for channel in Channel:
        sub = Subscription(
            channel, None if channel is Channel.ACCOUNTS else (ES if channel.is_market else 7)
        )
        assert user.handles(sub) != market.handles(sub)
    assert market.market_data
    assert not user.market_data


def test_subscription_helpers_validate_keys():
    assert Subscription.market(ES, depth=True) == [Subscription.depth(ES)]
    assert Subscription.market(ES, quotes=True, trades=True, depth=True) == [
        Subscription.quotes(ES),
        Subscription.trades(ES),
        Subscription.depth(ES),
    ]
    with pytest.raises(LocalProtocolError, match="ask for quotes=True"):
        Subscription.market(ES)
    assert Subscription.user(7, accounts=False, fills=False) == [
        Subscription.orders(7),
        Subscription.positions(7),
    ]
    for channel, key in (
        (Channel.ACCOUNTS, 1),
        (Channel.QUOTES, 5),
        (Channel.QUOTES, ""),
        (Channel.ORDERS, "7"),
        (Channel.ORDERS, True),
    ):
        with pytest.raises(LocalProtocolError):
            Subscription(channel, key)
