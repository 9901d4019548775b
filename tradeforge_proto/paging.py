"""Historical bars beyond one answer's cap: the requests to make, newest window first."""

from __future__ import annotations

from datetime import timedelta
from typing import Final

import attrs

from .core.bars import SHORTEST_SECONDS
from .core.errors import BarsCapExceeded, LocalProtocolError
from .core.models import Bar, BarRequest

PAGE_LIMIT: Final = 20_000
MAX_BARS: Final = 100_000
"""Bars one call may gather in all, across pages, unless a caller sets another cap."""
SPARSE_FACTOR: Final = 4
"""A window longer than this many times the cap in bar lengths is refused before any request:
even a market that trades a quarter of the time would fill it past the cap."""


class BarPager:
    """Walks back from ``end`` in pages of at most 20,000 bars until ``start`` or ``limit``.

    The gateway answers the most recent bars of a window, so each next page ends just before
    the oldest bar received so far. Without a ``limit``, a window holding more than ``max_bars``
    fails with BarsCapExceeded once one bar past the cap has arrived, and one spanning more than
    ``SPARSE_FACTOR`` times the cap in bar lengths before any request, so the work stays bounded.
    """

    def __init__(
        self,
        request: BarRequest,
        *,
        limit: int | None = None,
        page: int = PAGE_LIMIT,
        max_bars: int = MAX_BARS,
    ):
        if max_bars <= 0:
            raise LocalProtocolError(f"max_bars must be positive, got {max_bars}")
        if limit is not None and limit <= 0:
            raise LocalProtocolError(f"limit must be positive, got {limit}")
        if limit is not None and limit > max_bars:
            raise BarsCapExceeded(max_bars, f"limit {limit} is above")
        spans = _spans(request)
        if limit is None and spans is not None and spans > max_bars * SPARSE_FACTOR:
            raise BarsCapExceeded(max_bars, f"the window spans {spans:,} bars, far above")
        self._request = request
        self._wanted = limit
        self._cap = max_bars
        self._page = page
        self._bars: dict[object, Bar] = {}
        self._end = request.end
        self._done = False

    def next_request(self) -> BarRequest | None:
        """The next page to fetch, or None when complete."""
        if self._done:
            return None
        wanted = self._cap + 1 if self._wanted is None else self._wanted
        remaining = wanted - len(self._bars)
        return attrs.evolve(self._request, end=self._end, limit=min(self._page, remaining))

    def add(self, bars: list[Bar]) -> None:
        """Record one page (in any order)."""
        requested = self.next_request()
        if requested is None:
            raise LocalProtocolError("no page was requested")
        new = [bar for bar in bars if bar.time not in self._bars]
        for bar in new:
            self._bars[bar.time] = bar
        if len(self._bars) > self._cap:
            self._done = True
            raise BarsCapExceeded(self._cap, "the window holds more bars than")
        full = len(bars) >= requested.limit
        reached = self._wanted is not None and len(self._bars) >= self._wanted
        if not new or not full or reached:
            self._done = True
            return
        oldest = min(bar.time for bar in bars)
        if oldest <= self._request.start:
            self._done = True
            return
        self._end = oldest - timedelta(microseconds=1)

    @property
    def bars(self) -> list[Bar]:
        """Every bar received, oldest first (at most ``limit``, the most recent ones)."""
        ordered = sorted(self._bars.values(), key=lambda bar: bar.time)
        if self._wanted is not None:
            ordered = ordered[-self._wanted :]
        return ordered


def _spans(request: BarRequest) -> int | None:
    """How many bar lengths the window spans (None for tick bars, which have no length)."""
    seconds = SHORTEST_SECONDS.get(request.unit)
    if seconds is None:
        return None
    return int((request.end - request.start).total_seconds()) // (seconds * request.unit_number)
