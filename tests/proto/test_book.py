"""The depth-of-market book: rebuilding from depth updates, queries, and a reference model."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeforge_proto.core.book import BookSnapshot, Level, OrderBook
from tradeforge_proto.core.enums import DepthType
from tradeforge_proto.core.errors import LocalProtocolError
from tradeforge_proto.core.models import DepthUpdate

CID = "CON.F.US.EP.U25"
T0 = datetime(2025, 7, 21, 13, 45, tzinfo=UTC)
T1 = datetime(2025, 7, 21, 13, 45, 1, tzinfo=UTC)


def d(
    kind: DepthType | int,
    price: str | Decimal = "0",
    volume: int = 0,
    *,
    timestamp: datetime | None = None,
    contract_id: str = CID,
) -> DepthUpdate:
    return DepthUpdate(
        contract_id=contract_id,
        type=DepthType(kind),
        price=Decimal(price),
        volume=volume,
        timestamp=timestamp,
    )


def lv(price: str, volume: int) -> Level:
    return Level(Decimal(price), volume)


def image() -> list[DepthUpdate]:
    """A reset followed by a full book image, as the feed sends on subscription."""
    return [
        d(DepthType.RESET, timestamp=T0),
        d(DepthType.BID, "5000.00", 12),
        d(DepthType.BID, "4999.75", 30),
        d(DepthType.BEST_BID, "5000.25", 4),
        d(DepthType.BID, "4999.50", 7),
        d(DepthType.ASK, "5001.00", 9),
        d(DepthType.BEST_ASK, "5000.50", 3),
        d(DepthType.ASK, "5000.75", 15),
        d(DepthType.ASK, "5001.25", 22, timestamp=T1),
    ]


def test_empty_book() -> None:
    book = OrderBook(CID)
    assert book.contract_id == CID
    assert book.best_bid is None
    assert book.best_ask is None
    assert book.spread is None
    assert book.mid is None
    assert not book.is_crossed
    assert book.bids() == []
    assert book.asks(5) == []
    assert book.volume_at(Decimal(1)) == 0
    assert book.updates_applied == 0
    assert book.ignored == 0
    assert book.last_update is None
    assert book.snapshot() == BookSnapshot(CID, (), (), None)
    assert book.snapshot().best_bid is None
    assert book.snapshot().best_ask is None


def test_reset_then_image_builds_the_book() -> None:
    book = OrderBook(CID)
    book.apply_all(image())
    assert book.best_bid == lv("5000.25", 4)
    assert book.best_ask == lv("5000.50", 3)
    assert book.spread == Decimal("0.25")
    assert book.mid == Decimal("5000.375")
    assert not book.is_crossed
    assert book.bids() == [
        lv("5000.25", 4),
        lv("5000.00", 12),
        lv("4999.75", 30),
        lv("4999.50", 7),
    ]
    assert book.asks() == [
        lv("5000.50", 3),
        lv("5000.75", 15),
        lv("5001.00", 9),
        lv("5001.25", 22),
    ]
    assert book.updates_applied == 9
    assert book.last_update == T1
    assert "5000.25" in repr(book)


def test_top_n_depth() -> None:
    book = OrderBook(CID)
    book.apply_all(image())
    assert book.bids(2) == [lv("5000.25", 4), lv("5000.00", 12)]
    assert book.asks(2) == [lv("5000.50", 3), lv("5000.75", 15)]
    assert book.bids(0) == []
    assert book.asks(0) == []
    assert book.bids(3) == book.bids()[:3]
    assert book.bids(4) == book.bids()
    assert book.bids(100) == book.bids()
    assert book.asks(100) == book.asks()
    snap = book.snapshot(depth=1)
    assert snap == BookSnapshot(CID, (lv("5000.25", 4),), (lv("5000.50", 3),), T1)
    assert snap.best_bid == lv("5000.25", 4)
    assert snap.best_ask == lv("5000.50", 3)
    assert len(book.snapshot().bids) == 4


@pytest.mark.parametrize("depth", [-1, True, 1.5, "3"])
def test_bad_depth_is_refused(depth: object) -> None:
    book = OrderBook(CID)
    with pytest.raises(LocalProtocolError):
        book.bids(depth)  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        book.asks(depth)  # type: ignore[arg-type]


def test_level_update_and_removal() -> None:
    book = OrderBook(CID)
    book.apply_all(image())
    book.apply(d(DepthType.BID, "5000.00", 20))
    assert book.volume_at(Decimal("5000.00")) == 20
    assert book.volume_at(Decimal("5000")) == 20  # the same price, another exponent
    book.apply(d(DepthType.BEST_BID, "5000.25", 0))
    assert book.best_bid == lv("5000.00", 20)
    book.apply(d(DepthType.NEW_BEST_BID, "5000.25", 6))
    assert book.best_bid == lv("5000.25", 6)
    book.apply(d(DepthType.BEST_ASK, "5000.50", 0))
    assert book.best_ask == lv("5000.75", 15)
    book.apply(d(DepthType.NEW_BEST_ASK, "5000.50", 1))
    assert book.best_ask == lv("5000.50", 1)
    book.apply(d(DepthType.ASK, "5001.25", 0))
    assert book.asks()[-1] == lv("5001.00", 9)
    # Removing a level that is not there is harmless.
    book.apply(d(DepthType.ASK, "6000", 0))
    book.apply(d(DepthType.BID, "1", 0))
    assert len(book.asks()) == 3
    assert len(book.bids()) == 4
    assert book.volume_at(Decimal("4000")) == 0


def test_reset_mid_stream_clears_stale_levels() -> None:
    book = OrderBook(CID)
    book.apply_all(image())
    book.apply_all(
        [
            d(DepthType.RESET),
            d(DepthType.BID, "4990.00", 5),
            d(DepthType.ASK, "4990.25", 8),
        ]
    )
    assert book.bids() == [lv("4990.00", 5)]
    assert book.asks() == [lv("4990.25", 8)]
    assert book.volume_at(Decimal("5000.25")) == 0


def test_prints_and_session_extremes_do_not_touch_levels() -> None:
    book = OrderBook(CID)
    book.apply_all(image())
    before = book.snapshot(depth=100)
    book.apply(d(DepthType.TRADE, "5000.50", 2))
    assert (book.last_trade_price, book.last_trade_volume) == (Decimal("5000.50"), 2)
    book.apply(d(DepthType.FILL, "5000.25", 1, timestamp=T0))
    assert (book.last_trade_price, book.last_trade_volume) == (Decimal("5000.25"), 1)
    book.apply(d(DepthType.LOW, "4950.00", 0))
    book.apply(d(DepthType.HIGH, "5050.00", 0))
    assert book.session_low == Decimal("4950.00")
    assert book.session_high == Decimal("5050.00")
    assert book.snapshot(depth=100).bids == before.bids
    assert book.snapshot(depth=100).asks == before.asks
    assert book.last_update == T0
    # A reset clears levels only: prints and extremes stay.
    book.apply(d(DepthType.RESET))
    assert book.best_bid is None
    assert book.last_trade_price == Decimal("5000.25")
    assert book.session_high == Decimal("5050.00")


def test_unknown_and_malformed_entries_are_ignored_and_counted() -> None:
    book = OrderBook(CID)
    book.apply_all(image())
    before = book.snapshot(depth=100)
    applied = book.updates_applied
    book.apply_all(
        [
            d(DepthType.UNKNOWN, "5000.00", 3),
            d(42, "5000.00", 3),  # an undocumented type: UNKNOWN_42
            d(DepthType.BID, "5000.00", -1),
            d(DepthType.ASK, "5000.75", -5),
            d(DepthType.TRADE, "5000.75", -5),
            d(DepthType.BID, "NaN", 3),
            d(DepthType.ASK, "Infinity", 3),
            d(DepthType.HIGH, "sNaN", 0),
            d(DepthType.BID, "5000.00", True),
        ]
    )
    assert book.ignored == 9
    assert book.updates_applied == applied
    assert book.snapshot(depth=100) == before
    assert book.session_high is None
    assert book.last_trade_price is None


def test_non_decimal_price_is_ignored() -> None:
    book = OrderBook(CID)
    bad = DepthUpdate(CID, DepthType.BID, 5000.25, 3)  # type: ignore[arg-type]
    book.apply(bad)
    assert book.ignored == 1
    assert book.best_bid is None


def test_wrong_contract_is_refused() -> None:
    book = OrderBook(CID)
    with pytest.raises(LocalProtocolError, match=r"CON\.F\.US\.NQ\.U25"):
        book.apply(d(DepthType.BID, "1", 1, contract_id="CON.F.US.NQ.U25"))
    assert book.updates_applied == 0
    assert book.ignored == 0


def crossed(book: OrderBook) -> bool:
    return book.is_crossed


def test_crossed_detection() -> None:
    book = OrderBook(CID)
    book.apply_all([d(DepthType.BID, "100.00", 1), d(DepthType.ASK, "100.25", 1)])
    assert not crossed(book)
    book.apply(d(DepthType.NEW_BEST_BID, "100.25", 2))
    assert crossed(book)  # locked counts as crossed
    assert book.spread == Decimal(0)
    assert book.volume_at(Decimal("100.25")) == 3  # both sides, summed
    book.apply(d(DepthType.NEW_BEST_BID, "100.50", 2))
    assert crossed(book)
    assert book.spread == Decimal("-0.25")
    book.apply_all([d(DepthType.BID, "100.50", 0), d(DepthType.BID, "100.25", 0)])
    assert not crossed(book)


def test_clear() -> None:
    book = OrderBook(CID)
    book.apply_all(image())
    book.clear()
    assert book.bids() == []
    assert book.asks() == []
    assert book.updates_applied == 9


def test_snapshot_is_immutable() -> None:
    book = OrderBook(CID)
    book.apply_all(image())
    snap = book.snapshot()
    book.apply(d(DepthType.RESET))
    assert len(snap.bids) == 4
    with pytest.raises(AttributeError):
        snap.bids = ()  # type: ignore[misc]


# -- against a reference model ----------------------------------------------------------------

_TICK = Decimal("0.25")
_BID_KINDS = {DepthType.BID, DepthType.BEST_BID, DepthType.NEW_BEST_BID}
_ASK_KINDS = {DepthType.ASK, DepthType.BEST_ASK, DepthType.NEW_BEST_ASK}

updates = st.builds(
    d,
    st.sampled_from([*DepthType, 12, 99]),
    st.integers(9_980, 10_020).map(lambda ticks: ticks * _TICK),
    st.one_of(st.just(0), st.integers(-2, 50)),
)


class _Reference:
    """Two plain dicts, sorted on every query."""

    def __init__(self) -> None:
        self.bids: dict[Decimal, int] = {}
        self.asks: dict[Decimal, int] = {}

    def apply(self, update: DepthUpdate) -> None:
        if update.type == DepthType.RESET:
            self.bids.clear()
            self.asks.clear()
            return
        side = self.bids if update.type in _BID_KINDS else None
        side = self.asks if update.type in _ASK_KINDS else side
        if side is None or update.volume < 0:
            return
        if update.volume == 0:
            side.pop(update.price, None)
        else:
            side[update.price] = update.volume

    def bid_levels(self) -> list[Level]:
        return [Level(p, self.bids[p]) for p in sorted(self.bids, reverse=True)]

    def ask_levels(self) -> list[Level]:
        return [Level(p, self.asks[p]) for p in sorted(self.asks)]


@settings(max_examples=200, deadline=None)
@given(st.lists(updates, max_size=120), st.integers(0, 8))
def test_matches_reference_model(stream: list[DepthUpdate], depth: int) -> None:
    book = OrderBook(CID)
    ref = _Reference()
    for update in stream:
        book.apply(update)
        ref.apply(update)
        want_bids, want_asks = ref.bid_levels(), ref.ask_levels()
        assert book.best_bid == (want_bids[0] if want_bids else None)
        assert book.best_ask == (want_asks[0] if want_asks else None)
    assert book.bids() == ref.bid_levels()
    assert book.asks() == ref.ask_levels()
    assert book.bids(depth) == ref.bid_levels()[:depth]
    assert book.asks(depth) == ref.ask_levels()[:depth]
    for price, volume in ref.bids.items():
        assert book.volume_at(price) == volume + ref.asks.get(price, 0)
    assert book.updates_applied + book.ignored == len(stream)
