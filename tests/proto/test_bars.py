"""Bars aggregated from trade prints: alignment, completion, gaps, flushing and late trades."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeforge_proto.core.bars import BarAggregator, bar_start
from tradeforge_proto.core.enums import BarUnit, TradeSide
from tradeforge_proto.core.errors import LocalProtocolError
from tradeforge_proto.core.models import Bar, MarketTrade

CID = "CON.F.US.EP.U25"


def at(hour: int, minute: int, second: int = 0, micro: int = 0) -> datetime:
    return datetime(2025, 7, 21, hour, minute, second, micro, tzinfo=UTC)


def tr(
    time: datetime | None, price: str, volume: int = 1, *, contract_id: str = CID
) -> MarketTrade:
    return MarketTrade(
        contract_id=contract_id,
        price=Decimal(price),
        volume=volume,
        aggressor=TradeSide.BUY,
        timestamp=time,
    )


def bar(time: datetime, ohlc: str, volume: int) -> Bar:
    """A bar from ``"open high low close"``."""
    o, h, low, c = map(Decimal, ohlc.split())
    return Bar(time, o, h, low, c, volume)


def current(agg: BarAggregator) -> Bar | None:
    return agg.current


# -- bar_start ---------------------------------------------------------------------------------


def test_bar_start_alignment() -> None:
    assert bar_start(at(10, 7, 30), BarUnit.MINUTE, 5) == at(10, 5)
    assert bar_start(at(10, 5), BarUnit.MINUTE, 5) == at(10, 5)
    assert bar_start(at(10, 4, 59, 999_999), BarUnit.MINUTE, 5) == at(10, 0)
    assert bar_start(at(10, 7, 33, 500), BarUnit.SECOND, 5) == at(10, 7, 30)
    assert bar_start(at(10, 7, 33), BarUnit.SECOND, 1) == at(10, 7, 33)
    assert bar_start(at(10, 59), BarUnit.HOUR, 1) == at(10, 0)
    assert bar_start(at(11, 59), BarUnit.HOUR, 4) == at(8, 0)
    # Another time zone: aligned on UTC, returned in UTC.
    eastern = timezone(timedelta(hours=-4))
    local = datetime(2025, 7, 21, 6, 7, 30, tzinfo=eastern)
    start = bar_start(local, BarUnit.MINUTE, 5)
    assert start == at(10, 5)
    assert start.tzinfo is UTC
    # Before the epoch the floor still rounds down.
    old = datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert bar_start(old, BarUnit.MINUTE, 1) == datetime(1969, 12, 31, 23, 59, tzinfo=UTC)


@pytest.mark.parametrize("unit", [BarUnit.UNSPECIFIED, BarUnit.DAY, BarUnit.TICK, BarUnit(77)])
def test_unsupported_unit(unit: BarUnit) -> None:
    with pytest.raises(LocalProtocolError, match=unit.name):
        BarAggregator(unit)
    with pytest.raises(LocalProtocolError):
        bar_start(at(10, 0), unit, 1)


@pytest.mark.parametrize("size", [0, -1, True, 1.5])
def test_bad_size(size: object) -> None:
    with pytest.raises(LocalProtocolError, match="size"):
        BarAggregator(BarUnit.MINUTE, size)  # type: ignore[arg-type]


def test_naive_time_refused() -> None:
    with pytest.raises(LocalProtocolError, match="timezone"):
        bar_start(datetime(2025, 7, 21, 10, 0), BarUnit.MINUTE, 1)
    agg = BarAggregator(BarUnit.MINUTE)
    with pytest.raises(LocalProtocolError):
        agg.add(tr(datetime(2025, 7, 21, 10, 0), "1"))
    with pytest.raises(LocalProtocolError, match="now"):
        agg.flush(datetime(2025, 7, 21, 10, 0))


def test_raw_int_unit_is_accepted() -> None:
    agg = BarAggregator(2, 3)  # type: ignore[arg-type]
    assert agg.unit is BarUnit.MINUTE
    assert agg.size == 3
    assert agg.period == timedelta(minutes=3)
    assert agg.contract_id is None


# -- aggregation -------------------------------------------------------------------------------


def test_one_minute_bars_across_three_minutes() -> None:
    agg = BarAggregator(BarUnit.MINUTE, contract_id=CID)
    assert current(agg) is None
    assert agg.add(tr(at(10, 0, 5), "100.00", 2)) == []
    assert agg.add(tr(at(10, 0, 20), "100.50", 1)) == []
    assert agg.add(tr(at(10, 0, 40), "99.75", 3)) == []
    assert agg.add(tr(at(10, 0, 59, 999_999), "100.25", 1)) == []
    assert agg.current == bar(at(10, 0), "100.00 100.50 99.75 100.25", 7)
    done = agg.add(tr(at(10, 1), "100.25", 4))
    assert done == [bar(at(10, 0), "100.00 100.50 99.75 100.25", 7)]
    done = agg.add_all(
        [tr(at(10, 1, 30), "101.00", 1), tr(at(10, 2, 10), "100.75", 2), tr(None, "100.50", 1)]
    )
    assert done == [bar(at(10, 1), "100.25 101.00 100.25 101.00", 5)]
    assert agg.current == bar(at(10, 2), "100.75 100.75 100.50 100.50", 3)
    assert agg.close() == bar(at(10, 2), "100.75 100.75 100.50 100.50", 3)
    assert current(agg) is None
    assert agg.close() is None
    assert "MINUTE" in repr(agg)


def test_five_second_bars() -> None:
    agg = BarAggregator(BarUnit.SECOND, 5)
    trades = [
        tr(at(10, 0, 0, 100), "10", 1),
        tr(at(10, 0, 4), "11", 1),
        tr(at(10, 0, 5), "12", 2),
        tr(at(10, 0, 9, 999_999), "9", 2),
        tr(at(10, 0, 10), "10", 5),
    ]
    assert agg.add_all(trades) == [
        bar(at(10, 0, 0), "10 11 10 11", 2),
        bar(at(10, 0, 5), "12 12 9 9", 4),
    ]
    assert agg.current == bar(at(10, 0, 10), "10 10 10 10", 5)


def test_five_minute_alignment() -> None:
    agg = BarAggregator(BarUnit.MINUTE, 5)
    agg.add(tr(at(10, 7, 30), "50"))
    current = agg.current
    assert current is not None
    assert current.time == at(10, 5)
    assert agg.add(tr(at(10, 9, 59), "51")) == []
    assert agg.add(tr(at(10, 10), "52")) == [bar(at(10, 5), "50 51 50 51", 2)]


def test_hour_bars() -> None:
    agg = BarAggregator(BarUnit.HOUR)
    agg.add(tr(at(10, 59, 59), "1"))
    assert agg.add(tr(at(11, 0), "2")) == [bar(at(10, 0), "1 1 1 1", 1)]


def test_gaps_produce_no_empty_bars() -> None:
    agg = BarAggregator(BarUnit.MINUTE)
    agg.add(tr(at(10, 0, 30), "1", 1))
    assert agg.add(tr(at(10, 7, 1), "2", 1)) == [bar(at(10, 0), "1 1 1 1", 1)]
    assert agg.add(tr(at(12, 0), "3", 1)) == [bar(at(10, 7), "2 2 2 2", 1)]


def test_flush_on_time() -> None:
    agg = BarAggregator(BarUnit.MINUTE)
    assert agg.flush(at(10, 0)) == []  # nothing open
    agg.add(tr(at(10, 0, 30), "5", 2))
    assert agg.flush(at(10, 0, 59, 999_999)) == []
    assert current(agg) is not None
    assert agg.flush(at(10, 1)) == [bar(at(10, 0), "5 5 5 5", 2)]
    assert current(agg) is None
    assert agg.flush(at(10, 5)) == []
    # The next trade opens its own bucket.
    assert agg.add(tr(at(10, 3, 1), "6", 1)) == []
    assert agg.flush(at(10, 4)) == [bar(at(10, 3), "6 6 6 6", 1)]


def test_late_trade_merges_into_current_bar() -> None:
    agg = BarAggregator(BarUnit.MINUTE)
    agg.add(tr(at(10, 0, 10), "100", 1))
    agg.add(tr(at(10, 1, 10), "101", 1))
    assert agg.add(tr(at(10, 0, 50), "98", 4)) == []  # belongs to the completed 10:00 bar
    assert agg.late_trades == 1
    assert agg.dropped_trades == 0
    # Volume, high and low absorb it; open and close stay.
    assert agg.current == bar(at(10, 1), "101 101 98 101", 5)
    agg.add(tr(at(10, 0, 55), "103", 1))
    assert agg.current == bar(at(10, 1), "101 103 98 101", 6)
    assert agg.late_trades == 2
    # An untimed trade takes the latest time seen (10:01:10), not the late trade's time.
    agg.add(tr(None, "102", 1))
    assert agg.current == bar(at(10, 1), "101 103 98 102", 7)
    assert agg.late_trades == 2


def test_late_trade_after_flush_is_dropped() -> None:
    agg = BarAggregator(BarUnit.MINUTE)
    agg.add(tr(at(10, 0, 10), "100", 1))
    (done,) = agg.flush(at(10, 1, 0, 500))
    assert agg.add(tr(at(10, 0, 59, 900_000), "99", 3)) == []
    assert current(agg) is None
    assert (agg.late_trades, agg.dropped_trades) == (1, 1)
    assert done == bar(at(10, 0), "100 100 100 100", 1)
    # A trade in the next bucket is fine.
    agg.add(tr(at(10, 1, 1), "101", 1))
    assert current(agg) is not None


def test_close_forbids_reopening_its_bucket() -> None:
    agg = BarAggregator(BarUnit.MINUTE)
    agg.add(tr(at(10, 0, 10), "100", 1))
    assert agg.close() is not None
    agg.add(tr(at(10, 0, 20), "100", 1))
    assert current(agg) is None
    assert agg.dropped_trades == 1


def test_untimed_first_trade_is_refused() -> None:
    agg = BarAggregator(BarUnit.MINUTE)
    with pytest.raises(LocalProtocolError, match="timestamp"):
        agg.add(tr(None, "1"))
    assert current(agg) is None


def test_wrong_contract_is_refused() -> None:
    agg = BarAggregator(BarUnit.MINUTE, contract_id=CID)
    with pytest.raises(LocalProtocolError, match="NQ"):
        agg.add(tr(at(10, 0), "1", contract_id="CON.F.US.NQ.U25"))
    open_agg = BarAggregator(BarUnit.MINUTE)
    open_agg.add(tr(at(10, 0), "1", contract_id="CON.F.US.NQ.U25"))
    assert open_agg.current is not None


@pytest.mark.parametrize(
    ("price", "volume"),
    [(Decimal("NaN"), 1), (Decimal("Infinity"), 1), (1.5, 1), (Decimal(1), -1), (Decimal(1), True)],
)
def test_malformed_trade_is_refused(price: object, volume: object) -> None:
    agg = BarAggregator(BarUnit.MINUTE)
    trade = MarketTrade(CID, price, volume, TradeSide.SELL, at(10, 0))  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        agg.add(trade)
    assert current(agg) is None


# -- properties --------------------------------------------------------------------------------

_BASE = at(9, 30)
_UNITS = st.sampled_from([(BarUnit.SECOND, 1), (BarUnit.SECOND, 5), (BarUnit.MINUTE, 1)])
_UNITS = _UNITS | st.tuples(st.sampled_from(list(BarUnit)[1:4]), st.integers(1, 7))

trade_lists = st.lists(
    st.tuples(
        st.integers(0, 4 * 3600 * 1000),  # milliseconds after the base time
        st.integers(1, 400).map(lambda ticks: ticks * Decimal("0.25")),
        st.integers(0, 20),
    ),
    max_size=80,
).map(sorted)


@settings(max_examples=200, deadline=None)
@given(_UNITS, trade_lists)
def test_bars_conserve_volume_and_are_consistent(
    spec: tuple[BarUnit, int], rows: list[tuple[int, Decimal, int]]
) -> None:
    unit, size = spec
    agg = BarAggregator(unit, size)
    trades = [tr(_BASE + timedelta(milliseconds=ms), str(p), v) for ms, p, v in rows]
    bars = agg.add_all(trades)
    final = agg.close()
    if final is not None:
        bars.append(final)
    assert sum(b.volume for b in bars) == sum(v for _, _, v in rows)
    assert len(bars) == len({bar_start(t.timestamp, unit, size) for t in trades if t.timestamp})
    for b in bars:
        assert b.high >= max(b.open, b.close)
        assert b.low <= min(b.open, b.close)
        assert bar_start(b.time, unit, size) == b.time
    assert all(a.time < b.time for a, b in pairwise(bars))
    assert agg.late_trades == 0
