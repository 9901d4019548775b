"""Provider-agnostic models: frozen, slotted attrs classes.

Prices and money are ``Decimal`` so that tick arithmetic is exact; timestamps are timezone-aware
``datetime`` values in UTC. Optional fields are ``None`` when the provider left them out.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Final, TypeVar

import attrs

from . import bounds
from .enums import (
    BarUnit,
    DepthType,
    OpenIntEnum,
    OrderSide,
    OrderSortField,
    OrderStatus,
    OrderType,
    PositionSide,
    SortDirection,
    TradeSide,
)
from .errors import LocalProtocolError

E = TypeVar("E", bound=OpenIntEnum)

AccountId = int
OrderId = int
ContractId = str


@attrs.frozen
class Account:
    """A trading account."""

    id: AccountId
    name: str
    balance: Decimal
    can_trade: bool
    is_visible: bool = True
    simulated: bool | None = None


@attrs.frozen
class Contract:
    """A tradeable instrument; ``tick_value`` is in dollars per tick per contract."""

    id: ContractId
    name: str
    description: str
    tick_size: Decimal
    tick_value: Decimal
    active: bool
    symbol_id: str | None = None

    def ticks_between(self, low: Decimal, high: Decimal) -> Decimal:
        """How many ticks separate two prices (exact, may be fractional when misaligned)."""
        return (high - low) / self.tick_size

    def is_aligned(self, price: Decimal) -> bool:
        """True when ``price`` is a whole number of ticks."""
        return price % self.tick_size == 0


@attrs.frozen
class Bracket:
    """A stop-loss or take-profit leg attached to an order, as signed ticks from the fill price."""

    ticks: int
    type: OrderType


def _positive_size(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    bounds.size(value, attribute.name)


def _positive_int(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise LocalProtocolError(f"{attribute.name} must be a positive whole number, got {value!r}")


def _identifier(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    bounds.identifier(value, attribute.name)


def _contract_id(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    bounds.contract_id(value, attribute.name)


def _custom_tag(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        bounds.custom_tag(value, attribute.name)


# Prices: int, str, float or Decimal, bounded by ``bounds.price``; a float never goes binary.
def _limit_price(value: object) -> Decimal | None:
    return bounds.optional_price(value, "limit_price")


def _stop_price(value: object) -> Decimal | None:
    return bounds.optional_price(value, "stop_price")


def _trail_price(value: object) -> Decimal | None:
    return bounds.optional_price(value, "trail_price")


def _member(enum: type[E], value: object) -> E:
    try:
        return enum.parse(value)
    except ValueError as exc:
        raise LocalProtocolError(str(exc)) from None


def _side(value: object) -> OrderSide:
    return _member(OrderSide, value)


def _order_type(value: object) -> OrderType:
    return _member(OrderType, value)


def _bar_unit(value: object) -> BarUnit:
    return _member(BarUnit, value)


_BRACKET_TYPES: Final = (OrderType.LIMIT, OrderType.MARKET, OrderType.STOP, OrderType.TRAILING_STOP)

# Which price fields each order type uses; anything else must stay None (strict writing).
_PRICE_FIELDS: dict[OrderType, frozenset[str]] = {
    OrderType.LIMIT: frozenset({"limit_price"}),
    OrderType.MARKET: frozenset(),
    OrderType.STOP_LIMIT: frozenset({"limit_price", "stop_price"}),
    OrderType.STOP: frozenset({"stop_price"}),
    OrderType.TRAILING_STOP: frozenset({"trail_price"}),
    OrderType.JOIN_BID: frozenset(),
    OrderType.JOIN_ASK: frozenset(),
}


@attrs.frozen
class OrderRequest:
    """An order to place. Construction validates it, so an invalid order is never sent.

    ``stop_loss`` and ``take_profit`` are signed tick offsets from the fill price: for a buy the
    stop-loss is negative and the take-profit positive, for a sell the reverse.
    """

    account_id: AccountId = attrs.field(validator=_identifier)
    contract_id: ContractId = attrs.field(validator=_contract_id)
    side: OrderSide = attrs.field(converter=_side)
    type: OrderType = attrs.field(converter=_order_type)
    size: int = attrs.field(validator=_positive_size)
    limit_price: Decimal | None = attrs.field(default=None, converter=_limit_price)
    stop_price: Decimal | None = attrs.field(default=None, converter=_stop_price)
    trail_price: Decimal | None = attrs.field(default=None, converter=_trail_price)
    custom_tag: str | None = attrs.field(default=None, validator=_custom_tag)
    stop_loss: Bracket | None = None
    take_profit: Bracket | None = None

    def __attrs_post_init__(self) -> None:
        if not self.side.is_known:
            raise LocalProtocolError(f"unknown order side {int(self.side)}")
        used = _PRICE_FIELDS.get(self.type)
        if used is None:
            raise LocalProtocolError(f"order type {self.type.name} cannot be placed")
        for name in ("limit_price", "stop_price", "trail_price"):
            given = getattr(self, name) is not None
            if name in used and not given:
                raise LocalProtocolError(f"a {self.type.name} order needs {name}")
            if given and name not in used:
                raise LocalProtocolError(f"a {self.type.name} order does not take {name}")
        self._check_brackets()

    def _check_brackets(self) -> None:
        # Buy: stop-loss below the fill (negative ticks), take-profit above; sell: the reverse.
        sign = 1 if self.side is OrderSide.BUY else -1
        for label, leg, want in (
            ("stop_loss", self.stop_loss, -sign),
            ("take_profit", self.take_profit, sign),
        ):
            if leg is None:
                continue
            if not isinstance(leg, Bracket):
                raise bounds.InvalidValue(label, "must be a Bracket(ticks, type)", leg)
            if not isinstance(leg.type, OrderType) or leg.type not in _BRACKET_TYPES:
                names = ", ".join(t.name for t in _BRACKET_TYPES)
                raise bounds.InvalidValue(f"{label} type", f"must be one of {names}", leg.type)
            bounds.ticks(leg.ticks, f"{label} ticks")
            if (leg.ticks > 0) != (want > 0):
                direction = "negative" if want < 0 else "positive"
                raise LocalProtocolError(
                    f"{label} ticks must be {direction} for a {self.side.name} order "
                    f"(signed offset from the fill price), got {leg.ticks}"
                )

    @property
    def has_brackets(self) -> bool:
        """True when a stop-loss or take-profit leg is attached."""
        return self.stop_loss is not None or self.take_profit is not None


@attrs.frozen
class OrderModification:
    """Changes to a working order; fields left as None stay as they are."""

    account_id: AccountId = attrs.field(validator=_identifier)
    order_id: OrderId = attrs.field(validator=_identifier)
    size: int | None = attrs.field(default=None)
    limit_price: Decimal | None = attrs.field(default=None, converter=_limit_price)
    stop_price: Decimal | None = attrs.field(default=None, converter=_stop_price)
    trail_price: Decimal | None = attrs.field(default=None, converter=_trail_price)

    def __attrs_post_init__(self) -> None:
        if self.size is not None:
            _positive_size(self, attrs.fields(OrderModification).size, self.size)
        if all(v is None for v in (self.size, self.limit_price, self.stop_price, self.trail_price)):
            raise LocalProtocolError("a modification must change at least one field")


@attrs.frozen
class Order:
    """An order as the provider reports it."""

    id: OrderId
    account_id: AccountId
    contract_id: ContractId
    created_at: datetime
    status: OrderStatus
    type: OrderType
    side: OrderSide
    size: int
    fill_volume: int = 0
    symbol_id: str | None = None
    updated_at: datetime | None = None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    filled_price: Decimal | None = None
    custom_tag: str | None = None
    trail_price: Decimal | None = None
    trail_distance: int | None = None
    parent_order_id: OrderId | None = None
    linked_order_id: OrderId | None = None


@attrs.frozen
class OrderQuery:
    """A filtered, paged order search; ``page_offset`` counts rows, not pages."""

    account_id: AccountId
    statuses: tuple[OrderStatus, ...] = ()
    contract_id: ContractId | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    page_size: int | None = None
    page_offset: int | None = None
    sort_by: OrderSortField | None = None
    sort_direction: SortDirection | None = None
    include_total_count: bool = False


@attrs.frozen
class OrderPage:
    """One page of an order query; ``total_count`` is set when it was asked for."""

    orders: tuple[Order, ...]
    total_count: int | None = None


@attrs.frozen
class Position:
    """A netted position; ``size`` is positive and ``side`` gives the direction."""

    id: int
    account_id: AccountId
    contract_id: ContractId
    created_at: datetime
    side: PositionSide
    size: int
    average_price: Decimal
    contract_display_name: str | None = None

    @property
    def signed_size(self) -> int:
        """Size with the sign of the direction: positive long, negative short."""
        return -self.size if self.side is PositionSide.SHORT else self.size


@attrs.frozen
class Fill:
    """One execution on an account (a half-turn trade); P&L is set only on reducing fills."""

    id: int
    account_id: AccountId
    contract_id: ContractId
    created_at: datetime
    price: Decimal
    side: OrderSide
    size: int
    order_id: OrderId
    fees: Decimal = Decimal(0)
    voided: bool = False
    profit_and_loss: Decimal | None = None
    commissions: Decimal | None = None


@attrs.frozen
class Bar:
    """One OHLCV bar; ``time`` is the start of the bar."""

    time: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int


@attrs.frozen
class BarRequest:
    """A request for historical bars: the ``limit`` most recent bars inside [start, end]."""

    contract_id: ContractId
    unit: BarUnit = attrs.field(converter=_bar_unit)
    unit_number: int = attrs.field(validator=_positive_int)
    start: datetime
    end: datetime
    limit: int = attrs.field(default=20_000, validator=_positive_int)
    live: bool = False
    include_partial_bar: bool = False

    def __attrs_post_init__(self) -> None:
        if not self.unit.is_known or self.unit is BarUnit.UNSPECIFIED:
            raise LocalProtocolError(f"bar unit {self.unit.name} cannot be requested")
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise LocalProtocolError("start and end must be timezone-aware datetimes")
        if self.start > self.end:
            raise LocalProtocolError("start must not be after end")


@attrs.frozen
class Quote:
    """Best bid/ask and session statistics; fields the provider has not sent yet are None."""

    contract_id: ContractId
    symbol: str | None = None
    symbol_name: str | None = None
    last_price: Decimal | None = None
    best_bid: Decimal | None = None
    best_ask: Decimal | None = None
    change: Decimal | None = None
    change_percent: Decimal | None = None
    open: Decimal | None = None
    high: Decimal | None = None
    low: Decimal | None = None
    volume: int | None = None
    last_updated: datetime | None = None
    timestamp: datetime | None = None


@attrs.frozen
class DepthUpdate:
    """One market-depth entry: a level update, a reset, a print or a session extreme."""

    contract_id: ContractId
    type: DepthType
    price: Decimal
    volume: int
    timestamp: datetime | None = None
    current_volume: int | None = None


@attrs.frozen
class MarketTrade:
    """A trade print on the market (not one of ours)."""

    contract_id: ContractId
    price: Decimal
    volume: int
    aggressor: TradeSide
    timestamp: datetime | None = None
    symbol_id: str | None = None
