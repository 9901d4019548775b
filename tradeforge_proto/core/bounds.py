"""What a caller may send: bounded prices, sizes, ids and text, checked before any work is done.

Every check is cheap whatever it is given (a string is measured before it is parsed, a Decimal's
digits and exponent before any arithmetic), so a hostile value costs microseconds and never
freezes a process. Refusals are ``InvalidValue``: a ``LocalProtocolError`` that is also a
``ValueError``, so validation frameworks report it as a field error.
"""

from __future__ import annotations

import re
import reprlib
from decimal import Context, Decimal
from typing import Final

from .errors import LocalProtocolError

MAX_PRICE: Final = Decimal(10) ** 9
"""Prices are below a billion."""
MAX_PRICE_PLACES: Final = 10
"""Prices carry at most ten decimal places (trailing zeros aside)."""
MAX_PRICE_DIGITS: Final = 24
"""A price has at most this many digits as written, trailing zeros included."""
MAX_SIGNIFICANT: Final = 15
"""Significant digits of a price (trailing zeros aside): a JSON number carries them exactly."""
MAX_NUMBER_TEXT: Final = 40
"""A price given as text is at most this many characters."""
MAX_SIZE: Final = 10_000
"""Contracts in one order, modification or partial close."""
MAX_ID: Final = 2**53 - 1
"""Account and order ids: positive integers that a JSON number carries exactly."""
MAX_TICKS: Final = 100_000
"""Bracket offsets in ticks, either sign."""
MAX_CONTRACT_ID: Final = 64
"""Characters in a contract id."""
MAX_TAG: Final = 100
"""Characters in an order's custom tag."""
MAX_TEXT: Final = 256
"""Characters in a search text or symbol."""


def _short_repr() -> reprlib.Repr:
    """A repr of bounded depth and length (keywords arrive only in Python 3.12)."""
    short = reprlib.Repr()
    short.maxlevel, short.maxlist, short.maxdict = 2, 4, 4
    short.maxstring = short.maxother = 37
    return short


_SHORT: Final = _short_repr()
_EXACT: Final = Context(prec=MAX_PRICE_DIGITS + 4)
DECIMAL_PATTERN: Final = r"[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]{1,3})?|\.[0-9]+"
"""Price text as ``price`` reads it: digits, an optional fraction and exponent, nothing else."""
CONTRACT_ID_PATTERN: Final = r"[A-Za-z0-9][A-Za-z0-9._:-]*"
"""Contract id text as ``contract_id`` reads it."""
_DECIMAL_TEXT: Final = re.compile(DECIMAL_PATTERN)
_CONTRACT_ID: Final = re.compile(CONTRACT_ID_PATTERN)


class InvalidValue(LocalProtocolError, ValueError):
    """A value outside what may be sent: its field and the rule it breaks."""

    def __init__(self, name: str, rule: str, value: object) -> None:
        self.name = name
        self.rule = rule
        super().__init__(f"{name} {rule}, got {_brief(value)}")


def _brief(value: object) -> str:
    """A short description: never the whole of a long text or a huge number."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"an integer of {value.bit_length()} bits"
    if isinstance(value, str | bytes) and len(value) > 40:
        return f"{value[:37]!r}... ({len(value)} characters)"
    if isinstance(value, Decimal) and len(value.as_tuple().digits) > 30:
        return f"a decimal of {len(value.as_tuple().digits)} digits"
    text = _SHORT.repr(value)  # bounded depth and length: nested containers stay cheap
    return text if len(text) <= 40 else f"{text[:37]}..."


def price(value: object, name: str = "price") -> Decimal:
    """A positive price below ``MAX_PRICE`` with at most ``MAX_PRICE_PLACES`` decimal places.

    Accepts a Decimal, an int, a finite float (through its shortest form, never its binary value)
    or plain decimal text: digits with an optional fraction and exponent, no sign, whitespace or
    ``_`` separators.
    """
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, bool):
        raise InvalidValue(name, "must be a number, not a bool", value)
    elif isinstance(value, int):
        if not 0 < value < MAX_PRICE:
            raise InvalidValue(name, f"must be above 0 and below {MAX_PRICE}", value)
        return Decimal(value)
    elif isinstance(value, float):
        number = Decimal(repr(value))
    elif isinstance(value, str):
        if len(value) > MAX_NUMBER_TEXT or not _DECIMAL_TEXT.fullmatch(value):
            raise InvalidValue(name, "must be plain decimal text such as 6150.25", value)
        number = Decimal(value)
    else:
        raise InvalidValue(name, "must be a number", value)
    return _bounded(number, name, value)


def _bounded(number: Decimal, name: str, given: object) -> Decimal:
    if not number.is_finite():
        raise InvalidValue(name, "must be finite", given)
    if len(number.as_tuple().digits) > MAX_PRICE_DIGITS:
        raise InvalidValue(name, f"must have at most {MAX_PRICE_DIGITS} digits", given)
    if not 0 < number < MAX_PRICE:
        raise InvalidValue(name, f"must be above 0 and below {MAX_PRICE}", given)
    # Bounded digits and magnitude keep normalize() exact and cheap; its own context keeps it
    # independent of the caller's decimal precision.
    reduced = number.normalize(_EXACT) if number.adjusted() >= -MAX_PRICE_PLACES else None
    if reduced is None or _places(reduced) > MAX_PRICE_PLACES:
        raise InvalidValue(name, f"must have at most {MAX_PRICE_PLACES} decimal places", given)
    if len(reduced.as_tuple().digits) > MAX_SIGNIFICANT:
        raise InvalidValue(name, f"must have at most {MAX_SIGNIFICANT} significant digits", given)
    return number


def _places(number: Decimal) -> int:
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)
    return -exponent


def optional_price(value: object, name: str = "price") -> Decimal | None:
    """``price`` that lets None through (a field left unset)."""
    return None if value is None else price(value, name)


def _whole(value: object, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidValue(name, "must be a whole number (not text, a float or a bool)", value)
    if not low <= value <= high:
        raise InvalidValue(name, f"must be from {low} to {high}", value)
    return value


def size(value: object, name: str = "size", maximum: int = MAX_SIZE) -> int:
    """A whole number of contracts from 1 to ``maximum``: an int, never a bool, float or text."""
    return _whole(value, name, 1, maximum)


def identifier(value: object, name: str = "id") -> int:
    """An account or order id: an int from 1 to ``MAX_ID``, never a bool, float or text."""
    return _whole(value, name, 1, MAX_ID)


def ticks(value: object, name: str = "ticks") -> int:
    """A signed, non-zero bracket offset within ``MAX_TICKS``."""
    offset = _whole(value, name, -MAX_TICKS, MAX_TICKS)
    if offset == 0:
        raise InvalidValue(name, "must not be zero", value)
    return offset


def text(value: object, name: str = "text", maximum: int = MAX_TEXT) -> str:
    """Printable text of 1 to ``maximum`` characters without surrounding whitespace."""
    if not isinstance(value, str):
        raise InvalidValue(name, "must be text", value)
    if not 1 <= len(value) <= maximum:
        raise InvalidValue(name, f"must be 1 to {maximum} characters long", value)
    if not value.isprintable() or value != value.strip():
        raise InvalidValue(
            name, "must be printable, without control characters or surrounding spaces", value
        )
    return value


def contract_id(value: object, name: str = "contract_id") -> str:
    """A contract id: letters, digits and ``. _ : -``, at most ``MAX_CONTRACT_ID`` characters."""
    if not isinstance(value, str):
        raise InvalidValue(name, "must be text", value)
    if not 1 <= len(value) <= MAX_CONTRACT_ID or not _CONTRACT_ID.fullmatch(value):
        raise InvalidValue(
            name,
            f"must be 1 to {MAX_CONTRACT_ID} letters, digits or '._:-' such as CON.F.US.MES.Z26",
            value,
        )
    return value


def custom_tag(value: object, name: str = "custom_tag") -> str:
    """An order's custom tag: printable text of at most ``MAX_TAG`` characters."""
    return text(value, name, MAX_TAG)
