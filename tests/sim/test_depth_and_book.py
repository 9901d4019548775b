"""Depth that carries the gateway's DOM types, and orders that walk the simulated book."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import anyio
import pytest

from tradeforge_proto.core import DepthReceived, OrderBook, QuoteUpdated, Subscription
from tradeforge_proto.core.enums import DepthType, OrderSide, OrderStatus, OrderType
from tradeforge_proto.core.models import Bracket, Fill, Order
from tradeforge_proto.providers import topstepx
from tradeforge_proto.providers.topstepx.hubs import MarketHub
from tradeforge_sim.auth import DEFAULT_API_KEY, DEFAULT_USERNAME
from tradeforge_sim.contracts import default_catalogue
from tradeforge_sim.engine import Exchange, SimAccount, UserEvent, UserEventKind
from tradeforge_sim.market import DepthChange, QuoteChange, SyntheticMarket, TradePrints
from tradeforge_sim.server import SimServer

from .netclient import Hub, Rest

T0 = 1_763_994_600.0  # 2025-11-24 14:30:00 UTC, a Monday
CATALOGUE = default_catalogue(datetime.fromtimestamp(T0, UTC))
MES = next(spec for spec in CATALOGUE if "MES" in spec.contract.id and spec.contract.active)
ACCOUNT = 20258288
PB = 101
BUY, SELL = OrderSide.BUY, OrderSide.SELL
UPDATE_TYPES = frozenset(
    {
        DepthType.BID,
        DepthType.ASK,
        DepthType.BEST_BID,
        DepthType.BEST_ASK,
        DepthType.NEW_BEST_BID,
        DepthType.NEW_BEST_ASK,
        DepthType.TRADE,
    }
)


def mes_market(seed: int = 3) -> SyntheticMarket:
    return SyntheticMarket([MES.contract], seed=seed, base_prices={MES.contract.id: MES.base_price})


class Reader:
    """A subscriber fed through the real hub decoder: a merged quote and a rebuilt book."""

    def __init__(self, m: SyntheticMarket, now: float) -> None:
        self.cid = MES.contract.id
        self.hub = MarketHub("https://sim/hubs/market")
        self.book = OrderBook(self.cid)
        self.types: Counter[DepthType] = Counter()
        self.hub.decode("GatewayQuote", (self.cid, m.quote_snapshot(self.cid, now)))
        self.depth(m.depth_snapshot(self.cid, now))

    def depth(self, entries: list[dict[str, Any]]) -> None:
        """Decode one depth message and apply it; trades must sit at or inside the touch."""
        (event,) = self.hub.decode("GatewayDepth", (self.cid, entries))
        assert isinstance(event, DepthReceived)
        for update in event.updates:
            assert update.type.is_known, update
            self.types[update.type] += 1
            if update.type is DepthType.TRADE:
                bid, ask = self.book.best_bid, self.book.best_ask
                assert bid is not None
                assert ask is not None
                assert bid.price <= update.price <= ask.price
            if update.type in UPDATE_TYPES - {DepthType.BID, DepthType.ASK}:
                assert update.volume > 0
            self.book.apply(update)

    def feed(self, updates: list[Any]) -> None:
        for update in updates:
            if isinstance(update, DepthChange):
                self.depth(update.entries)
            elif isinstance(update, QuoteChange):
                self.hub.decode("GatewayQuote", (self.cid, update.data))

    def best_prices_match_the_quote(self) -> bool:
        quote = self.hub.last_quote(self.cid)
        bid, ask = self.book.best_bid, self.book.best_ask
        assert quote is not None
        assert bid is not None
        assert ask is not None
        return (bid.price, ask.price) == (quote.best_bid, quote.best_ask)


# The feed


def test_depth_carries_trades_and_best_prices_and_agrees_with_the_quotes() -> None:
    m = mes_market()
    m.advance(T0)
    reader = Reader(m, T0)
    for step in range(1, 401):
        reader.feed(m.advance(T0 + step * 0.05))
        assert reader.best_prices_match_the_quote()
        assert not reader.book.is_crossed
    assert reader.types.keys() >= UPDATE_TYPES
    assert DepthType.FILL not in reader.types
    updates = sum(reader.types[kind] for kind in UPDATE_TYPES)
    assert 0.05 < reader.types[DepthType.TRADE] / updates < 0.4
    for best, new_best in (
        (DepthType.BEST_BID, DepthType.NEW_BEST_BID),
        (DepthType.BEST_ASK, DepthType.NEW_BEST_ASK),
    ):
        assert 0.02 < (reader.types[best] + reader.types[new_best]) / updates < 0.3


def test_each_trade_print_has_a_trade_entry_at_its_price_and_size() -> None:
    m = mes_market(seed=4)
    m.advance(T0)
    prints: list[tuple[Decimal, int]] = []
    entries: list[tuple[Decimal, int]] = []
    for step in range(1, 201):
        for update in m.advance(T0 + step * 0.05):
            if isinstance(update, TradePrints):
                prints += [(p["price"], p["volume"]) for p in update.prints]
            elif isinstance(update, DepthChange):
                entries += [
                    (e["price"], e["volume"])
                    for e in update.entries
                    if e["type"] == DepthType.TRADE
                ]
    assert prints
    assert entries == prints


def test_the_touch_shrinks_by_what_traded_until_the_book_refreshes() -> None:
    m = mes_market(seed=5)
    m.advance(T0)
    seen = 0
    for step in range(1, 401):
        for update in m.advance(T0 + step * 0.05):
            if not isinstance(update, DepthChange):
                continue
            kinds = [e["type"] for e in update.entries]
            if DepthType.TRADE not in kinds or kinds[-1] == DepthType.TRADE:
                continue
            last = update.entries[-1]
            if last["type"] in (DepthType.BEST_BID, DepthType.BEST_ASK):
                seen += 1
                assert last["volume"] >= 1
                assert last["currentVolume"] >= 1
    assert seen


def test_session_extremes_are_sent_as_low_and_high() -> None:
    midnight = 1_764_028_800.0  # 2025-11-25 00:00 UTC
    m = mes_market(seed=6)
    m.advance(midnight - 5)
    reader = Reader(m, midnight - 5)
    extremes: list[dict[str, Any]] = []
    for step in range(1, 201):
        updates = m.advance(midnight - 5 + step * 0.05)
        reader.feed(updates)
        for update in updates:
            if isinstance(update, DepthChange):
                extremes += [
                    e for e in update.entries if e["type"] in (DepthType.LOW, DepthType.HIGH)
                ]
    assert {e["type"] for e in extremes} == {DepthType.LOW, DepthType.HIGH}
    assert all(e["volume"] > 0 for e in extremes)
    quote = reader.hub.last_quote(MES.contract.id)
    assert quote is not None
    assert (reader.book.session_low, reader.book.session_high) == (quote.low, quote.high)


# The paper exchange on the simulated book


def exchange_on(m: SyntheticMarket, now: float) -> Exchange:
    ex = Exchange(CATALOGUE, [SimAccount(PB, "PRAC-V2-101", Decimal(10) ** 7)], now=now)
    refresh(ex, m, now)
    return ex


def refresh(ex: Exchange, m: SyntheticMarket, now: float) -> None:
    cid = MES.contract.id
    touch = m.touch(cid)
    ex.set_market(
        cid,
        bid=touch.bid,
        bid_size=touch.bid_size,
        ask=touch.ask,
        ask_size=touch.ask_size,
        last=touch.last,
        now=now,
        depth=m.levels(cid),
    )


def trades_of(events: list[UserEvent]) -> list[tuple[Decimal, int]]:
    fills = [e.entity for e in events if e.kind is UserEventKind.TRADE]
    return [(f.price, f.size) for f in fills if isinstance(f, Fill)]


def orders_of(events: list[UserEvent]) -> list[Order]:
    return [e.entity for e in events if isinstance(e.entity, Order)]


def average(executions: list[tuple[Decimal, int]]) -> Decimal:
    return sum((p * s for p, s in executions), Decimal(0)) / sum(s for _, s in executions)


@pytest.mark.parametrize("side", [BUY, SELL])
def test_a_large_market_order_walks_the_simulated_levels(side: OrderSide) -> None:
    m = mes_market()
    m.advance(T0)
    m.advance(T0 + 3)
    ex = exchange_on(m, T0 + 3)
    bids, asks = m.levels(MES.contract.id)
    levels = asks if side is BUY else bids
    size = sum(s for _, s in levels[:3]) + 1
    order_id = ex.place(PB, MES.contract.id, OrderType.MARKET, side, size, now=T0 + 3)
    events = ex.drain_events()
    assert trades_of(events) == [*levels[:3], (levels[3][0], 1)]
    order = ex.order(PB, order_id)
    assert order.status is OrderStatus.FILLED
    assert order.filled_price == average(trades_of(events)).quantize(Decimal("0.000001"))
    ex.place(PB, MES.contract.id, OrderType.MARKET, side, 1, now=T0 + 3)
    # What was taken stays taken until the book refreshes: the next lot trades further on.
    assert trades_of(ex.drain_events()) == [(levels[3][0], 1)]
    refresh(ex, m, T0 + 3)
    ex.drain_events()
    one = ex.place(PB, MES.contract.id, OrderType.MARKET, side, 1, now=T0 + 3)
    single = ex.order(PB, one).filled_price
    assert single == levels[0][0]
    assert order.filled_price is not None
    worse = order.filled_price > single if side is BUY else order.filled_price < single
    assert worse


def test_a_market_order_bigger_than_the_book_fills_in_part_and_the_rest_is_cancelled() -> None:
    m = mes_market(seed=7)
    m.advance(T0)
    ex = exchange_on(m, T0)
    _, asks = m.levels(MES.contract.id)
    available = sum(s for _, s in asks)
    order_id = ex.place(PB, MES.contract.id, OrderType.MARKET, BUY, available + 5, now=T0)
    events = ex.drain_events()
    assert trades_of(events) == asks
    statuses = [o.status for o in orders_of(events)]
    assert statuses == [OrderStatus.PENDING, OrderStatus.CANCELLED]
    order = ex.order(PB, order_id)
    assert (order.status, order.fill_volume) == (OrderStatus.CANCELLED, available)
    assert ex.positions(PB)[0].size == available
    # Nothing is left on that side until the book refreshes.
    empty = ex.place(PB, MES.contract.id, OrderType.MARKET, BUY, 1, now=T0)
    assert trades_of(ex.drain_events()) == []
    assert ex.order(PB, empty).status is OrderStatus.CANCELLED
    refresh(ex, m, T0 + 0.5)
    ex.place(PB, MES.contract.id, OrderType.MARKET, BUY, 1, now=T0 + 0.5)
    assert trades_of(ex.drain_events()) == [(asks[0][0], 1)]


def test_a_market_order_filled_in_part_gets_brackets_for_what_it_filled() -> None:
    m = mes_market(seed=7)
    m.advance(T0)
    ex = Exchange(
        CATALOGUE,
        [SimAccount(PB, "PRAC-V2-101", Decimal(10) ** 7, auto_oco_brackets=True)],
        now=T0,
    )
    refresh(ex, m, T0)
    _, asks = m.levels(MES.contract.id)
    available = sum(s for _, s in asks)
    entry = ex.place(
        PB,
        MES.contract.id,
        OrderType.MARKET,
        BUY,
        available + 5,
        stop_loss=Bracket(-8, OrderType.STOP),
        take_profit=Bracket(8, OrderType.LIMIT),
        now=T0,
    )
    children = [o for o in ex.open_orders(PB) if o.parent_order_id == entry]
    assert sorted(o.type for o in children) == [OrderType.LIMIT, OrderType.STOP]
    assert {o.size for o in children} == {available}  # the position is protected in full
    assert {o.side for o in children} == {SELL}


def test_a_crossing_limit_order_walks_up_to_its_limit_and_rests_the_rest() -> None:
    m = mes_market(seed=8)
    m.advance(T0)
    ex = exchange_on(m, T0)
    bids, _ = m.levels(MES.contract.id)
    limit = bids[2][0]
    size = sum(s for _, s in bids[:3]) + 2
    order_id = ex.place(PB, MES.contract.id, OrderType.LIMIT, SELL, size, limit_price=limit, now=T0)
    assert trades_of(ex.drain_events()) == bids[:3]
    order = ex.order(PB, order_id)
    assert (order.status, order.fill_volume) == (OrderStatus.OPEN, size - 2)
    assert [o.id for o in ex.open_orders(PB)] == [order_id]


@pytest.mark.parametrize(
    ("bids", "asks", "message"),
    [
        ([("6000.00", 3)], [("6000.50", 2)], "start at its touch"),
        ([("6000.00", 5)], [("6000.25", 2), ("6000.60", 1)], "whole ticks"),
        ([("6000.00", 5)], [("6000.25", 2), ("6000.50", -1)], "negative"),
        ([("6000.00", 5), ("6000.00", 1)], [("6000.25", 2)], "get worse"),
    ],
)
def test_depth_that_does_not_fit_the_touch_is_refused(
    bids: list[tuple[str, int]], asks: list[tuple[str, int]], message: str
) -> None:
    ex = Exchange(CATALOGUE, [SimAccount(PB, "PRAC-V2-101", Decimal(50_000))], now=T0)
    depth = (
        [(Decimal(p), s) for p, s in bids],
        [(Decimal(p), s) for p, s in asks],
    )
    with pytest.raises(ValueError, match=message):
        ex.set_market(
            MES.contract.id,
            bid=Decimal("6000.00"),
            bid_size=5,
            ask=Decimal("6000.25"),
            ask_size=2,
            last=None,
            now=T0,
            depth=depth,
        )


# Over the wire


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def wait_until(condition: Any, timeout: float = 30.0) -> None:
    """Return once ``condition()`` holds; the timeout only guards against a hang."""
    with anyio.fail_after(timeout):
        while not condition():
            await anyio.sleep(0.02)


def hub_book(hub: Hub, cid: str) -> OrderBook:
    book = OrderBook(cid)
    for event in hub.events:
        if isinstance(event, DepthReceived):
            book.apply_all(event.updates)
    return book


def hub_types(hub: Hub) -> set[DepthType]:
    return {u.type for e in hub.events if isinstance(e, DepthReceived) for u in e.updates}


def last_quote(hub: Hub) -> QuoteUpdated | None:
    quotes = [e for e in hub.events if isinstance(e, QuoteUpdated)]
    return quotes[-1] if quotes else None


@pytest.mark.anyio
async def test_depth_on_the_market_hub_has_trades_and_best_prices_that_match_the_quotes() -> None:
    async with SimServer() as sim:
        rest = Rest(sim.api_url)
        await rest.login(DEFAULT_USERNAME, DEFAULT_API_KEY)
        contracts = await rest.run(topstepx.available_contracts())
        cid = next(c.id for c in contracts if "MES" in c.id)
        hub = Hub(MarketHub(sim.market_hub_url), rest.token)
        hub.subscribe(Subscription.quotes(cid))
        hub.subscribe(Subscription.depth(cid))
        wanted = {DepthType.TRADE, DepthType.BEST_BID, DepthType.BEST_ASK}
        async with anyio.create_task_group() as tg:
            tg.start_soon(hub.run)
            await wait_until(lambda: hub_types(hub) >= wanted)
            sim.market_paused = True
            touch = sim.simulation.market.touch(cid)

            def agreed() -> bool:
                book, quote = hub_book(hub, cid), last_quote(hub)
                if quote is None or book.best_bid is None or book.best_ask is None:
                    return False
                return (
                    (book.best_bid.price, book.best_ask.price)
                    == (quote.quote.best_bid, quote.quote.best_ask)
                    == (touch.bid, touch.ask)
                )

            await wait_until(agreed)
            tg.cancel_scope.cancel()
        assert all(kind.is_known for kind in hub_types(hub))
        await rest.aclose()


@pytest.mark.anyio
async def test_a_large_market_order_fills_level_by_level_at_a_worse_average() -> None:
    async with SimServer() as sim:
        rest = Rest(sim.api_url)
        await rest.login(DEFAULT_USERNAME, DEFAULT_API_KEY)
        contracts = await rest.run(topstepx.available_contracts())
        mes = next(c for c in contracts if "MES" in c.id)
        sim.market_paused = True
        start = datetime.now(UTC) - timedelta(minutes=1)
        touch = sim.simulation.market.touch(mes.id)
        one = await rest.run(
            topstepx.place_order(ACCOUNT, mes.id, OrderSide.BUY, OrderType.MARKET, 1)
        )
        big = await rest.run(
            topstepx.place_order(ACCOUNT, mes.id, OrderSide.BUY, OrderType.MARKET, 100)
        )
        single = await rest.run(topstepx.get_order(ACCOUNT, one))
        large = await rest.run(topstepx.get_order(ACCOUNT, big))
        fills = [
            f for f in await rest.run(topstepx.search_trades(ACCOUNT, start)) if f.order_id == big
        ]
        fills.sort(key=lambda f: f.price)
        assert single.filled_price == touch.ask
        prices = [f.price for f in fills]
        assert len(prices) >= 3
        assert prices[0] in (touch.ask, touch.ask + mes.tick_size)
        assert prices == [prices[0] + mes.tick_size * i for i in range(len(prices))]
        assert all(f.size > 0 for f in fills)
        assert sum(f.size for f in fills) == large.fill_volume
        assert large.status in (OrderStatus.FILLED, OrderStatus.CANCELLED)
        assert large.filled_price is not None
        assert single.filled_price is not None
        assert large.filled_price > single.filled_price
        await rest.aclose()
