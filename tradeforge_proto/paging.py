"""Historical bars beyond one answer's cap: the requests to make, newest window first."""

from __future__ import annotations

from datetime import timedelta
from typing import Final

import attrs

from .core.errors import LocalProtocolError
from .core.models import Bar, BarRequest

PAGE_LIMIT: Final = 20_000


class BarPager:
    """Walks back from ``end`` in pages of at most 20,000 bars until ``start`` or ``limit``.

    The gateway answers the most recent bars of a window, so each next page ends just before
    the oldest bar received so far.
    """

    def __init__(self, request: BarRequest, *, limit: int | None = None, page: int = PAGE_LIMIT):
        if limit is not None and limit <= 0:
            raise LocalProtocolError(f"limit must be positive, got {limit}")
        self._request = request
        self._wanted = limit
        self._page = page
        self._bars: dict[object, Bar] = {}
        self._end = request.end
        self._done = False

    def next_request(self) -> BarRequest | None:
        """The next page to fetch, or None when complete."""
        if self._done:
            return None
        remaining = self._page if self._wanted is None else self._wanted - len(self._bars)
        return attrs.evolve(self._request, end=self._end, limit=min(self._page, remaining))

    def add(self, bars: list[Bar]) -> None:
        """Record one page (in any order)."""
        requested = self.next_request()
        if requested is None:
            raise LocalProtocolError("no page was requested")
        new = [bar for bar in bars if bar.time not in self._bars]
        for bar in new:
            self._bars[bar.time] = bar
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
