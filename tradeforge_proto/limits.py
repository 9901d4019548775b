"""Client-side rate limiting: a sliding-window log per rate bucket, driven by a clock passed in.

The gateway answers 429 once a budget is spent; counting our own requests first keeps us below it.
Each request counts only in the bucket it draws from (``Operation.bucket``).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

import attrs

from .core.errors import ConfigurationError, LocalProtocolError
from .core.operations import RateBucket

__all__ = ["DEFAULT_BUDGETS", "RateBudget", "RateLimiter"]


def _positive_int(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigurationError(f"{attribute.name} must be a positive integer, got {value!r}")


def _positive_float(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not math.isfinite(value) or value <= 0:
        raise ConfigurationError(f"{attribute.name} must be a positive number, got {value!r}")


@attrs.frozen
class RateBudget:
    """At most ``limit`` requests in any ``window`` seconds."""

    limit: int = attrs.field(validator=_positive_int)
    window: float = attrs.field(converter=float, validator=_positive_float)


DEFAULT_BUDGETS: Final[Mapping[RateBucket, RateBudget]] = MappingProxyType(
    {
        RateBucket.GENERAL: RateBudget(200, 60.0),
        RateBucket.HISTORY: RateBudget(50, 30.0),
    }
)


def _check_time(now: float) -> None:
    if not math.isfinite(now):
        raise LocalProtocolError(f"now must be a finite number of seconds, got {now!r}")


class RateLimiter:
    """Counts sent requests per bucket and says how long to wait before the next one.

    A bucket missing from ``budgets`` is not limited here (a server penalty still applies).
    """

    __slots__ = ("_budgets", "_latest", "_logs", "_penalties")

    def __init__(self, budgets: Mapping[RateBucket, RateBudget] = DEFAULT_BUDGETS) -> None:
        self._budgets: Mapping[RateBucket, RateBudget] = MappingProxyType(dict(budgets))
        self._logs: dict[RateBucket, deque[float]] = {
            bucket: deque(maxlen=budget.limit) for bucket, budget in self._budgets.items()
        }
        self._penalties: dict[RateBucket, float] = {}
        self._latest: float | None = None

    @property
    def budgets(self) -> Mapping[RateBucket, RateBudget]:
        """The budget of each limited bucket (read-only)."""
        return self._budgets

    def _observe(self, now: float) -> None:
        """Take note of the clock; a backward jump shifts every recorded time with it.

        So the waits still owed stay the same, and are never negative.
        """
        _check_time(now)
        latest = self._latest
        if latest is not None and now < latest:
            shift = latest - now
            for log in self._logs.values():
                for index in range(len(log)):
                    log[index] -= shift
            for bucket in self._penalties:
                self._penalties[bucket] -= shift
        self._latest = now

    def ready_at(self, bucket: RateBucket, now: float) -> float:
        """The earliest time (``now`` at the soonest) at which a request in ``bucket`` may go."""
        self._observe(now)
        ready = now
        log = self._logs.get(bucket)
        if log is not None and len(log) == log.maxlen:
            # The oldest of the last ``limit`` requests must leave the window first.
            ready = max(ready, log[0] + self._budgets[bucket].window)
        penalty = self._penalties.get(bucket)
        if penalty is not None:
            ready = max(ready, penalty)
        return ready

    def delay(self, bucket: RateBucket, now: float) -> float:
        """Seconds to wait before a request in ``bucket`` may be sent; 0.0 when it may go now."""
        return max(0.0, self.ready_at(bucket, now) - now)

    def acquire(self, bucket: RateBucket, now: float) -> None:
        """Record a request in ``bucket`` sent at ``now``; the caller must have waited first."""
        wait = self.delay(bucket, now)
        if wait > 0.0:
            raise LocalProtocolError(
                f"rate budget of {bucket.value!r} is spent: wait {wait:.3f} s before sending"
            )
        log = self._logs.get(bucket)
        if log is not None:
            log.append(now)  # a full log drops its oldest entry, which has left the window

    def penalize(self, bucket: RateBucket, until: float, *, now: float | None = None) -> None:
        """Block ``bucket`` until ``until`` (after a 429 with Retry-After).

        ``now``, the clock ``until`` was computed with, lets a backward jump be noticed first.
        """
        if now is not None:
            self._observe(now)
        _check_time(until)
        current = self._penalties.get(bucket)
        self._penalties[bucket] = until if current is None else max(current, until)

    def used(self, bucket: RateBucket, now: float) -> int:
        """How many requests in ``bucket`` still count against its budget at ``now``."""
        self._observe(now)
        log = self._logs.get(bucket)
        if log is None:
            return 0
        start = now - self._budgets[bucket].window
        return sum(1 for sent in log if sent > start)

    def __repr__(self) -> str:
        budgets = {bucket.value: (b.limit, b.window) for bucket, b in self._budgets.items()}
        return f"RateLimiter(budgets={budgets!r})"
