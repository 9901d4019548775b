"""Request and response bodies of the web service.

Prices and money are decimal strings in responses (exact, never binary floats); requests accept a
decimal string or a JSON number. Enumerations travel as member names ("BUY", "LIMIT", "FILLED").
"""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from tradeforge_proto.realtime.machine import StreamState

Side = Literal["BUY", "SELL"]
PlaceableType = Literal[
    "LIMIT", "MARKET", "STOP_LIMIT", "STOP", "TRAILING_STOP", "JOIN_BID", "JOIN_ASK"
]
BracketType = Literal["LIMIT", "MARKET", "STOP", "TRAILING_STOP"]
RequestableUnit = Literal["SECOND", "MINUTE", "HOUR", "DAY", "WEEK", "MONTH", "TICK"]
Price = Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]


def _member_name(value: object) -> object:
    return value.name if isinstance(value, enum.Enum) else value


EnumName = Annotated[str, BeforeValidator(_member_name)]


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True, frozen=True)


# --- responses ---


class StreamHealth(_Out):
    """The realtime stream shared by the clients of ``/ws/stream``; it starts with the first."""

    running: bool
    user_hub: StreamState
    market_hub: StreamState
    clients: int
    subscriptions: int


class Health(_Out):
    """Which provider and environment the service trades on, whether it can change orders, and
    how its realtime stream stands."""

    provider: str
    environment: str
    simulator: bool
    read_only: bool
    stream: StreamHealth


class AccountOut(_Out):
    """A trading account."""

    id: int
    name: str
    balance: Decimal
    can_trade: bool
    is_visible: bool
    simulated: bool | None


class AccountList(_Out):
    """The user's accounts."""

    accounts: list[AccountOut]


class ContractOut(_Out):
    """A tradeable instrument; ``tick_value`` is dollars per tick per contract."""

    id: str
    name: str
    description: str
    tick_size: Decimal
    tick_value: Decimal
    active: bool
    symbol_id: str | None


class ContractList(_Out):
    """Contracts."""

    contracts: list[ContractOut]


class BarOut(_Out):
    """One OHLCV bar; ``time`` is its start."""

    time: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int


class BarList(_Out):
    """Bars, oldest first."""

    bars: list[BarOut]


class OrderOut(_Out):
    """An order as the provider reports it."""

    id: int
    account_id: int
    contract_id: str
    created_at: datetime
    status: EnumName
    type: EnumName
    side: EnumName
    size: int
    fill_volume: int
    symbol_id: str | None
    updated_at: datetime | None
    limit_price: Decimal | None
    stop_price: Decimal | None
    filled_price: Decimal | None
    custom_tag: str | None
    trail_price: Decimal | None
    trail_distance: int | None
    parent_order_id: int | None
    linked_order_id: int | None


class OrderList(_Out):
    """Orders."""

    orders: list[OrderOut]


class OrderPlaced(_Out):
    """The id of a placed order."""

    order_id: int


class PositionOut(_Out):
    """A netted position; ``size`` is positive and ``side`` is LONG or SHORT."""

    id: int
    account_id: int
    contract_id: str
    created_at: datetime
    side: EnumName
    size: int
    average_price: Decimal
    contract_display_name: str | None


class PositionList(_Out):
    """Open positions."""

    positions: list[PositionOut]


class TradeOut(_Out):
    """One execution (a half-turn); P&L is set only on reducing fills."""

    id: int
    account_id: int
    contract_id: str
    created_at: datetime
    price: Decimal
    side: EnumName
    size: int
    order_id: int
    fees: Decimal
    voided: bool
    profit_and_loss: Decimal | None
    commissions: Decimal | None


class TradeList(_Out):
    """Fills."""

    trades: list[TradeOut]


# --- errors ---


class ErrorOut(_Out):
    """A failure; ``detail`` says what went wrong in words."""

    detail: str


class ValidationIssue(_Out):
    """One reason a request was refused: where (``loc``), what (``msg``) and its kind."""

    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorOut(_Out):
    """The request does not fit the API: every problem found."""

    detail: list[ValidationIssue]


class ProviderErrorOut(ErrorOut):
    """A failure the provider reported; its codes are the endpoint's own numbering.

    Failures with no provider answer behind them (a missing path, a network error) leave the
    provider fields empty.
    """

    provider_code: int | None = None
    provider_code_name: str | None = None
    message: str | None = None
    order_id: int | None = None


class UncertainOut(ErrorOut):
    """A change was sent but its outcome is unknown: look the order up by ``custom_tag``."""

    status: Literal["uncertain"] = "uncertain"
    account_id: int
    custom_tag: str | None
    contract_id: str | None
    sent_at: datetime | None


# --- requests ---


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BracketIn(_In):
    """A protective leg as signed ticks from the fill (buy: stop-loss < 0 < take-profit)."""

    ticks: int
    type: BracketType


class PlaceOrderIn(_In):
    """An order to place; only the prices its type uses may be given."""

    account_id: int
    contract_id: str
    side: Side
    type: PlaceableType
    size: int = Field(default=1, gt=0)
    limit_price: Price | None = None
    stop_price: Price | None = None
    trail_price: Price | None = None
    custom_tag: str | None = Field(default=None, min_length=1, max_length=100)
    stop_loss: BracketIn | None = None
    take_profit: BracketIn | None = None


class ModifyOrderIn(_In):
    """Changes to a working order; fields left out stay as they are."""

    account_id: int
    size: int | None = Field(default=None, gt=0)
    limit_price: Price | None = None
    stop_price: Price | None = None
    trail_price: Price | None = None


class ClosePositionIn(_In):
    """A position to flatten at market."""

    account_id: int
    contract_id: str


class PartialCloseIn(_In):
    """A position to reduce at market by ``size`` contracts."""

    account_id: int
    contract_id: str
    size: int = Field(gt=0)
