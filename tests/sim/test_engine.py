"""The paper exchange: gateway semantics, event order, error codes, P&L and invariants."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeforge_proto.core.enums import OrderSide, OrderStatus, OrderType, PositionSide
from tradeforge_proto.core.jsoncodec import dumps
from tradeforge_proto.core.models import Account, Bracket, Contract, Fill, Order, Position
from tradeforge_proto.providers.topstepx.wire import to_wire
from tradeforge_sim.contracts import (
    MONTH_CODES,
    ContractSpec,
    default_catalogue,
    front_month,
    month_code,
)
from tradeforge_sim.engine import (
    FIRST_FILL_ID,
    FIRST_ORDER_ID,
    FIRST_POSITION_ID,
    MAX_CUSTOM_TAG,
    MAX_ORDER_SIZE,
    MAX_PRICE,
    POSITION_BRACKETS_MESSAGE,
    Exchange,
    Rejection,
    SimAccount,
    UserEvent,
    UserEventKind,
)

T0 = datetime(2025, 11, 24, 15, 0, tzinfo=UTC)
NOW = T0.timestamp()
CATALOGUE = default_catalogue(T0)
MES = "CON.F.US.MES.Z25"
EXPIRED = "CON.F.US.MES.U25"
PB, OCO, LOCKED = 101, 102, 103
BALANCE = Decimal("50000.00")

BUY, SELL = OrderSide.BUY, OrderSide.SELL
LIMIT, MARKET, STOP = OrderType.LIMIT, OrderType.MARKET, OrderType.STOP
TRAIL, JOIN_BID, JOIN_ASK = OrderType.TRAILING_STOP, OrderType.JOIN_BID, OrderType.JOIN_ASK
FILLED, OPEN, CANCELLED = OrderStatus.FILLED, OrderStatus.OPEN, OrderStatus.CANCELLED
PENDING, REJECTED = OrderStatus.PENDING, OrderStatus.REJECTED


def D(text: str) -> Decimal:
    return Decimal(text)


def accounts() -> list[SimAccount]:
    return [
        SimAccount(PB, "PRAC-V2-101", BALANCE),
        SimAccount(OCO, "PRAC-V2-102", BALANCE, auto_oco_brackets=True),
        SimAccount(LOCKED, "PRAC-V2-103", D("1000"), can_trade=False),
    ]


@pytest.fixture
def ex() -> Exchange:
    return Exchange(CATALOGUE, accounts(), now=NOW)


def quote(
    ex: Exchange,
    bid: str,
    ask: str,
    *,
    bid_size: int = 10,
    ask_size: int = 10,
    last: str | None = None,
    at: float = 1,
    contract: str = MES,
) -> None:
    ex.set_market(
        contract,
        bid=D(bid),
        bid_size=bid_size,
        ask=D(ask),
        ask_size=ask_size,
        last=None if last is None else D(last),
        now=NOW + at,
    )


def kinds(events: list[UserEvent]) -> list[tuple[str, object]]:
    """Each event as (kind, detail): order status, trade size, position size or balance."""
    out: list[tuple[str, object]] = []
    for event in events:
        entity = event.entity
        if isinstance(entity, Order):
            out.append(("order", entity.status))
        elif isinstance(entity, Fill):
            out.append(("trade", entity.size))
        elif isinstance(entity, Position):
            out.append(("position", entity.size))
        else:
            out.append(("account", entity.balance))
    return out


def orders_in(events: list[UserEvent]) -> list[Order]:
    return [e.entity for e in events if isinstance(e.entity, Order)]


def trades_in(events: list[UserEvent]) -> list[Fill]:
    return [e.entity for e in events if isinstance(e.entity, Fill)]


def rejection(excinfo: pytest.ExceptionInfo[Rejection]) -> tuple[int, str | None, int | None]:
    exc = excinfo.value
    return int(exc.code), exc.message, exc.order_id


# Contracts


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (datetime(2025, 1, 15), "H25"),
        (datetime(2025, 3, 13), "H25"),
        (datetime(2025, 3, 14), "M25"),
        (datetime(2025, 11, 24), "Z25"),
        (datetime(2025, 12, 11, 23, 59), "Z25"),
        (datetime(2025, 12, 12), "H26"),
        (datetime(2026, 6, 11), "M26"),
        (datetime(2026, 6, 12), "U26"),
    ],
)
def test_front_month_rolls_on_the_second_friday(when: datetime, expected: str) -> None:
    assert front_month(when) == expected


def test_month_codes() -> None:
    assert MONTH_CODES == "FGHJKMNQUVXZ"
    assert month_code(2026, 1) == "F26"
    assert month_code(2009, 12) == "Z09"


def test_default_catalogue_products_and_ticks() -> None:
    by_id = {spec.contract.id: spec for spec in CATALOGUE}
    expected = {
        "CON.F.US.MES.Z25": ("MESZ5", "Micro E-mini S&P 500: December 2025", "0.25", "1.25"),
        "CON.F.US.MNQ.Z25": ("MNQZ5", "Micro E-mini Nasdaq-100: December 2025", "0.25", "0.5"),
        "CON.F.US.EP.Z25": ("ESZ5", "E-mini S&P 500: December 2025", "0.25", "12.5"),
        "CON.F.US.ENQ.Z25": ("NQZ5", "E-mini NASDAQ-100: December 2025", "0.25", "5"),
        "CON.F.US.MYM.Z25": ("MYMZ5", "Micro E-mini Dow Jones: December 2025", "1", "0.5"),
        "CON.F.US.M2K.Z25": ("M2KZ5", "Micro E-mini Russell 2000: December 2025", "0.1", "0.5"),
        "CON.F.US.RTY.Z25": ("RTYZ5", "E-mini Russell 2000: December 2025", "0.1", "5"),
        "CON.F.US.CLE.Z25": ("CLZ5", "Crude Oil: December 2025", "0.01", "10"),
        "CON.F.US.GCE.Z25": ("GCZ5", "Gold: December 2025", "0.1", "10"),
        "CON.F.US.MES.U25": ("MESU5", "Micro E-mini S&P 500: September 2025", "0.25", "1.25"),
    }
    assert list(by_id) == list(expected)
    for contract_id, (name, description, tick, value) in expected.items():
        contract = by_id[contract_id].contract
        assert (contract.name, contract.description) == (name, description)
        assert (contract.tick_size, contract.tick_value) == (D(tick), D(value))
        assert contract.symbol_id == "F.US." + contract_id.split(".")[3]
        assert contract.active is (contract_id != EXPIRED)
    for spec in CATALOGUE:
        assert spec.contract.is_aligned(spec.base_price)
        assert spec.fee > 0
        assert spec.commission > 0
    assert (by_id[MES].fee, by_id["CON.F.US.EP.Z25"].fee) == (D("0.37"), D("1.40"))


@pytest.mark.parametrize(
    ("when", "crude", "gold", "expired"),
    [
        (datetime(2025, 12, 20), "F26", "G26", "Z25"),
        (datetime(2025, 10, 1), "X25", "Z25", "U25"),
        (datetime(2026, 1, 5), "G26", "G26", "Z25"),
        (datetime(2026, 2, 5), "H26", "J26", "Z25"),
    ],
)
def test_catalogue_month_cycles(when: datetime, crude: str, gold: str, expired: str) -> None:
    ids = [spec.contract.id for spec in default_catalogue(when)]
    assert f"CON.F.US.CLE.{crude}" in ids
    assert f"CON.F.US.GCE.{gold}" in ids
    assert ids[-1] == f"CON.F.US.MES.{expired}"


# Market orders, events and P&L


def test_market_round_trip_event_order_and_pnl(ex: Exchange) -> None:
    quote(ex, "5000.00", "5000.25", last="5000.25")
    entry = ex.place(PB, MES, MARKET, BUY, 2, now=NOW + 2)
    assert entry == FIRST_ORDER_ID
    events = ex.drain_events()
    assert kinds(events) == [
        ("order", PENDING),
        ("trade", 2),
        ("order", FILLED),
        ("position", 2),
        ("account", D("49998.76")),
    ]
    assert [e.action for e in events] == [1, 0, 1, 1, 1]
    assert [e.kind for e in events] == [
        UserEventKind.ORDER,
        UserEventKind.TRADE,
        UserEventKind.ORDER,
        UserEventKind.POSITION,
        UserEventKind.ACCOUNT,
    ]
    assert {e.account_id for e in events} == {PB}
    pending, trade, filled, position, account = (e.entity for e in events)
    assert isinstance(pending, Order)
    assert (pending.fill_volume, pending.filled_price, pending.symbol_id) == (0, None, "F.US.MES")
    assert pending.created_at == datetime.fromtimestamp(NOW + 2, UTC)
    assert trade == Fill(
        id=FIRST_FILL_ID,
        account_id=PB,
        contract_id=MES,
        created_at=datetime.fromtimestamp(NOW + 2, UTC),
        price=D("5000.25"),
        side=BUY,
        size=2,
        order_id=entry,
        fees=D("0.74"),
        profit_and_loss=None,
        commissions=D("0.50"),
    )
    assert isinstance(filled, Order)
    assert (filled.fill_volume, filled.filled_price) == (2, D("5000.25"))
    assert isinstance(position, Position)
    assert (position.id, position.side, position.average_price) == (
        FIRST_POSITION_ID,
        PositionSide.LONG,
        D("5000.25"),
    )
    assert position.contract_display_name == "MESZ25"
    assert account == Account(PB, "PRAC-V2-101", D("49998.76"), True, True, True)

    quote(ex, "5001.25", "5001.50", at=3)
    ex.place(PB, MES, MARKET, SELL, 2, now=NOW + 4)
    events = ex.drain_events()
    assert kinds(events) == [
        ("order", PENDING),
        ("trade", 2),
        ("order", FILLED),
        ("position", 0),
        ("account", D("50007.52")),
    ]
    (closing,) = trades_in(events)
    assert (closing.price, closing.profit_and_loss) == (D("5001.25"), D("10.00"))
    flat = events[3].entity
    assert isinstance(flat, Position)
    assert (flat.id, flat.size, flat.side) == (FIRST_POSITION_ID, 0, PositionSide.LONG)
    assert ex.positions(PB) == []
    # 10.00 profit, 4 fills x (0.37 fee + 0.25 commission).
    assert ex.accounts()[0].balance == BALANCE + D("10.00") - 4 * D("0.62")


def test_market_without_market_is_rejected_on_the_stream(ex: Exchange) -> None:
    order_id = ex.place(PB, MES, MARKET, BUY, 1, now=NOW)
    assert kinds(ex.drain_events()) == [("order", PENDING), ("order", REJECTED)]
    assert ex.order(PB, order_id).status is REJECTED
    quote(ex, "5000.00", "5000.25", ask_size=0)
    second = ex.place(PB, MES, MARKET, BUY, 1, now=NOW + 2)
    assert second == order_id + 1
    assert kinds(ex.drain_events()) == [("order", PENDING), ("order", REJECTED)]
    assert ex.fills(PB, 0) == []


def test_market_order_walks_the_book(ex: Exchange) -> None:
    quote(ex, "5000.00", "5000.25", ask_size=2)
    order_id = ex.place(PB, MES, MARKET, BUY, 5, now=NOW + 2)
    events = ex.drain_events()
    assert kinds(events)[:5] == [
        ("order", PENDING),
        ("trade", 2),
        ("trade", 2),
        ("trade", 1),
        ("order", FILLED),
    ]
    assert [t.price for t in trades_in(events)] == [D("5000.25"), D("5000.50"), D("5000.75")]
    assert ex.order(PB, order_id).filled_price == D("5000.45")
    # The liquidity taken stays taken until the next update.
    ex.place(PB, MES, MARKET, BUY, 2, now=NOW + 3)
    assert [t.price for t in trades_in(ex.drain_events())] == [D("5000.75"), D("5001.00")]
    resting = ex.place(PB, MES, LIMIT, BUY, 1, limit_price=D("5000.25"), now=NOW + 4)
    assert ex.order(PB, resting).status is OPEN
    quote(ex, "5000.00", "5000.25", ask_size=2, at=5)
    assert ex.order(PB, resting).status is FILLED
    position = ex.positions(PB)[0]
    assert position.size == 8


def test_an_average_fill_price_that_does_not_terminate_is_reported_to_six_places(
    ex: Exchange,
) -> None:
    quote(ex, "5000.00", "5000.25", ask_size=2)
    order_id = ex.place(PB, MES, MARKET, BUY, 3, now=NOW + 2)
    events = ex.drain_events()
    order = ex.order(PB, order_id)
    assert order.filled_price == D("5000.333333")  # (2 x 5000.25 + 5000.50) / 3
    assert ex.positions(PB)[0].average_price == D("5000.333333")
    for event in events:
        dumps(to_wire(event.entity))  # every event can be pushed as JSON


def test_sizes_prices_and_tags_past_their_bounds_are_refused_fast(ex: Exchange) -> None:
    quote(ex, "5000.00", "5000.25")
    for size in (MAX_ORDER_SIZE + 1, 2**31 - 1):
        with pytest.raises(Rejection) as refused:
            ex.place(PB, MES, MARKET, BUY, size, now=NOW + 2)
        assert rejection(refused) == (2, "Invalid order size specified.", None)
    for price in (MAX_PRICE, D("1E+28"), D("7.9E+28")):
        with pytest.raises(Rejection) as refused:
            ex.place(PB, MES, LIMIT, BUY, 1, limit_price=price, now=NOW + 2)
        assert rejection(refused) == (2, "Invalid limit price specified.", None)
        with pytest.raises(Rejection) as refused:
            ex.place(PB, MES, TRAIL, SELL, 1, trail_price=price, now=NOW + 2)
        assert refused.value.message is not None
        assert "not aligned" in refused.value.message
    with pytest.raises(Rejection) as refused:
        ex.place(PB, MES, MARKET, BUY, 1, custom_tag="t" * (MAX_CUSTOM_TAG + 1), now=NOW + 2)
    assert rejection(refused) == (2, "Custom tag is too long.", None)
    resting = ex.place(PB, MES, LIMIT, BUY, 1, limit_price=D("4000"), now=NOW + 3)
    with pytest.raises(Rejection) as refused:
        ex.modify(PB, resting, size=MAX_ORDER_SIZE + 1, now=NOW + 4)
    assert rejection(refused) == (3, "Invalid order size specified.", None)
    with pytest.raises(Rejection) as refused:
        ex.modify(PB, resting, limit_price=D("1E+28"), now=NOW + 4)
    assert rejection(refused) == (3, "Invalid limit price specified.", None)
    ex.place(PB, MES, MARKET, BUY, MAX_ORDER_SIZE, now=NOW + 5)  # the bound itself is allowed
    assert ex.positions(PB)[0].size == MAX_ORDER_SIZE


def test_market_sell_walks_down(ex: Exchange) -> None:
    quote(ex, "5000.00", "5000.25", bid_size=1)
    ex.place(PB, MES, MARKET, SELL, 3, now=NOW + 2)
    trades = trades_in(ex.drain_events())
    assert [(t.price, t.size) for t in trades] == [
        (D("5000.00"), 1),
        (D("4999.75"), 1),
        (D("4999.50"), 1),
    ]
    assert ex.positions(PB)[0].side is PositionSide.SHORT


# Limit, stop and join orders


def test_partial_fills_with_a_small_touch(ex: Exchange) -> None:
    quote(ex, "4999.75", "5000.00", ask_size=2)
    order_id = ex.place(PB, MES, LIMIT, BUY, 5, limit_price=D("5000.00"), now=NOW + 2)
    events = ex.drain_events()
    assert kinds(events) == [
        ("order", OPEN),
        ("trade", 2),
        ("order", OPEN),
        ("position", 2),
        ("account", BALANCE - 2 * D("0.62")),
    ]
    partial = orders_in(events)[-1]
    assert (partial.fill_volume, partial.filled_price) == (2, D("5000.00"))
    assert [o.id for o in ex.open_orders(PB)] == [order_id]
    quote(ex, "4999.75", "5000.00", ask_size=2, at=3)
    assert ex.order(PB, order_id).fill_volume == 4
    quote(ex, "4999.50", "4999.75", ask_size=2, at=4)
    done = ex.order(PB, order_id)
    assert (done.status, done.fill_volume, done.filled_price) == (FILLED, 5, D("4999.95"))
    assert [f.price for f in ex.fills(PB, 0)][-1] == D("4999.75")
    assert ex.positions(PB)[0].size == 5


def test_limit_rests_then_fills_on_a_market_move(ex: Exchange) -> None:
    quote(ex, "4999.75", "5000.00")
    buy = ex.place(PB, MES, LIMIT, BUY, 1, limit_price=D("4999.00"), now=NOW + 2)
    sell = ex.place(OCO, MES, LIMIT, SELL, 1, limit_price=D("5001.00"), now=NOW + 2)
    assert kinds(ex.drain_events()) == [("order", OPEN), ("order", OPEN)]
    quote(ex, "4999.50", "4999.75", at=3)
    assert ex.drain_events() == []
    quote(ex, "4998.75", "4999.00", at=4)
    events = ex.drain_events()
    assert kinds(events)[:3] == [("trade", 1), ("order", FILLED), ("position", 1)]
    assert trades_in(events)[0].price == D("4999.00")
    assert ex.order(PB, buy).status is FILLED
    quote(ex, "5001.25", "5001.50", at=5)
    assert trades_in(ex.drain_events())[0].price == D("5001.25")
    assert ex.order(OCO, sell).status is FILLED


def test_marketable_limit_fills_at_the_touch(ex: Exchange) -> None:
    quote(ex, "4998.75", "4999.00")
    order_id = ex.place(PB, MES, LIMIT, BUY, 1, limit_price=D("4999.50"), now=NOW + 2)
    events = ex.drain_events()
    assert kinds(events)[:3] == [("order", OPEN), ("trade", 1), ("order", FILLED)]
    assert ex.order(PB, order_id).filled_price == D("4999.00")


def test_stop_orders_trigger_on_the_touch(ex: Exchange) -> None:
    quote(ex, "5000.00", "5000.25")
    buy_stop = ex.place(PB, MES, STOP, BUY, 1, stop_price=D("5002.00"), now=NOW + 2)
    sell_stop = ex.place(OCO, MES, STOP, SELL, 1, stop_price=D("4998.00"), now=NOW + 2)
    created = orders_in(ex.drain_events())
    assert [(o.status, o.stop_price, o.limit_price) for o in created] == [
        (OPEN, D("5002.00"), None),
        (OPEN, D("4998.00"), None),
    ]
    quote(ex, "5001.50", "5001.75", at=3)
    assert ex.drain_events() == []
    quote(ex, "5002.00", "5002.25", at=4)
    assert trades_in(ex.drain_events())[0].price == D("5002.25")
    assert ex.order(PB, buy_stop).status is FILLED
    quote(ex, "4998.00", "4998.25", at=5)
    assert trades_in(ex.drain_events())[0].price == D("4998.00")
    assert ex.order(OCO, sell_stop).status is FILLED


def test_stop_through_the_market_fills_at_once_and_walks(ex: Exchange) -> None:
    quote(ex, "5000.00", "5000.25", ask_size=1)
    ex.place(PB, MES, STOP, BUY, 2, stop_price=D("5000.00"), now=NOW + 2)
    events = ex.drain_events()
    assert kinds(events)[:4] == [("order", OPEN), ("trade", 1), ("trade", 1), ("order", FILLED)]
    assert [t.price for t in trades_in(events)] == [D("5000.25"), D("5000.50")]


def test_stop_does_not_trigger_on_an_empty_side(ex: Exchange) -> None:
    quote(ex, "5000.00", "5000.25")
    order_id = ex.place(PB, MES, STOP, SELL, 1, stop_price=D("4999.00"), now=NOW + 2)
    quote(ex, "4998.00", "4998.25", bid_size=0, at=3)
    assert ex.order(PB, order_id).status is OPEN
    quote(ex, "4998.00", "4998.25", at=4)
    assert ex.order(PB, order_id).status is FILLED


def test_join_bid_and_join_ask(ex: Exchange) -> None:
    quote(ex, "5000.00", "5000.25")
    bid = ex.place(PB, MES, JOIN_BID, BUY, 1, now=NOW + 2)
    ask = ex.place(PB, MES, JOIN_ASK, SELL, 1, now=NOW + 2)
    resting = {o.id: o for o in ex.open_orders(PB)}
    assert (resting[bid].type, resting[bid].limit_price) == (JOIN_BID, D("5000.00"))
    assert (resting[ask].type, resting[ask].limit_price) == (JOIN_ASK, D("5000.25"))
    ex.drain_events()
    crossing = ex.place(OCO, MES, JOIN_BID, SELL, 1, now=NOW + 3)
    assert trades_in(ex.drain_events())[0].price == D("5000.00")
    assert ex.order(OCO, crossing).status is FILLED
    lifting = ex.place(OCO, MES, JOIN_ASK, BUY, 1, now=NOW + 3)
    assert ex.order(OCO, lifting).filled_price == D("5000.25")
    quote(ex, "4999.75", "5000.00", at=4)
    assert ex.order(PB, bid).status is FILLED


@pytest.mark.parametrize(
    ("type", "bid_size", "ask_size", "message"),
    [
        (JOIN_BID, None, None, "Cannot join the bid without a market."),
        (JOIN_BID, 0, 5, "Cannot join the bid without a market."),
        (JOIN_ASK, 5, 0, "Cannot join the ask without a market."),
    ],
)
def test_join_without_a_market(
    ex: Exchange, type: OrderType, bid_size: int | None, ask_size: int | None, message: str
) -> None:
    if bid_size is not None and ask_size is not None:
        quote(ex, "5000.00", "5000.25", bid_size=bid_size, ask_size=ask_size)
    with pytest.raises(Rejection) as excinfo:
        ex.place(PB, MES, type, BUY, 1, now=NOW)
    assert rejection(excinfo) == (2, message, None)


# Cancel and modify


def test_cancel_and_its_codes(ex: Exchange) -> None:
    quote(ex, "5000.00", "5000.25")
    order_id = ex.place(PB, MES, LIMIT, BUY, 1, limit_price=D("4990.00"), now=NOW + 2)
    ex.drain_events()
    with pytest.raises(Rejection) as excinfo:
        ex.cancel(999, order_id, now=NOW + 3)
    assert rejection(excinfo) == (1, None, None)
    with pytest.raises(Rejection) as excinfo:
        ex.cancel(OCO, order_id, now=NOW + 3)
    assert rejection(excinfo) == (2, None, None)
    with pytest.raises(Rejection) as excinfo:
        ex.cancel(PB, 12345, now=NOW + 3)
    assert rejection(excinfo) == (2, None, None)
    ex.cancel(PB, order_id, now=NOW + 3)
    (event,) = ex.drain_events()
    assert isinstance(event.entity, Order)
    assert (event.entity.status, event.entity.updated_at) == (
        CANCELLED,
        datetime.fromtimestamp(NOW + 3, UTC),
    )
    with pytest.raises(Rejection) as excinfo:
        ex.cancel(PB, order_id, now=NOW + 4)
    assert rejection(excinfo) == (2, None, None)
    assert ex.open_orders(PB) == []
    quote(ex, "4989.75", "4990.00", at=5)
    assert ex.order(PB, order_id).status is CANCELLED


def test_modify_size_and_prices(ex: Exchange) -> None:
    quote(ex, "5000.00", "5000.25")
    limit = ex.place(PB, MES, LIMIT, BUY, 3, limit_price=D("4999.00"), now=NOW + 2)
    stop = ex.place(PB, MES, STOP, BUY, 1, stop_price=D("5005.00"), now=NOW + 2)
    ex.drain_events()
    ex.modify(PB, limit, size=5, now=NOW + 3)
    (event,) = orders_in(ex.drain_events())
    assert (event.size, event.limit_price, event.status) == (5, D("4999.00"), OPEN)
    ex.modify(PB, limit, limit_price=D("5000.25"), now=NOW + 4)
    events = ex.drain_events()
    assert kinds(events)[:3] == [("order", OPEN), ("trade", 5), ("order", FILLED)]
    assert trades_in(events)[0].price == D("5000.25")
    ex.modify(PB, stop, stop_price=D("5000.25"), now=NOW + 5)
    assert ex.order(PB, stop).status is FILLED
    assert ex.order(PB, stop).stop_price == D("5000.25")
    assert ex.positions(PB)[0].size == 6


def test_modify_codes(ex: Exchange) -> None:
    quote(ex, "5000.00", "5000.25", ask_size=2)
    partial = ex.place(PB, MES, LIMIT, BUY, 5, limit_price=D("5000.25"), now=NOW + 2)
    stop = ex.place(PB, MES, STOP, SELL, 1, stop_price=D("4990.00"), now=NOW + 2)
    filled = ex.place(PB, MES, MARKET, BUY, 1, now=NOW + 2)
    before = ex.order(PB, partial)
    cases: list[tuple[int, int, dict[str, Any], tuple[int, str | None, None]]] = [
        (999, partial, {"size": 9}, (1, None, None)),
        (PB, 777, {"size": 9}, (2, None, None)),
        (PB, filled, {"size": 9}, (2, None, None)),
        (OCO, partial, {"size": 9}, (2, None, None)),
        (PB, partial, {"size": 0}, (3, "Invalid order size specified.", None)),
        (PB, partial, {"size": 2}, (3, "Invalid order size specified.", None)),
        (
            PB,
            partial,
            {"limit_price": D("5000.10")},
            (3, "Invalid limit price. Price is not aligned to tick size.", None),
        ),
        (PB, partial, {"limit_price": D("-1")}, (3, "Invalid limit price specified.", None)),
        (
            PB,
            partial,
            {"stop_price": D("4990.00")},
            (3, "This order type has no stop price to modify.", None),
        ),
        (
            PB,
            stop,
            {"limit_price": D("4990.00")},
            (3, "This order type has no limit price to modify.", None),
        ),
        (
            PB,
            partial,
            {"trail_price": D("4990.00")},
            (3, "Only trailing stop orders have a trail price.", None),
        ),
    ]
    for account_id, order_id, changes, expected in cases:
        with pytest.raises(Rejection) as excinfo:
            ex.modify(account_id, order_id, now=NOW + 3, **changes)
        assert rejection(excinfo) == expected
    assert ex.order(PB, partial) == before
    ex.configure_account(PB, can_trade=False, now=NOW + 4)
    with pytest.raises(Rejection) as excinfo:
        ex.modify(PB, partial, size=9, now=NOW + 5)
    assert rejection(excinfo) == (6, "Account is not allowed to trade.", None)
    # Cancelling stays possible for an account that may not trade.
    ex.cancel(PB, partial, now=NOW + 6)
    assert ex.order(PB, partial).status is CANCELLED


def test_modify_leaves_omitted_fields_alone(ex: Exchange) -> None:
    quote(ex, "5000.00", "5000.25")
    order_id = ex.place(PB, MES, LIMIT, SELL, 2, limit_price=D("5003.00"), now=NOW + 2)
    ex.modify(PB, order_id, now=NOW + 3)
    after = ex.order(PB, order_id)
    assert (after.size, after.limit_price, after.updated_at) == (
        2,
        D("5003.00"),
        datetime.fromtimestamp(NOW + 3, UTC),
    )


# Custom tags


def test_duplicate_custom_tag(ex: Exchange) -> None:
    quote(ex, "5000.00", "5000.25")
    ex.place(PB, MES, LIMIT, BUY, 1, limit_price=D("4990.00"), custom_tag="alpha", now=NOW)
    with pytest.raises(Rejection) as excinfo:
        ex.place(PB, MES, MARKET, BUY, 1, custom_tag="alpha", now=NOW)
    assert rejection(excinfo) == (2, "Custom tag 'alpha' is already in use on this account.", None)
    # Tags are per account.
    ex.place(OCO, MES, MARKET, BUY, 1, custom_tag="alpha", now=NOW)
    # A tag on an order the gateway created and then rejected stays used.
    with pytest.raises(Rejection):
        ex.place(PB, MES, MARKET, BUY, 1, custom_tag="beta", stop_loss=Bracket(-8, STOP), now=NOW)
    with pytest.raises(Rejection) as excinfo:
        ex.place(PB, MES, MARKET, BUY, 1, custom_tag="beta", now=NOW)
    assert rejection(excinfo)[1] == "Custom tag 'beta' is already in use on this account."
    # A request refused before any order existed does not use its tag up.
    with pytest.raises(Rejection):
        ex.place(PB, MES, MARKET, BUY, 0, custom_tag="gamma", now=NOW)
    order_id = ex.place(PB, MES, MARKET, BUY, 1, custom_tag="gamma", now=NOW)
    assert ex.order(PB, order_id).custom_tag == "gamma"


# Place rejections


def place_args(**overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "account_id": PB,
        "contract_id": MES,
        "type": LIMIT,
        "side": BUY,
        "size": 1,
        "limit_price": D("5000.00"),
    }
    args.update(overrides)
    return args


@pytest.mark.parametrize(
    ("overrides", "code", "message"),
    [
        ({"account_id": 999}, 1, "Account not found."),
        ({"account_id": LOCKED}, 10, "Account is not allowed to trade."),
        ({"contract_id": "CON.F.US.XYZ.Z25"}, 8, "Contract not found."),
        ({"contract_id": EXPIRED}, 9, "Contract is not active."),
        ({"size": 0}, 2, "Invalid order size specified."),
        ({"size": -3}, 2, "Invalid order size specified."),
        ({"type": OrderType.STOP_LIMIT}, 2, "Invalid order type specified."),
        ({"type": OrderType.UNKNOWN}, 2, "Invalid order type specified."),
        ({"type": OrderType(42)}, 2, "Invalid order type specified."),
        ({"side": OrderSide(7)}, 2, "Invalid order side specified."),
        ({"limit_price": None}, 2, "Limit price not set."),
        (
            {"limit_price": D("5000.10")},
            2,
            "Invalid limit price. Price is not aligned to tick size.",
        ),
        ({"limit_price": D("0")}, 2, "Invalid limit price specified."),
        ({"limit_price": D("NaN")}, 2, "Invalid limit price specified."),
        ({"type": STOP, "limit_price": None}, 2, "Stop price not set."),
        (
            {"type": STOP, "stop_price": D("5000.30")},
            2,
            "Invalid stop price. Price is not aligned to tick size.",
        ),
        ({"type": TRAIL}, 2, "Trail Distance not set."),
        (
            {"type": TRAIL, "trail_price": D("4995.10")},
            2,
            "Invalid trail price. Price is not aligned to tick size.",
        ),
        ({"type": TRAIL, "trail_price": D("4749.75")}, 2, "Trail Distance exceeds maximum (1000)"),
        (
            {"type": TRAIL, "trail_price": D("5000.00")},
            2,
            "Trail Distance must be at least one tick.",
        ),
    ],
)
def test_place_rejections(ex: Exchange, overrides: dict[str, Any], code: int, message: str) -> None:
    quote(ex, "4999.75", "5000.00", last="5000.00")
    ex.drain_events()
    with pytest.raises(Rejection) as excinfo:
        ex.place(**place_args(**overrides), now=NOW)
    assert rejection(excinfo) == (code, message, None)
    assert ex.drain_events() == []
    assert ex.orders(PB, 0) == []


def test_trailing_needs_a_quote_and_a_last_price(ex: Exchange) -> None:
    with pytest.raises(Rejection) as excinfo:
        ex.place(PB, MES, TRAIL, SELL, 1, trail_price=D("4995.00"), now=NOW)
    assert rejection(excinfo) == (2, "Invalid symbol", None)
    quote(ex, "4999.75", "5000.00")
    with pytest.raises(Rejection) as excinfo:
        ex.place(PB, MES, TRAIL, SELL, 1, trail_price=D("4995.00"), now=NOW)
    assert rejection(excinfo) == (2, "Cannot trail without a last price", None)
    quote(ex, "4999.75", "5000.00", last="5000.00", at=2)
    order_id = ex.place(PB, MES, TRAIL, SELL, 1, trail_price=D("4750.00"), now=NOW + 3)
    assert ex.order(PB, order_id).trail_distance == 1000


def test_rejection_text() -> None:
    assert str(Rejection(2, "Bad.", 7)) == "error code 2: Bad. (order 7)"
    assert str(Rejection(1, None)) == "error code 1"


# Brackets


def test_brackets_rejected_in_position_brackets_mode(ex: Exchange) -> None:
    quote(ex, "5000.00", "5000.25")
    with pytest.raises(Rejection) as excinfo:
        ex.place(
            PB,
            MES,
            MARKET,
            BUY,
            1,
            stop_loss=Bracket(-8, STOP),
            take_profit=Bracket(12, LIMIT),
            now=NOW + 2,
        )
    assert rejection(excinfo) == (2, POSITION_BRACKETS_MESSAGE, FIRST_ORDER_ID)
    assert kinds(ex.drain_events()) == [("order", PENDING), ("order", REJECTED)]
    assert ex.order(PB, FIRST_ORDER_ID).status is REJECTED
    assert ex.fills(PB, 0) == []
    assert ex.positions(PB) == []
    # Take-profit alone is refused the same way.
    with pytest.raises(Rejection) as excinfo:
        ex.place(
            PB, MES, LIMIT, BUY, 1, limit_price=D("4990.00"), take_profit=Bracket(8, LIMIT), now=NOW
        )
    assert rejection(excinfo) == (2, POSITION_BRACKETS_MESSAGE, FIRST_ORDER_ID + 1)
    # Switching the account to Auto OCO accepts them.
    ex.configure_account(PB, auto_oco_brackets=True, now=NOW + 3)
    assert kinds(ex.drain_events())[-1] == ("account", BALANCE)
    ex.place(PB, MES, MARKET, BUY, 1, stop_loss=Bracket(-8, STOP), now=NOW + 4)
    assert len(ex.open_orders(PB)) == 1


def bracket_entry(
    ex: Exchange, side: OrderSide = BUY, size: int = 2, sl: int = -8, tp: int = 12
) -> int:
    quote(ex, "5000.00", "5000.25")
    return ex.place(
        OCO,
        MES,
        MARKET,
        side,
        size,
        stop_loss=Bracket(sl, STOP),
        take_profit=Bracket(tp, LIMIT),
        now=NOW + 2,
    )


def children(ex: Exchange) -> tuple[Order, Order]:
    stop_loss, take_profit = ex.open_orders(OCO)
    return stop_loss, take_profit


def test_auto_oco_children_and_take_profit_fill(ex: Exchange) -> None:
    entry = bracket_entry(ex)
    events = ex.drain_events()
    assert kinds(events) == [
        ("order", PENDING),
        ("trade", 2),
        ("order", FILLED),
        ("position", 2),
        ("account", BALANCE - 2 * D("0.62")),
        ("order", OPEN),
        ("order", OPEN),
    ]
    stop_loss, take_profit = children(ex)
    assert (stop_loss.type, stop_loss.side, stop_loss.stop_price, stop_loss.size) == (
        STOP,
        SELL,
        D("4998.25"),
        2,
    )
    assert (take_profit.type, take_profit.side, take_profit.limit_price) == (
        LIMIT,
        SELL,
        D("5003.25"),
    )
    assert stop_loss.parent_order_id == take_profit.parent_order_id == entry
    assert (stop_loss.linked_order_id, take_profit.linked_order_id) == (
        take_profit.id,
        stop_loss.id,
    )
    assert ex.order(OCO, entry).parent_order_id is None
    quote(ex, "5003.25", "5003.50", at=3)
    events = ex.drain_events()
    assert kinds(events) == [
        ("trade", 2),
        ("order", FILLED),
        ("position", 0),
        ("account", BALANCE - 4 * D("0.62") + D("30.00")),
        ("order", CANCELLED),
    ]
    assert trades_in(events)[0].profit_and_loss == D("30.00")
    assert orders_in(events)[-1].id == stop_loss.id
    assert ex.open_orders(OCO) == []


def test_auto_oco_stop_loss_fill_cancels_take_profit(ex: Exchange) -> None:
    bracket_entry(ex)
    stop_loss, take_profit = children(ex)
    ex.drain_events()
    quote(ex, "4998.25", "4998.50", at=3)
    events = ex.drain_events()
    assert trades_in(events)[0].profit_and_loss == D("-20.00")
    assert orders_in(events)[-1].id == take_profit.id
    assert orders_in(events)[-1].status is CANCELLED
    assert ex.order(OCO, stop_loss.id).status is FILLED


def test_auto_oco_sell_entry(ex: Exchange) -> None:
    bracket_entry(ex, side=SELL, sl=10, tp=-6)
    stop_loss, take_profit = children(ex)
    assert (stop_loss.side, stop_loss.stop_price) == (BUY, D("5002.50"))
    assert (take_profit.side, take_profit.limit_price) == (BUY, D("4998.50"))


def test_partial_take_profit_shrinks_the_stop_loss(ex: Exchange) -> None:
    bracket_entry(ex, size=3)
    stop_loss, take_profit = children(ex)
    ex.drain_events()
    quote(ex, "5003.25", "5003.50", bid_size=1, at=3)
    events = ex.drain_events()
    assert kinds(events) == [
        ("trade", 1),
        ("order", OPEN),
        ("position", 2),
        ("account", BALANCE - 4 * D("0.62") + D("15.00")),
        ("order", OPEN),
    ]
    assert orders_in(events)[-1].id == stop_loss.id
    assert orders_in(events)[-1].size == 2
    # A bid below the take-profit fills nothing.
    quote(ex, "5003.00", "5003.25", bid_size=5, at=4)
    assert ex.order(OCO, stop_loss.id).size == 3 - 1
    quote(ex, "4998.25", "4998.50", at=5)
    assert ex.order(OCO, stop_loss.id).status is FILLED
    final_tp = ex.order(OCO, take_profit.id)
    assert (final_tp.status, final_tp.fill_volume) == (CANCELLED, 1)
    assert ex.positions(OCO) == []


def test_partial_take_profit_keeps_a_smaller_stop_loss(ex: Exchange) -> None:
    bracket_entry(ex, size=3)
    stop_loss, _ = children(ex)
    ex.modify(OCO, stop_loss.id, size=1, now=NOW + 3)
    quote(ex, "5003.25", "5003.50", bid_size=1, at=4)
    assert ex.order(OCO, stop_loss.id).size == 1
    assert ex.order(OCO, stop_loss.id).status is OPEN


def test_partial_take_profit_then_more_fills(ex: Exchange) -> None:
    bracket_entry(ex, size=3)
    stop_loss, take_profit = children(ex)
    quote(ex, "5003.25", "5003.50", bid_size=1, at=3)
    quote(ex, "5003.25", "5003.50", bid_size=1, at=4)
    assert ex.order(OCO, stop_loss.id).size == 1
    quote(ex, "5003.25", "5003.50", bid_size=1, at=5)
    assert ex.order(OCO, take_profit.id).status is FILLED
    assert ex.order(OCO, stop_loss.id).status is CANCELLED


@pytest.mark.parametrize(
    ("side", "stop_loss", "take_profit", "message"),
    [
        (
            BUY,
            8,
            12,
            "Invalid stop loss ticks (8). Ticks should be less than zero when going long.",
        ),
        (
            BUY,
            0,
            12,
            "Invalid stop loss ticks (0). Ticks should be less than zero when going long.",
        ),
        (
            SELL,
            -8,
            -12,
            "Invalid stop loss ticks (-8). Ticks should be greater than zero when going short.",
        ),
        (
            BUY,
            -2,
            12,
            "Invalid stop loss ticks (-2). Stop loss tick value should be at least 4 ticks.",
        ),
        (
            SELL,
            3,
            -12,
            "Invalid stop loss ticks (3). Stop loss tick value should be at least 4 ticks.",
        ),
        (
            BUY,
            -8,
            -5,
            "Invalid take profit ticks (-5). Ticks should be greater than zero when going long.",
        ),
        (
            SELL,
            8,
            50,
            "Invalid take profit ticks (50). Ticks should be less than zero when going short.",
        ),
    ],
)
def test_bracket_tick_rules(
    ex: Exchange, side: OrderSide, stop_loss: int, take_profit: int, message: str
) -> None:
    quote(ex, "5000.00", "5000.25")
    ex.drain_events()
    with pytest.raises(Rejection) as excinfo:
        ex.place(
            OCO,
            MES,
            MARKET,
            side,
            1,
            stop_loss=Bracket(stop_loss, STOP),
            take_profit=Bracket(take_profit, LIMIT),
            now=NOW,
        )
    assert rejection(excinfo) == (2, message, None)
    assert ex.drain_events() == []


@pytest.mark.parametrize(
    ("stop_loss", "take_profit", "message"),
    [
        (Bracket(-8, LIMIT), None, "Invalid stop loss order type (1)."),
        (None, Bracket(8, STOP), "Invalid take profit order type (4)."),
    ],
)
def test_bracket_type_rules(
    ex: Exchange, stop_loss: Bracket | None, take_profit: Bracket | None, message: str
) -> None:
    with pytest.raises(Rejection) as excinfo:
        ex.place(OCO, MES, MARKET, BUY, 1, stop_loss=stop_loss, take_profit=take_profit, now=NOW)
    assert rejection(excinfo) == (2, message, None)


def test_cancelled_entry_before_any_fill_has_no_children(ex: Exchange) -> None:
    quote(ex, "5000.00", "5000.25")
    entry = ex.place(
        OCO,
        MES,
        LIMIT,
        BUY,
        2,
        limit_price=D("4995.00"),
        stop_loss=Bracket(-8, STOP),
        take_profit=Bracket(8, LIMIT),
        now=NOW + 2,
    )
    ex.drain_events()
    ex.cancel(OCO, entry, now=NOW + 3)
    assert kinds(ex.drain_events()) == [("order", CANCELLED)]
    assert ex.open_orders(OCO) == []


def test_cancelled_partial_entry_protects_what_filled(ex: Exchange) -> None:
    quote(ex, "5000.00", "5000.25", ask_size=1)
    entry = ex.place(
        OCO,
        MES,
        LIMIT,
        BUY,
        3,
        limit_price=D("5000.25"),
        stop_loss=Bracket(-8, STOP),
        now=NOW + 2,
    )
    assert ex.open_orders(OCO)[0].id == entry
    ex.drain_events()
    ex.cancel(OCO, entry, now=NOW + 3)
    events = orders_in(ex.drain_events())
    assert [(o.id, o.status, o.size) for o in events] == [
        (entry, CANCELLED, 3),
        (entry + 1, OPEN, 1),
    ]
    assert (events[1].stop_price, events[1].linked_order_id) == (D("4998.25"), None)
    # A lone child has no sibling to cancel when it fills.
    quote(ex, "4998.25", "4998.50", at=4)
    assert ex.order(OCO, entry + 1).status is FILLED
    assert ex.positions(OCO) == []


def test_children_reference_the_rounded_average_fill(ex: Exchange) -> None:
    quote(ex, "5000.00", "5000.25", ask_size=2)
    ex.place(OCO, MES, MARKET, BUY, 3, stop_loss=Bracket(-8, STOP), now=NOW + 2)
    (stop_loss,) = ex.open_orders(OCO)
    # Average 5000.3333 rounds to 5000.25.
    assert stop_loss.stop_price == D("4998.25")


def test_cancelling_one_child_leaves_the_other(ex: Exchange) -> None:
    bracket_entry(ex)
    stop_loss, take_profit = children(ex)
    ex.cancel(OCO, take_profit.id, now=NOW + 3)
    assert [o.id for o in ex.open_orders(OCO)] == [stop_loss.id]


def test_trailing_stop_loss_bracket(ex: Exchange) -> None:
    quote(ex, "5000.00", "5000.25", last="5000.25")
    ex.place(OCO, MES, MARKET, BUY, 1, stop_loss=Bracket(-8, TRAIL), now=NOW + 2)
    (child,) = ex.open_orders(OCO)
    assert (child.type, child.stop_price, child.trail_distance, child.trail_price) == (
        TRAIL,
        D("4998.25"),
        8,
        D("2.00"),
    )
    quote(ex, "5004.75", "5005.00", last="5005.00", at=3)
    assert ex.order(OCO, child.id).stop_price == D("5003.00")


# Trailing stops


def test_trailing_stop_distance_trailing_and_trigger(ex: Exchange) -> None:
    quote(ex, "4999.75", "5000.00", last="5000.00")
    order_id = ex.place(PB, MES, TRAIL, SELL, 1, trail_price=D("4995.00"), now=NOW + 2)
    created = ex.order(PB, order_id)
    assert (created.status, created.stop_price, created.limit_price) == (OPEN, D("4995.00"), None)
    assert (created.trail_distance, created.trail_price) == (20, D("5.00"))
    ex.drain_events()
    quote(ex, "5001.75", "5002.00", last="5002.00", at=3)
    (moved,) = orders_in(ex.drain_events())
    assert (moved.stop_price, moved.updated_at) == (
        D("4997.00"),
        datetime.fromtimestamp(NOW + 3, UTC),
    )
    quote(ex, "5000.75", "5001.00", last="5001.00", at=4)
    assert ex.drain_events() == []
    quote(ex, "5003.00", "5003.25", at=5)
    assert ex.drain_events() == []
    quote(ex, "4997.00", "4997.25", last="4997.00", at=6)
    events = ex.drain_events()
    assert trades_in(events)[0].price == D("4997.00")
    assert ex.order(PB, order_id).status is FILLED


def test_buy_trailing_stop_trails_down(ex: Exchange) -> None:
    quote(ex, "4999.75", "5000.00", last="5000.00")
    order_id = ex.place(PB, MES, TRAIL, BUY, 1, trail_price=D("5005.00"), now=NOW + 2)
    assert ex.order(PB, order_id).stop_price == D("5005.00")
    quote(ex, "4997.75", "4998.00", last="4998.00", at=3)
    assert ex.order(PB, order_id).stop_price == D("5003.00")
    quote(ex, "4999.75", "5000.00", last="5000.00", at=4)
    assert ex.order(PB, order_id).stop_price == D("5003.00")
    quote(ex, "5002.75", "5003.00", last="5003.00", at=5)
    assert ex.order(PB, order_id).status is FILLED


def test_trail_direction_follows_the_side(ex: Exchange) -> None:
    quote(ex, "4999.75", "5000.00", last="5000.00")
    # A sell trails below the last price even when trailPrice is above it.
    order_id = ex.place(PB, MES, TRAIL, SELL, 1, trail_price=D("5005.00"), now=NOW + 2)
    assert ex.order(PB, order_id).stop_price == D("4995.00")


def test_last_price_is_kept_when_an_update_has_none(ex: Exchange) -> None:
    quote(ex, "4999.75", "5000.00", last="5000.00")
    quote(ex, "4999.50", "4999.75", at=2)
    order_id = ex.place(PB, MES, TRAIL, SELL, 1, trail_price=D("4990.00"), now=NOW + 3)
    assert ex.order(PB, order_id).trail_distance == 40


def test_modify_trailing_stop(ex: Exchange) -> None:
    quote(ex, "4999.75", "5000.00", last="5000.00")
    order_id = ex.place(PB, MES, TRAIL, SELL, 1, trail_price=D("4995.00"), now=NOW + 2)
    ex.modify(PB, order_id, trail_price=D("4990.00"), now=NOW + 3)
    after = ex.order(PB, order_id)
    assert (after.trail_distance, after.trail_price, after.stop_price) == (
        40,
        D("10.00"),
        D("4990.00"),
    )
    # Modify has no 1000-tick guard.
    ex.modify(PB, order_id, trail_price=D("4000.00"), now=NOW + 4)
    assert ex.order(PB, order_id).trail_distance == 4000
    with pytest.raises(Rejection) as excinfo:
        ex.modify(PB, order_id, trail_price=D("4990.10"), now=NOW + 5)
    assert rejection(excinfo) == (
        3,
        "Invalid trail price. Price is not aligned to tick size.",
        None,
    )
    with pytest.raises(Rejection) as excinfo:
        ex.modify(PB, order_id, trail_price=D("5000.00"), now=NOW + 5)
    assert rejection(excinfo) == (3, "Trail Distance must be at least one tick.", None)
    with pytest.raises(Rejection) as excinfo:
        ex.modify(PB, order_id, stop_price=D("4990.00"), now=NOW + 5)
    assert rejection(excinfo)[0] == 3


# Positions


def test_close_position_leaves_brackets_working(ex: Exchange) -> None:
    entry = bracket_entry(ex, size=3)
    stop_loss, take_profit = children(ex)
    ex.drain_events()
    quote(ex, "5001.00", "5001.25", at=3)
    close_id = ex.close_position(OCO, MES, now=NOW + 4)
    assert close_id == take_profit.id + 1
    events = ex.drain_events()
    assert kinds(events) == [
        ("order", PENDING),
        ("trade", 3),
        ("order", FILLED),
        ("position", 0),
        ("account", BALANCE - 6 * D("0.62") + D("11.25")),
    ]
    closing = ex.order(OCO, close_id)
    assert (closing.type, closing.side, closing.size) == (MARKET, SELL, 3)
    assert [o.id for o in ex.open_orders(OCO)] == [stop_loss.id, take_profit.id]
    assert ex.order(OCO, entry).status is FILLED
    # The leftover take-profit still works and opens a new short when touched.
    quote(ex, "5003.25", "5003.50", at=5)
    (position,) = ex.positions(OCO)
    assert (position.side, position.size, position.id) == (
        PositionSide.SHORT,
        3,
        FIRST_POSITION_ID + 1,
    )


def test_close_position_codes(ex: Exchange) -> None:
    quote(ex, "5000.00", "5000.25")
    cases = [
        (999, MES, 1),
        (PB, "CON.F.US.XYZ.Z25", 3),
        (PB, EXPIRED, 4),
        (PB, MES, 2),
    ]
    for account_id, contract_id, code in cases:
        with pytest.raises(Rejection) as excinfo:
            ex.close_position(account_id, contract_id, now=NOW)
        assert rejection(excinfo) == (code, None, None)
    ex.place(PB, MES, MARKET, BUY, 1, now=NOW + 1)
    quote(ex, "5000.00", "5000.25", bid_size=0, at=2)
    ex.drain_events()
    with pytest.raises(Rejection) as excinfo:
        ex.close_position(PB, MES, now=NOW + 3)
    assert rejection(excinfo) == (5, None, None)
    assert ex.drain_events() == []
    assert ex.positions(PB)[0].size == 1


def test_partial_close(ex: Exchange) -> None:
    quote(ex, "5000.00", "5000.25")
    ex.place(PB, MES, MARKET, SELL, 3, now=NOW + 1)
    quote(ex, "4999.00", "4999.25", at=2)
    order_id = ex.partial_close_position(PB, MES, 1, now=NOW + 3)
    closing = ex.order(PB, order_id)
    assert (closing.side, closing.size, closing.status) == (BUY, 1, FILLED)
    (position,) = ex.positions(PB)
    assert (position.side, position.size, position.average_price) == (
        PositionSide.SHORT,
        2,
        D("5000.00"),
    )
    assert ex.fills(PB, 0)[-1].profit_and_loss == D("3.75")
    for size in (0, -1, 2, 5):
        with pytest.raises(Rejection) as excinfo:
            ex.partial_close_position(PB, MES, size, now=NOW + 4)
        assert rejection(excinfo) == (5, "Invalid close size specified.", None)
    for account_id, contract_id, code in [
        (999, MES, 1),
        (PB, "nope", 3),
        (PB, EXPIRED, 4),
        (OCO, MES, 2),
    ]:
        with pytest.raises(Rejection) as excinfo:
            ex.partial_close_position(account_id, contract_id, 1, now=NOW + 4)
        assert rejection(excinfo)[0] == code
    quote(ex, "4999.00", "4999.25", ask_size=0, at=5)
    with pytest.raises(Rejection) as excinfo:
        ex.partial_close_position(PB, MES, 1, now=NOW + 6)
    assert rejection(excinfo) == (6, None, None)


def test_netting_long_to_short_in_one_fill(ex: Exchange) -> None:
    quote(ex, "5000.00", "5000.25")
    ex.place(PB, MES, MARKET, BUY, 2, now=NOW + 1)
    quote(ex, "5001.00", "5001.25", at=2)
    ex.drain_events()
    ex.place(PB, MES, MARKET, SELL, 5, now=NOW + 3)
    events = ex.drain_events()
    (fill,) = trades_in(events)
    assert (fill.size, fill.price, fill.profit_and_loss) == (5, D("5001.00"), D("7.50"))
    assert (fill.fees, fill.commissions) == (D("1.85"), D("1.25"))
    position = next(e.entity for e in events if isinstance(e.entity, Position))
    assert (position.id, position.side, position.size, position.average_price) == (
        FIRST_POSITION_ID,
        PositionSide.SHORT,
        3,
        D("5001.00"),
    )
    quote(ex, "5000.25", "5000.50", at=4)
    ex.place(PB, MES, MARKET, BUY, 1, now=NOW + 5)
    assert ex.fills(PB, 0)[-1].profit_and_loss == D("2.50")
    assert ex.positions(PB)[0].size == 2


def test_average_price_and_cent_rounding(ex: Exchange) -> None:
    quote(ex, "5000.00", "5000.25")
    ex.place(PB, MES, MARKET, BUY, 1, now=NOW + 1)
    quote(ex, "5000.25", "5000.50", at=2)
    ex.place(PB, MES, MARKET, BUY, 2, now=NOW + 3)
    (position,) = ex.positions(PB)
    assert position.average_price == D("5000.416667")  # reported to six decimals
    quote(ex, "5001.00", "5001.25", at=4)
    ex.partial_close_position(PB, MES, 1, now=NOW + 5)
    ex.close_position(PB, MES, now=NOW + 6)
    pnl = [f.profit_and_loss for f in ex.fills(PB, 0)]
    assert pnl == [None, None, D("2.92"), D("5.83")]
    assert sum(p for p in pnl if p is not None) == D("8.75")


def test_flat_then_reopen_gets_a_new_position(ex: Exchange) -> None:
    quote(ex, "5000.00", "5000.25")
    ex.place(PB, MES, MARKET, BUY, 1, now=NOW + 1)
    ex.place(PB, MES, MARKET, SELL, 1, now=NOW + 2)
    ex.place(PB, MES, MARKET, SELL, 1, now=NOW + 3)
    (position,) = ex.positions(PB)
    assert (position.id, position.side) == (FIRST_POSITION_ID + 1, PositionSide.SHORT)
    assert position.created_at == datetime.fromtimestamp(NOW + 3, UTC)


def test_display_name_falls_back_to_the_contract_name() -> None:
    contract = Contract("SIM1", "SIMZ5", "Simple", D("1"), D("1"), True)
    exchange = Exchange(
        [ContractSpec(contract, D("0"), D("0"), D("100"))], [SimAccount(1, "A", D("0"))], now=0
    )
    exchange.set_market("SIM1", bid=D("99"), bid_size=1, ask=D("100"), ask_size=1, last=None, now=1)
    exchange.place(1, "SIM1", MARKET, BUY, 1, now=2)
    (position,) = exchange.positions(1)
    assert position.contract_display_name == "SIMZ5"
    assert exchange.accounts()[0].balance == D("0")


# Queries


def test_queries(ex: Exchange) -> None:
    assert [a.id for a in ex.accounts()] == [PB, OCO]
    assert [a.id for a in ex.accounts(only_active=False)] == [PB, OCO, LOCKED]
    assert ex.contracts() == [spec.contract for spec in CATALOGUE]
    assert ex.contracts(live=True) == ex.contracts()
    expired = ex.contract(EXPIRED)
    assert expired is not None
    assert expired.active is False
    assert ex.contract("CON.F.US.XYZ.Z25") is None
    assert ex.clock == NOW

    quote(ex, "5000.00", "5000.25")
    first = ex.place(PB, MES, LIMIT, BUY, 1, limit_price=D("4990.00"), now=NOW + 10)
    second = ex.place(PB, MES, MARKET, BUY, 1, now=NOW + 20)
    third = ex.place(PB, MES, STOP, BUY, 1, stop_price=D("5010.00"), now=NOW + 30)
    other = ex.place(OCO, MES, LIMIT, SELL, 1, limit_price=D("5010.00"), now=NOW + 30)
    assert ex.clock == NOW + 30
    assert [o.id for o in ex.orders(PB, NOW)] == [first, second, third]
    assert [o.id for o in ex.orders(PB, NOW + 15, NOW + 25)] == [second]
    assert [o.id for o in ex.orders(PB, NOW + 10, NOW + 20)] == [first, second]
    assert [o.id for o in ex.open_orders(PB)] == [first, third]
    assert [o.id for o in ex.open_orders(OCO)] == [other]
    assert ex.order(PB, second).status is FILLED
    with pytest.raises(Rejection) as excinfo:
        ex.order(PB, other)
    assert rejection(excinfo) == (1, None, None)
    with pytest.raises(Rejection) as excinfo:
        ex.order(PB, 1)
    assert rejection(excinfo) == (1, None, None)
    assert [p.contract_id for p in ex.positions(PB)] == [MES]
    assert ex.positions(OCO) == []
    assert [f.order_id for f in ex.fills(PB, NOW + 20, NOW + 20)] == [second]
    assert ex.fills(PB, NOW + 21) == []
    assert ex.fills(PB, NOW, NOW + 19) == []
    for query in (ex.orders, ex.fills):
        with pytest.raises(Rejection) as excinfo:
            query(999, NOW)
        assert rejection(excinfo) == (1, None, None)
    for single in (ex.open_orders, ex.positions):
        with pytest.raises(Rejection) as excinfo:
            single(999)
        assert rejection(excinfo) == (1, None, None)


def test_queries_return_snapshots(ex: Exchange) -> None:
    quote(ex, "5000.00", "5000.25", ask_size=1)
    order_id = ex.place(PB, MES, LIMIT, BUY, 2, limit_price=D("5000.25"), now=NOW + 1)
    before = ex.order(PB, order_id)
    account_before = ex.accounts()[0]
    quote(ex, "5000.00", "5000.25", ask_size=1, at=2)
    assert before.fill_volume == 1
    assert ex.order(PB, order_id).fill_volume == 2
    assert account_before.balance == BALANCE - D("0.62")
    fills = ex.fills(PB, 0)
    fills.clear()
    assert len(ex.fills(PB, 0)) == 2


def test_configure_account(ex: Exchange) -> None:
    ex.configure_account(OCO, can_trade=False, now=NOW + 1)
    (event,) = ex.drain_events()
    assert event.entity == Account(OCO, "PRAC-V2-102", BALANCE, False, True, True)
    assert ex.clock == NOW + 1
    with pytest.raises(Rejection) as excinfo:
        ex.place(OCO, MES, MARKET, BUY, 1, now=NOW + 2)
    assert rejection(excinfo)[0] == 10
    with pytest.raises(ValueError, match="unknown account"):
        ex.configure_account(999, can_trade=True, now=NOW)


def test_construction_keeps_its_own_accounts() -> None:
    mine = accounts()
    exchange = Exchange(CATALOGUE, mine, now=NOW)
    exchange.set_market(MES, bid=D("1"), bid_size=1, ask=D("1.25"), ask_size=1, last=None, now=NOW)
    exchange.place(PB, MES, MARKET, BUY, 1, now=NOW)
    assert mine[0].balance == BALANCE
    with pytest.raises(ValueError, match="unique"):
        Exchange(CATALOGUE, [*mine, mine[0]], now=NOW)
    with pytest.raises(ValueError, match="unique"):
        Exchange([*CATALOGUE, CATALOGUE[0]], mine, now=NOW)


@pytest.mark.parametrize(
    ("contract", "prices", "sizes", "match"),
    [
        ("nope", ("1", "2", None), (1, 1), "unknown contract"),
        (MES, ("5000.10", "5000.25", None), (1, 1), "whole ticks"),
        (MES, ("5000.00", "5000.25", "5000.01"), (1, 1), "whole ticks"),
        (MES, ("5000.00", "5000.25", None), (-1, 1), "negative"),
        (MES, ("5000.25", "5000.25", None), (1, 1), "below the ask"),
    ],
)
def test_set_market_validation(
    ex: Exchange,
    contract: str,
    prices: tuple[str, str, str | None],
    sizes: tuple[int, int],
    match: str,
) -> None:
    bid, ask, last = prices
    with pytest.raises(ValueError, match=match):
        quote(ex, bid, ask, bid_size=sizes[0], ask_size=sizes[1], last=last, contract=contract)
    assert ex.drain_events() == []


# Determinism and invariants


def scripted_session() -> list[UserEvent]:
    exchange = Exchange(CATALOGUE, accounts(), now=NOW)
    quote(exchange, "5000.00", "5000.25", ask_size=2, last="5000.00")
    exchange.place(
        OCO,
        MES,
        MARKET,
        BUY,
        3,
        stop_loss=Bracket(-6, STOP),
        take_profit=Bracket(9, LIMIT),
        now=NOW + 1,
    )
    exchange.place(PB, MES, TRAIL, SELL, 1, trail_price=D("4995.00"), now=NOW + 2)
    exchange.place(PB, MES, LIMIT, BUY, 2, limit_price=D("4999.00"), custom_tag="x", now=NOW + 3)
    quote(exchange, "5002.25", "5002.50", bid_size=1, last="5002.25", at=4)
    quote(exchange, "4998.75", "4999.00", last="4999.00", at=5)
    exchange.place(PB, MES, MARKET, SELL, 4, now=NOW + 6)
    return exchange.drain_events()


def test_same_inputs_give_identical_events() -> None:
    first, second = scripted_session(), scripted_session()
    assert first == second
    assert len(first) > 20


Step = tuple[Any, ...]

sides = st.sampled_from([BUY, SELL])
steps: st.SearchStrategy[Step] = st.one_of(
    st.tuples(
        st.just("quote"), st.integers(-6, 6), st.integers(0, 4), st.integers(0, 4), st.booleans()
    ),
    st.tuples(st.just("market"), st.sampled_from([PB, OCO]), sides, st.integers(1, 6)),
    st.tuples(
        st.sampled_from(["limit", "stop", "trail"]), sides, st.integers(1, 5), st.integers(-4, 4)
    ),
    st.tuples(st.just("bracket"), sides, st.integers(1, 5), st.integers(4, 10), st.integers(1, 10)),
    st.tuples(st.just("cancel"), st.integers(0, 40)),
    st.tuples(st.just("modify"), st.integers(0, 40), st.integers(1, 6)),
    st.tuples(st.just("close"), st.sampled_from([PB, OCO]), st.integers(0, 3)),
)
PRICE_FIELDS = {LIMIT: "limit_price", STOP: "stop_price", TRAIL: "trail_price"}
STEP_TYPES = {"limit": LIMIT, "stop": STOP, "trail": TRAIL}


def run_step(exchange: Exchange, state: dict[str, int], step: Step, now: float) -> None:
    """Apply one random step; rejections are part of the game."""
    tick = D("0.25")
    kind, *args = step
    base = D("5000.00") + tick * state["mid"]
    try:
        if kind == "quote":
            move, bid_size, ask_size, with_last = args
            state["mid"] += move
            bid = base + tick * move
            exchange.set_market(
                MES,
                bid=bid,
                bid_size=bid_size,
                ask=bid + tick,
                ask_size=ask_size,
                last=bid if with_last else None,
                now=now,
            )
        elif kind == "market":
            account_id, side, size = args
            exchange.place(account_id, MES, MARKET, side, size, now=now)
        elif kind in STEP_TYPES:
            side, size, offset = args
            order_type = STEP_TYPES[kind]
            price: dict[str, Any] = {PRICE_FIELDS[order_type]: base + tick * offset}
            exchange.place(OCO, MES, order_type, side, size, now=now, **price)
        elif kind == "bracket":
            side, size, stop_loss, take_profit = args
            sign = 1 if side is BUY else -1
            exchange.place(
                OCO,
                MES,
                MARKET,
                side,
                size,
                stop_loss=Bracket(-sign * stop_loss, STOP),
                take_profit=Bracket(sign * take_profit, LIMIT),
                now=now,
            )
        elif kind == "cancel":
            exchange.cancel(OCO, FIRST_ORDER_ID + args[0], now=now)
        elif kind == "modify":
            exchange.modify(OCO, FIRST_ORDER_ID + args[0], size=args[1], now=now)
        elif args[1]:
            exchange.partial_close_position(args[0], MES, args[1], now=now)
        else:
            exchange.close_position(args[0], MES, now=now)
    except Rejection:
        pass


def check_invariants(exchange: Exchange, events: list[UserEvent]) -> None:
    initial = {a.id: a.balance for a in accounts()}
    for account in exchange.accounts(only_active=False):
        fills = exchange.fills(account.id, 0)
        signed = sum(f.size if f.side is BUY else -f.size for f in fills)
        held = sum(p.signed_size for p in exchange.positions(account.id))
        assert held == signed
        pnl = sum((f.profit_and_loss or Decimal(0) for f in fills), Decimal(0))
        costs = sum((f.fees + (f.commissions or Decimal(0)) for f in fills), Decimal(0))
        assert account.balance == initial[account.id] + pnl - costs
        by_order: dict[int, int] = {}
        for fill in fills:
            by_order[fill.order_id] = by_order.get(fill.order_id, 0) + fill.size
        for order in exchange.orders(account.id, 0):
            assert 0 <= order.fill_volume <= order.size
            assert by_order.get(order.id, 0) == order.fill_volume
            if order.fill_volume:
                assert order.filled_price is not None
    terminal: dict[int, OrderStatus] = {}
    for order in orders_in(events):
        assert order.id not in terminal, f"order {order.id} changed after {terminal[order.id]}"
        if order.status.is_terminal:
            terminal[order.id] = order.status
    for order_id, status in terminal.items():
        account_id = next(o.account_id for o in orders_in(events) if o.id == order_id)
        assert exchange.order(account_id, order_id).status is status


@settings(max_examples=200, deadline=None)
@given(st.lists(steps, max_size=40))
def test_random_sessions_keep_the_invariants(script: list[Step]) -> None:
    exchange = Exchange(CATALOGUE, accounts(), now=NOW)
    quote(exchange, "5000.00", "5000.25", bid_size=3, ask_size=3, last="5000.00", at=0)
    state = {"mid": 0}
    events: list[UserEvent] = []
    for index, step in enumerate(script):
        run_step(exchange, state, step, NOW + index)
        events.extend(exchange.drain_events())
        check_invariants(exchange, events)


def test_ids_increase(ex: Exchange) -> None:
    quote(ex, "5000.00", "5000.25", ask_size=1)
    for _ in range(3):
        ex.place(PB, MES, MARKET, BUY, 2, now=NOW)
    order_ids = [o.id for o in ex.orders(PB, 0)]
    fill_ids = [f.id for f in ex.fills(PB, 0)]
    assert all(a < b for a, b in pairwise(order_ids))
    assert all(a < b for a, b in pairwise(fill_ids))
    assert len(fill_ids) == 6
