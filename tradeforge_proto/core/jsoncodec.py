"""The one JSON codec of the project (orjson underneath).

Numbers travel as JSON numbers, as the gateway sends them. Decimals are written through their
shortest float form only when that form is exact, so a price is never silently rounded on the way
out; reading turns floats back into Decimals through the same shortest form.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Final

import orjson

from .errors import LocalProtocolError, RemoteProtocolError

# Decimals beyond these magnitudes are refused before any arithmetic, so no value makes the
# codec build a huge integer or string; prices and money sit far inside them.
_MAX_ADJUSTED: Final = 17
_MIN_ADJUSTED: Final = -30


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise LocalProtocolError(f"cannot send a non-finite number: {value}")
        if not value:
            return 0
        if not _MIN_ADJUSTED <= value.adjusted() <= _MAX_ADJUSTED:
            raise LocalProtocolError(
                f"cannot send {value:.3E}: outside the magnitudes a JSON number carries exactly"
            )
        if value == value.to_integral_value():
            return int(value)
        as_float = float(value)
        if Decimal(repr(as_float)) != value:
            shown = f"{value:.6E}" if len(value.as_tuple().digits) > 30 else str(value)
            raise LocalProtocolError(f"{shown} has more digits than a JSON number carries exactly")
        return as_float
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def dumps(value: Any) -> bytes:
    """Encode ``value`` as compact UTF-8 JSON bytes; LocalProtocolError if it cannot be exact."""
    try:
        return orjson.dumps(value, default=_default)
    except orjson.JSONEncodeError as exc:
        cause = exc.__cause__
        if isinstance(cause, LocalProtocolError):
            raise cause from None
        raise LocalProtocolError(f"cannot encode as JSON: {exc}") from exc


JSONDecodeError = orjson.JSONDecodeError
"""What ``raw_loads`` raises for invalid JSON (a ValueError)."""

raw_loads: Final[Callable[[bytes | bytearray | memoryview | str], Any]] = orjson.loads
"""Decode JSON raising JSONDecodeError: for hot loops that word their own RemoteProtocolError."""


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """Decode JSON; anything that is not valid JSON raises RemoteProtocolError."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise RemoteProtocolError(f"invalid JSON: {exc}") from None


# Prices sit on a tick grid and repeat endlessly in market data: remember recent conversions.
_DECIMALS: dict[float, Decimal] = {}
_DECIMALS_MAX: Final = 8192


def to_decimal(value: Any) -> Decimal:
    """A JSON number (or numeric string) as an exact Decimal; ValueError for anything else."""
    kind = type(value)
    if kind is float:
        cached = _DECIMALS.get(value)
        if cached is not None:
            return cached
        if not math.isfinite(value):
            raise ValueError(f"expected a finite number, got {value!r}")
        result = Decimal(repr(value))
        if len(_DECIMALS) >= _DECIMALS_MAX:
            _DECIMALS.clear()
        _DECIMALS[value] = result
        return result
    if kind is int or kind is Decimal:
        return Decimal(value)
    if isinstance(value, str):
        try:
            parsed = Decimal(value.strip())
        except ArithmeticError:
            raise ValueError(f"expected a number, got {value!r}") from None
        if parsed.is_finite():
            return parsed
    raise ValueError(f"expected a number, got {value!r}")
