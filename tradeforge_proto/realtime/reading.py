"""How long a reader of the event stream waits: at most an idle spell per event, until a total
duration has passed. Both runtimes' ``events()`` follow it; the clock is passed in."""

from __future__ import annotations

import warnings

import attrs


@attrs.frozen
class ReadWindow:
    """A read that stops after ``idle_timeout`` seconds without an event or at ``end``."""

    idle_timeout: float | None
    end: float | None

    @classmethod
    def start(
        cls,
        idle_timeout: float | None,
        duration: float | None,
        now: float,
        *,
        timeout: float | None = None,
    ) -> ReadWindow:
        """The window of a read starting at ``now``; ``timeout`` is the deprecated former name
        of ``idle_timeout``."""
        if timeout is not None:
            warnings.warn(
                "events(timeout=...) is now events(idle_timeout=...)",
                DeprecationWarning,
                stacklevel=3,
            )
            idle_timeout = timeout if idle_timeout is None else idle_timeout
        return cls(idle_timeout, None if duration is None else now + duration)

    @property
    def timed(self) -> bool:
        """Whether the clock matters at all (an unbounded read never looks at it)."""
        return self.idle_timeout is not None or self.end is not None

    def over(self, now: float) -> bool:
        """True once the duration has passed."""
        return self.end is not None and now >= self.end

    def wait(self, now: float) -> float | None:
        """How long to wait for the next event (None: without a limit)."""
        if self.end is None:
            return self.idle_timeout
        left = self.end - now
        return left if self.idle_timeout is None else min(self.idle_timeout, left)
