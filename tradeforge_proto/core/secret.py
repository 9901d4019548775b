"""A string that never shows itself in a repr, a log line or an exception."""

from __future__ import annotations

from typing import Final

import attrs

_MASK: Final = "********"


@attrs.frozen(repr=False)
class Secret:
    """Wraps a token, key or password; ``reveal()`` is the only way to read it."""

    _value: str = attrs.field(alias="value")

    def reveal(self) -> str:
        """The secret itself, for the one place that must send it."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({_MASK!r})"

    def __str__(self) -> str:
        return _MASK

    def __bool__(self) -> bool:
        return bool(self._value)
