"""Provider-agnostic enumerations.

Numbering follows the ProjectX Gateway family, the first and most widely deployed provider; other
providers map their own codes onto these members. Every enum is *open*: a value nobody documented
yet becomes a pseudo-member named ``UNKNOWN_<n>`` instead of an exception, so a gateway that grows a
new status never crashes a reader.
"""

from __future__ import annotations

import enum
from typing import Any, Final, Self

_MAX_CACHED_UNKNOWN: Final = 32


class OpenIntEnum(enum.IntEnum):
    """An IntEnum that keeps unknown values as ``UNKNOWN_<n>`` pseudo-members."""

    @classmethod
    def _missing_(cls, value: object) -> Self | None:
        if not isinstance(value, int) or isinstance(value, bool):
            return None
        member = int.__new__(cls, value)
        member._name_ = f"UNKNOWN_{value}"
        member._value_ = value
        # Cache a few so repeated lookups stay cheap, but never let a peer grow memory unbounded.
        if len(cls._value2member_map_) < len(cls.__members__) + _MAX_CACHED_UNKNOWN:
            cls._value2member_map_.setdefault(value, member)
        return member

    @property
    def is_known(self) -> bool:
        """True when the value is a documented member, False for a preserved unknown value."""
        return self._name_ in type(self).__members__

    @classmethod
    def parse(cls, value: Any) -> Self:
        """Convert a wire value (an int, or a member name) into a member; ValueError otherwise."""
        if isinstance(value, cls):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return cls(value)
        if isinstance(value, str):
            try:
                return cls[value.upper()]
            except KeyError:
                pass
        raise ValueError(f"{value!r} is not a valid {cls.__name__}")


class OrderSide(OpenIntEnum):
    """Which way an order trades."""

    BUY = 0
    SELL = 1

    @property
    def opposite(self) -> OrderSide:
        """The side that closes a position opened on this side."""
        return OrderSide.SELL if self is OrderSide.BUY else OrderSide.BUY


class OrderType(OpenIntEnum):
    """How an order is priced."""

    UNKNOWN = 0
    LIMIT = 1
    MARKET = 2
    STOP_LIMIT = 3
    STOP = 4
    TRAILING_STOP = 5
    JOIN_BID = 6
    JOIN_ASK = 7


class OrderStatus(OpenIntEnum):
    """Where an order is in its life."""

    NONE = 0
    OPEN = 1
    FILLED = 2
    CANCELLED = 3
    EXPIRED = 4
    REJECTED = 5
    PENDING = 6
    PENDING_CANCELLATION = 7
    SUSPENDED = 8

    @property
    def is_terminal(self) -> bool:
        """True once the order can no longer fill or change."""
        return self in _TERMINAL_STATUSES

    @property
    def is_working(self) -> bool:
        """True while the order may still fill."""
        return self in _WORKING_STATUSES


_TERMINAL_STATUSES = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.EXPIRED, OrderStatus.REJECTED}
)
_WORKING_STATUSES = frozenset(
    {
        OrderStatus.OPEN,
        OrderStatus.PENDING,
        OrderStatus.PENDING_CANCELLATION,
        OrderStatus.SUSPENDED,
    }
)


class PositionSide(OpenIntEnum):
    """Direction of a netted position; its size is always positive."""

    UNDEFINED = 0
    LONG = 1
    SHORT = 2


class BarUnit(OpenIntEnum):
    """Time unit of an aggregated bar."""

    UNSPECIFIED = 0
    SECOND = 1
    MINUTE = 2
    HOUR = 3
    DAY = 4
    WEEK = 5
    MONTH = 6
    TICK = 7


class DepthType(OpenIntEnum):
    """Kind of a market-depth (DOM) entry."""

    UNKNOWN = 0
    ASK = 1
    BID = 2
    BEST_ASK = 3
    BEST_BID = 4
    TRADE = 5
    RESET = 6
    LOW = 7
    HIGH = 8
    NEW_BEST_BID = 9
    NEW_BEST_ASK = 10
    FILL = 11


class TradeSide(OpenIntEnum):
    """Aggressor side of a market trade print."""

    BUY = 0
    SELL = 1


class OrderSortField(OpenIntEnum):
    """Sort key of an order query."""

    CREATED_AT = 0
    ID = 1


class SortDirection(OpenIntEnum):
    """Sort direction of an order query."""

    ASCENDING = 0
    DESCENDING = 1
