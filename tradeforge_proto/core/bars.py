"""OHLCV bars built from market trade prints, aligned to UTC epoch boundaries.

A bar covers the half-open interval ``[start, start + size * unit)``; ``Bar.time`` is its start.
Nothing here reads a clock: trades carry their own time and ``flush`` is given the current time.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Final

from .enums import BarUnit
from .errors import LocalProtocolError
from .models import Bar, ContractId, MarketTrade

__all__ = ["SHORTEST_SECONDS", "BarAggregator", "bar_start"]

SHORTEST_SECONDS: Final[dict[BarUnit, int]] = {
    BarUnit.SECOND: 1,
    BarUnit.MINUTE: 60,
    BarUnit.HOUR: 3600,
    BarUnit.DAY: 86_400,
    BarUnit.WEEK: 7 * 86_400,
    BarUnit.MONTH: 28 * 86_400,
}
"""Seconds in the shortest bar of each time unit (a month: February's 28 days)."""
_UNIT_SECONDS: Final = {
    u: SHORTEST_SECONDS[u] for u in (BarUnit.SECOND, BarUnit.MINUTE, BarUnit.HOUR)
}
"""The units trades are aggregated in here: fixed lengths only."""
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)


def _period(unit: BarUnit, size: int) -> timedelta:
    seconds = _UNIT_SECONDS.get(unit)
    if seconds is None:
        name = getattr(unit, "name", unit)
        raise LocalProtocolError(f"bars can be built in seconds, minutes or hours, not {name}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise LocalProtocolError(f"bar size must be a positive whole number, got {size!r}")
    return timedelta(seconds=seconds * size)


def _floor(time: datetime, period_us: int) -> datetime:
    if time.utcoffset() is None:
        raise LocalProtocolError(f"bar times must be timezone-aware, got {time!r}")
    elapsed = (time - _EPOCH) // _MICROSECOND
    return _EPOCH + timedelta(microseconds=elapsed - elapsed % period_us)


def bar_start(time: datetime, unit: BarUnit, size: int) -> datetime:
    """Start (in UTC) of the ``size``-``unit`` bar holding ``time``, aligned to the UTC epoch."""
    return _floor(time, _period(unit, size) // _MICROSECOND)


class BarAggregator:
    """Turns trade prints into OHLCV bars of ``size`` seconds, minutes or hours.

    Rules beyond plain OHLCV:

    * A trade without a timestamp takes the latest trade time seen so far; before any timestamped
      trade it raises ``LocalProtocolError``.
    * Gaps produce no empty bars: a trade in a later bucket completes the current bar and opens the
      bar of its own bucket.
    * A late trade (its bucket starts before the current bar) is merged into the current bar's
      volume, high and low, leaving open and close alone; completed bars are never reopened. When
      there is no current bar to absorb it (after ``flush`` or ``close``) it is dropped. Both cases
      count in ``late_trades``; drops also count in ``dropped_trades``.
    """

    def __init__(
        self, unit: BarUnit, size: int = 1, *, contract_id: ContractId | None = None
    ) -> None:
        self._period = _period(unit, size)
        self._period_us = self._period // _MICROSECOND
        self._unit = BarUnit(unit)
        self._size = size
        self._contract_id = contract_id
        self._start: datetime | None = None
        self._open = self._high = self._low = self._close = Decimal(0)
        self._volume = 0
        # Bars starting before this time were already handed out and must not reappear.
        self._floor: datetime | None = None
        self._latest: datetime | None = None
        self._late_trades = 0
        self._dropped_trades = 0

    def __repr__(self) -> str:
        return (
            f"BarAggregator({self._unit.name}, {self._size}, contract_id={self._contract_id!r}, "
            f"current={self.current!r})"
        )

    @property
    def unit(self) -> BarUnit:
        """The time unit of the bars."""
        return self._unit

    @property
    def size(self) -> int:
        """How many units one bar spans."""
        return self._size

    @property
    def period(self) -> timedelta:
        """The length of one bar."""
        return self._period

    @property
    def contract_id(self) -> ContractId | None:
        """The only contract accepted, or None to accept any."""
        return self._contract_id

    @property
    def late_trades(self) -> int:
        """Trades that arrived after their bucket had been passed (merged or dropped)."""
        return self._late_trades

    @property
    def dropped_trades(self) -> int:
        """Late trades discarded because no bar was open to absorb them."""
        return self._dropped_trades

    @property
    def current(self) -> Bar | None:
        """The bar being built, or None when no trade has opened one."""
        if self._start is None:
            return None
        return Bar(self._start, self._open, self._high, self._low, self._close, self._volume)

    def add(self, trade: MarketTrade) -> list[Bar]:
        """Add one trade; returns the bars it completed (empty or a single bar)."""
        if self._contract_id is not None and trade.contract_id != self._contract_id:
            raise LocalProtocolError(
                f"trade for {trade.contract_id!r} given to the bars of {self._contract_id!r}"
            )
        price, volume = trade.price, trade.volume
        if not isinstance(price, Decimal) or not price.is_finite():
            raise LocalProtocolError(f"trade price must be a finite Decimal, got {price!r}")
        if isinstance(volume, bool) or not isinstance(volume, int) or volume < 0:
            raise LocalProtocolError(f"trade volume must be a whole number >= 0, got {volume!r}")
        time = trade.timestamp if trade.timestamp is not None else self._latest
        if time is None:
            raise LocalProtocolError("a trade without a timestamp needs an earlier timed trade")
        start = _floor(time, self._period_us)
        if self._latest is None or time > self._latest:
            self._latest = time

        completed: list[Bar] = []
        if self._start is not None and start > self._start:
            completed.append(self._finish(self._start))
        if self._start is None:
            if self._floor is not None and start < self._floor:
                self._late_trades += 1
                self._dropped_trades += 1
                return completed
            self._start = start
            self._open = self._high = self._low = self._close = price
            self._volume = volume
            return completed
        if start < self._start:
            self._late_trades += 1
        else:
            self._close = price
        self._high = max(self._high, price)
        self._low = min(self._low, price)
        self._volume += volume
        return completed

    def add_all(self, trades: Iterable[MarketTrade]) -> list[Bar]:
        """Add a batch of trades (one GatewayTrade message) in order; returns completed bars."""
        completed: list[Bar] = []
        for trade in trades:
            completed.extend(self.add(trade))
        return completed

    def flush(self, now: datetime) -> list[Bar]:
        """Complete the current bar once ``now`` reaches its end, so quiet markets close bars."""
        if now.utcoffset() is None:
            raise LocalProtocolError(f"now must be timezone-aware, got {now!r}")
        if self._start is not None and now >= self._start + self._period:
            return [self._finish(self._start)]
        return []

    def close(self) -> Bar | None:
        """Return the partial bar and clear it; later trades in its bucket count as late."""
        if self._start is None:
            return None
        return self._finish(self._start)

    def _finish(self, start: datetime) -> Bar:
        bar = Bar(start, self._open, self._high, self._low, self._close, self._volume)
        self._floor = start + self._period
        self._start = None
        return bar
