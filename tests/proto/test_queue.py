"""The event queue: FIFO order, per-contract coalescing of quotes and depth, the bound, counters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import reduce
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeforge_proto.core.book import OrderBook
from tradeforge_proto.core.enums import DepthType, TradeSide
from tradeforge_proto.core.errors import ConfigurationError, LocalProtocolError, TradeForgeError
from tradeforge_proto.core.events import (
    AccountUpdated,
    Connected,
    DepthReceived,
    MarketTradeReceived,
    QuoteUpdated,
    StreamEvent,
)
from tradeforge_proto.core.models import Account, DepthUpdate, MarketTrade, Quote
from tradeforge_proto.realtime.queue import EventQueue, QueueOverflow, merge_depth

ES = "CON.F.US.EP.U25"
NQ = "CON.F.US.ENQ.U25"
T0 = datetime(2025, 7, 21, 13, 45, tzinfo=UTC)


def d(
    kind: DepthType | int,
    price: str | Decimal = "0",
    volume: int = 0,
    *,
    contract_id: str = ES,
    timestamp: datetime | None = None,
) -> DepthUpdate:
    return DepthUpdate(
        contract_id=contract_id,
        type=DepthType(kind),
        price=Decimal(price),
        volume=volume,
        timestamp=timestamp,
    )


def depth(*updates: DepthUpdate, contract_id: str = ES) -> DepthReceived:
    return DepthReceived(contract_id, updates)


def quote(contract_id: str, last: str) -> QuoteUpdated:
    return QuoteUpdated(Quote(contract_id=contract_id, last_price=Decimal(last)))


def trade(price: str, volume: int = 1, contract_id: str = ES) -> MarketTradeReceived:
    return MarketTradeReceived(MarketTrade(contract_id, Decimal(price), volume, TradeSide.BUY))


def account(balance: str) -> AccountUpdated:
    return AccountUpdated(Account(id=7, name="PRAC-7", balance=Decimal(balance), can_trade=True))


def book_state(book: OrderBook) -> tuple[object, ...]:
    return (
        book.bids(),
        book.asks(),
        book.best_bid,
        book.best_ask,
        book.session_low,
        book.session_high,
        book.last_trade_price,
        book.last_trade_volume,
        book.ignored,
        book.last_update,
    )


# -- plain FIFO -----------------------------------------------------------------------------------


def test_user_events_and_trades_are_fifo_and_never_coalesced() -> None:
    queue = EventQueue(max_events=100)
    events: list[StreamEvent] = [
        account("100"),
        account("100"),  # equal events are still two events
        trade("5000.25"),
        trade("5000.25"),
        Connected("market", 0),
        account("90"),
    ]
    assert all(queue.put(event) for event in events)
    assert len(queue) == 6
    got = queue.drain()
    assert got == events
    assert all(a is b for a, b in zip(got, events, strict=True))
    assert queue.coalesced_quotes == queue.coalesced_depth == 0
    assert queue.get() is None
    assert queue.drain() == []


def test_empty_queue() -> None:
    queue = EventQueue()
    assert len(queue) == 0
    assert not queue
    assert queue.max_events == 10_000
    assert queue.space == 10_000
    assert queue.get() is None
    assert (queue.delivered, queue.high_water) == (0, 0)
    assert repr(queue) == (
        "EventQueue(0/10000, delivered=0, coalesced_quotes=0, coalesced_depth=0)"
    )


@pytest.mark.parametrize("bad", [0, -1, True, 2.5, "10"])
def test_max_events_must_be_a_positive_int(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="max_events"):
        EventQueue(max_events=bad)  # type: ignore[arg-type]


# -- quotes ---------------------------------------------------------------------------------------


def test_quote_replaces_the_waiting_quote_of_its_contract_in_place() -> None:
    queue = EventQueue()
    first_es = quote(ES, "5000")
    assert queue.put(first_es) is True
    assert queue.put(account("1")) is True
    assert queue.put(quote(NQ, "20000")) is True
    latest_es = quote(ES, "5001")
    assert queue.put(latest_es) is False
    assert queue.put(quote(NQ, "20001")) is False
    assert queue.put(latest_es) is False
    assert len(queue) == 3
    assert queue.coalesced_quotes == 3
    # The latest ES quote sits where the first one was; NQ keeps its own place.
    assert queue.get() is latest_es
    assert queue.get() == account("1")
    # Once delivered, a new ES quote is queued at the end, not merged into anything.
    assert queue.put(quote(ES, "5002")) is True
    assert queue.drain() == [quote(NQ, "20001"), quote(ES, "5002")]
    assert queue.coalesced_quotes == 3


def test_quotes_of_different_contracts_are_independent() -> None:
    queue = EventQueue()
    for i in range(5):
        queue.put(quote(ES, str(5000 + i)))
        queue.put(quote(NQ, str(20000 + i)))
    assert queue.drain() == [quote(ES, "5004"), quote(NQ, "20004")]
    assert queue.coalesced_quotes == 8


# -- depth ----------------------------------------------------------------------------------------


def test_unmerged_depth_is_delivered_untouched() -> None:
    queue = EventQueue()
    event = depth(d(DepthType.BID, "100", 1), d(DepthType.BID, "100", 2))
    assert queue.put(event) is True
    assert queue.get() is event


def test_depth_of_one_contract_merges_into_the_waiting_batch() -> None:
    queue = EventQueue()
    assert queue.put(depth(d(DepthType.BID, "100", 5), d(DepthType.ASK, "101", 3))) is True
    assert queue.put(trade("100.5")) is True
    assert queue.put(depth(d(DepthType.BID, "50", 1), contract_id=NQ)) is True
    assert queue.put(depth(d(DepthType.BID, "100", 4), d(DepthType.TRADE, "101", 2))) is False
    assert queue.put(depth(d(DepthType.ASK, "101", 0))) is False
    assert queue.coalesced_depth == 2
    assert queue.drain() == [
        depth(
            d(DepthType.BID, "100", 4),
            d(DepthType.TRADE, "101", 2),
            d(DepthType.ASK, "101", 0),
        ),
        trade("100.5"),
        depth(d(DepthType.BID, "50", 1), contract_id=NQ),
    ]
    # Delivered: the next ES batch starts a new entry at the end.
    assert queue.put(depth(d(DepthType.BID, "100", 9))) is True
    assert queue.get() == depth(d(DepthType.BID, "100", 9))


def test_merge_keeps_one_entry_per_side_and_price_moved_to_its_latest_change() -> None:
    merged = merge_depth(
        depth(d(DepthType.BID, "100", 5), d(DepthType.TRADE, "100", 1)),
        depth(d(DepthType.BEST_BID, "100.00", 4), d(DepthType.ASK, "100", 2)),
    )
    # BID / BEST_BID / NEW_BEST_BID are one side; 100 and 100.00 are one price.
    assert merged.updates == (
        d(DepthType.TRADE, "100", 1),
        d(DepthType.BEST_BID, "100.00", 4),
        d(DepthType.ASK, "100", 2),
    )


def test_reset_inside_a_merge_discards_the_levels_before_it() -> None:
    first = depth(
        d(DepthType.BID, "100", 5),
        d(DepthType.ASK, "101", 3),
        d(DepthType.TRADE, "100", 1),
        d(DepthType.LOW, "99"),
        d(DepthType.RESET),
    )
    second = depth(
        d(DepthType.BID, "99", 2),
        d(DepthType.RESET, timestamp=T0),
        d(DepthType.BID, "100", 7),
        d(DepthType.HIGH, "102"),
    )
    merged = merge_depth(first, second)
    # Prints and extremes survive a reset (a book keeps them); only the latest reset is kept.
    assert merged.updates == (
        d(DepthType.TRADE, "100", 1),
        d(DepthType.LOW, "99"),
        d(DepthType.RESET, timestamp=T0),
        d(DepthType.BID, "100", 7),
        d(DepthType.HIGH, "102"),
    )
    expected, actual = OrderBook(ES), OrderBook(ES)
    expected.apply(d(DepthType.ASK, "105", 1))
    actual.apply(d(DepthType.ASK, "105", 1))
    expected.apply_all(first.updates)
    expected.apply_all(second.updates)
    actual.apply_all(merged.updates)
    assert book_state(actual) == book_state(expected)
    assert actual.asks() == []


def test_extremes_keep_the_latest_and_prints_all_in_order() -> None:
    merged = merge_depth(
        depth(d(DepthType.HIGH, "105"), d(DepthType.TRADE, "104", 1), d(DepthType.LOW, "99")),
        depth(d(DepthType.FILL, "104.5", 2), d(DepthType.HIGH, "106"), d(DepthType.LOW, "98")),
    )
    assert merged.updates == (
        d(DepthType.TRADE, "104", 1),
        d(DepthType.FILL, "104.5", 2),
        d(DepthType.HIGH, "106"),
        d(DepthType.LOW, "98"),
    )


def test_entries_a_book_ignores_are_kept_in_order_and_never_replace_a_level() -> None:
    unknown = d(42, "100", 3)
    negative = d(DepthType.BID, "100", -1)
    nan_bid = d(DepthType.BID, "NaN", 1)
    nan_low = d(DepthType.LOW, "Infinity")
    merged = merge_depth(
        depth(d(DepthType.BID, "100", 5), unknown, unknown),
        depth(negative, nan_bid, nan_low, d(DepthType.UNKNOWN, "1", 1)),
    )
    assert merged.updates == (
        d(DepthType.BID, "100", 5),
        unknown,
        unknown,
        negative,
        nan_bid,
        nan_low,
        d(DepthType.UNKNOWN, "1", 1),
    )
    book = OrderBook(ES)
    book.apply_all(merged.updates)
    assert book.volume_at(Decimal("100")) == 5
    assert book.session_low is None


def test_entries_of_another_contract_are_kept_not_merged() -> None:
    foreign = d(DepthType.BID, "100", 1, contract_id=NQ)
    foreign_reset = d(DepthType.RESET, contract_id=NQ)
    merged = merge_depth(
        depth(d(DepthType.BID, "100", 5), foreign),
        depth(foreign_reset, d(DepthType.BID, "100", 6), foreign),
    )
    assert merged.updates == (foreign, foreign_reset, d(DepthType.BID, "100", 6), foreign)


def test_merge_depth_refuses_two_contracts() -> None:
    with pytest.raises(LocalProtocolError, match="cannot merge depth"):
        merge_depth(depth(contract_id=ES), depth(contract_id=NQ))


def test_merge_depth_of_empty_batches() -> None:
    assert merge_depth(depth(), depth()) == depth()
    only = depth(d(DepthType.ASK, "1", 1))
    assert merge_depth(only, depth()) == only
    assert merge_depth(depth(), only) == only


def test_merged_depth_is_bounded_by_levels_plus_prints() -> None:
    queue = EventQueue(max_events=1)
    prices = [Decimal(5000) + Decimal("0.25") * i for i in range(20)]
    prints = 0
    for i in range(10_000):
        price = prices[(i * 7) % 20]
        if i % 500 == 0:
            update = d(DepthType.TRADE, price, 1)
            prints += 1
        elif price < prices[10]:
            update = d(DepthType.BID, price, i % 9)
        else:
            update = d(DepthType.NEW_BEST_ASK, price, i % 9)
        queue.put(depth(update))
    assert len(queue) == 1
    assert queue.coalesced_depth == 9_999
    merged = queue.get()
    assert isinstance(merged, DepthReceived)
    assert len(merged.updates) <= 20 + prints
    assert sum(u.type == DepthType.TRADE for u in merged.updates) == prints


# -- depth merge equivalence (property) -----------------------------------------------------------

_PRICES = [Decimal("99.75"), Decimal("100"), Decimal("100.00"), Decimal("100.25"), Decimal("101")]
_ODD_PRICES = [Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity")]
_KINDS = [*DepthType, DepthType(42)]


@st.composite
def depth_updates(draw: st.DrawFn) -> DepthUpdate:
    kind = draw(st.sampled_from(_KINDS))
    price = draw(
        st.one_of(st.sampled_from(_PRICES), st.sampled_from(_ODD_PRICES))
        if draw(st.integers(0, 19)) == 0
        else st.sampled_from(_PRICES)
    )
    volume = draw(st.integers(-1, 4))
    stamp = T0 + timedelta(milliseconds=draw(st.integers(0, 10_000)))
    return DepthUpdate(ES, kind, price, volume, timestamp=stamp)


_BIDS = {DepthType.BID, DepthType.BEST_BID, DepthType.NEW_BEST_BID}
_ASKS = {DepthType.ASK, DepthType.BEST_ASK, DepthType.NEW_BEST_ASK}


def _merged_bound(updates: list[DepthUpdate]) -> int:
    """Distinct usable levels, one reset, one low, one high, plus every other entry."""
    levels = {
        (u.type in _BIDS, u.price)
        for u in updates
        if u.type in _BIDS | _ASKS and u.price.is_finite() and u.volume >= 0
    }
    replaceable = sum(
        u.type == DepthType.RESET
        or (u.type in {DepthType.LOW, DepthType.HIGH} and u.price.is_finite())
        or (u.type in _BIDS | _ASKS and u.price.is_finite() and u.volume >= 0)
        for u in updates
    )
    return len(levels) + 3 + len(updates) - replaceable


def _split(updates: list[DepthUpdate], cuts: list[int]) -> list[DepthReceived]:
    bounds = sorted({0, len(updates), *(c % (len(updates) + 1) for c in cuts)})
    return [depth(*updates[a:b]) for a, b in pairwise(bounds)]


@settings(max_examples=300, deadline=None)
@given(
    prefix=st.lists(depth_updates(), max_size=15),
    updates=st.lists(depth_updates(), max_size=60),
    cuts=st.lists(st.integers(0, 60), max_size=12),
)
def test_merged_depth_applies_like_every_original_batch(
    prefix: list[DepthUpdate], updates: list[DepthUpdate], cuts: list[int]
) -> None:
    batches = _split(updates, cuts) or [depth()]
    expected = OrderBook(ES)
    expected.apply_all(prefix)
    for batch in batches:
        expected.apply_all(batch.updates)

    folded = reduce(merge_depth, batches)
    queue = EventQueue(max_events=1)
    for batch in batches:
        queue.put(batch)
    queued = queue.get()
    assert queue.coalesced_depth == len(batches) - 1
    assert isinstance(queued, DepthReceived)
    assert queued == folded

    for merged in (folded, queued):
        actual = OrderBook(ES)
        actual.apply_all(prefix)
        actual.apply_all(merged.updates)
        assert book_state(actual) == book_state(expected)
        if len(batches) > 1:  # a lone batch is delivered untouched
            assert len(merged.updates) <= _merged_bound(updates)


# -- the bound ------------------------------------------------------------------------------------


def test_overflow_refuses_unmergeable_events_while_merges_still_succeed() -> None:
    queue = EventQueue(max_events=3)
    assert queue.put(quote(ES, "1"))
    assert queue.put(depth(d(DepthType.BID, "1", 1)))
    assert queue.put(account("10"))
    assert (len(queue), queue.space, queue.high_water) == (3, 0, 3)

    # Merges are fine at the bound and never grow the queue.
    assert not queue.would_overflow(quote(ES, "2"))
    assert queue.put(quote(ES, "2")) is False
    assert not queue.would_overflow(depth(d(DepthType.BID, "1", 2)))
    assert queue.put(depth(d(DepthType.BID, "1", 2))) is False
    assert len(queue) == 3

    refused: list[StreamEvent] = [
        account("11"),
        trade("1"),
        Connected("user", 1),
        quote(NQ, "1"),
        depth(d(DepthType.BID, "1", 1), contract_id=NQ),
    ]
    for event in refused:
        assert queue.would_overflow(event)
        with pytest.raises(QueueOverflow) as caught:
            queue.put(event)
        error = caught.value
        assert isinstance(error, TradeForgeError)
        assert error.event is event
        assert (error.length, error.max_events, error.delivered) == (3, 3, 0)
        assert (error.coalesced_quotes, error.coalesced_depth) == (1, 1)
        assert "3/3 waiting" in str(error)
        assert type(event).__name__ in str(error)
    assert len(queue) == 3

    assert queue.get() == quote(ES, "2")
    assert queue.space == 1
    assert not queue.would_overflow(account("11"))
    assert queue.put(account("11"))
    assert queue.drain() == [depth(d(DepthType.BID, "1", 2)), account("10"), account("11")]
    assert queue.high_water == 3


def test_counters_and_drain_with_max_items() -> None:
    queue = EventQueue(max_events=10)
    for i in range(6):
        queue.put(account(str(i)))
    queue.put(quote(ES, "1"))
    queue.put(quote(ES, "2"))
    assert queue.high_water == 7
    assert queue.drain(0) == []
    assert queue.drain(2) == [account("0"), account("1")]
    assert queue.delivered == 2
    assert queue.get() == account("2")
    assert queue.drain(100) == [account("3"), account("4"), account("5"), quote(ES, "2")]
    assert queue.delivered == 7
    assert queue.high_water == 7
    assert repr(queue) == "EventQueue(0/10, delivered=7, coalesced_quotes=1, coalesced_depth=0)"


@pytest.mark.parametrize("bad", [-1, True, 1.0, "2"])
def test_drain_rejects_a_bad_max_items(bad: object) -> None:
    queue = EventQueue()
    queue.put(account("1"))
    with pytest.raises(LocalProtocolError, match="max_items"):
        queue.drain(bad)  # type: ignore[arg-type]
    assert len(queue) == 1


def test_clear_discards_waiting_events_and_forgets_merge_targets() -> None:
    queue = EventQueue(max_events=5)
    queue.put(quote(ES, "1"))
    queue.put(depth(d(DepthType.BID, "1", 1)))
    queue.put(account("1"))
    assert queue.clear() == 3
    assert len(queue) == 0
    assert queue.put(quote(ES, "2")) is True
    assert queue.put(depth(d(DepthType.BID, "1", 2))) is True
    assert queue.drain() == [quote(ES, "2"), depth(d(DepthType.BID, "1", 2))]
    assert queue.delivered == 2
    assert queue.high_water == 3
