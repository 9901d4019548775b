"""Request and response bodies of the web service.

Prices and money are decimal strings in responses (exact, never binary floats); requests accept a
decimal string or a JSON number. Enumerations travel as member names ("BUY", "LIMIT", "FILLED").
Every request value is bounded by ``tradeforge_proto.core.bounds``: ids and sizes are JSON
integers (never text, floats or bools), prices plain decimals, texts printable and short; query
and path numbers are plain digits.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, Final, Literal

import attrs
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    StrictInt,
    ValidationInfo,
    model_validator,
)
from pydantic.json_schema import WithJsonSchema

from tradeforge_proto.core import bounds
from tradeforge_proto.core.bounds import InvalidValue
from tradeforge_proto.realtime.machine import StreamState
from tradeforge_sim.accounts import FIRST_ACCOUNT_ID
from tradeforge_sim.contracts import front_month

from .journal import Outcome

EXAMPLE_ACCOUNT: Final = FIRST_ACCOUNT_ID
EXAMPLE_CONTRACT: Final = f"CON.F.US.MES.{front_month(datetime.now(UTC))}"
"""What the console's examples name: the simulator's first account and today's MES contract,
so that "Try it out" on the embedded simulator works as shown."""

Side = Literal["BUY", "SELL"]
PlaceableType = Literal[
    "LIMIT", "MARKET", "STOP_LIMIT", "STOP", "TRAILING_STOP", "JOIN_BID", "JOIN_ASK"
]
BracketType = Literal["LIMIT", "MARKET", "STOP", "TRAILING_STOP"]
LoginState = Literal["ok", "refused", "unreachable"]
RequestableUnit = Literal["SECOND", "MINUTE", "HOUR", "DAY", "WEEK", "MONTH", "TICK"]

PRICE_TEXT: Final = f"^(?:{bounds.DECIMAL_PATTERN})$"
"""Decimal text as ``bounds.price`` reads it, anchored for the OpenAPI document."""
CONTRACT_ID_TEXT: Final = f"^(?:{bounds.CONTRACT_ID_PATTERN})$"
PRINTABLE_TEXT: Final = (
    r"^[^\s\x00-\x1f\x7f-\x9f](?:[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f])?$"
)
"""No control characters and no surrounding whitespace."""
MAX_UNIT_NUMBER: Final = 100_000
"""Units in one bar (seconds, minutes, ...; trades for tick bars)."""

Check = Callable[[object, str], object]


def checked(check: Check, name: str | None = None) -> BeforeValidator:
    """Run a ``bounds`` check under the field's name; its InvalidValue becomes a 422."""

    def validate(value: object, info: ValidationInfo) -> object:
        return check(value, name or info.field_name or "value")

    return BeforeValidator(validate)


def _from_digits(value: object, name: str) -> object:
    """Query or path text of plain ASCII digits as an int; other text is refused."""
    if not isinstance(value, str):
        return value
    if not (value.isascii() and value.isdigit() and len(value) <= 16):
        raise InvalidValue(
            name, "must be plain digits such as 20258288 (no sign, space or _)", value
        )
    return int(value)


_ISO_DATE_START: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_time_text(value: object) -> object:
    """A time in a query is ISO 8601 text, starting with its date; anything else, a number in
    any form (which pydantic would read as seconds since 1970) included, is refused."""
    if isinstance(value, str) and not _ISO_DATE_START.match(value):
        raise ValueError("expected an ISO 8601 date and time with its offset, not a number")
    return value


ISO_TIME: Final = BeforeValidator(_iso_time_text)


def whole_text(name: str, maximum: int = bounds.MAX_ID) -> BeforeValidator:
    """A query or path number: plain digits, from 1 to ``maximum``."""

    def validate(value: object) -> int:
        return bounds.size(_from_digits(value, name), name, maximum)

    return BeforeValidator(validate)


PRICE_SCHEMA: Final = WithJsonSchema(
    {
        "anyOf": [
            {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": int(bounds.MAX_PRICE)},
            {"type": "string", "pattern": PRICE_TEXT, "maxLength": bounds.MAX_NUMBER_TEXT},
            {"type": "null"},
        ],
        "description": (
            f"A decimal above 0 and below {bounds.MAX_PRICE} with at most "
            f"{bounds.MAX_PRICE_PLACES} decimal places, as text (6150.25) or a number"
        ),
    }
)


PriceIn = Annotated[Decimal | None, checked(bounds.optional_price), PRICE_SCHEMA]
# Constraints come before the checks so that the schema carries them as minimum/maximum.
IdIn = Annotated[StrictInt, Field(ge=1, le=bounds.MAX_ID), checked(bounds.identifier)]
SizeIn = Annotated[StrictInt, Field(ge=1, le=bounds.MAX_SIZE), checked(bounds.size)]
TicksIn = Annotated[
    StrictInt,
    Field(ge=-bounds.MAX_TICKS, le=bounds.MAX_TICKS, description="Signed ticks, never 0"),
    checked(bounds.ticks),
]
ContractIdIn = Annotated[
    str,
    Field(
        min_length=1,
        max_length=bounds.MAX_CONTRACT_ID,
        json_schema_extra={"pattern": CONTRACT_ID_TEXT},
        examples=[EXAMPLE_CONTRACT],
    ),
    checked(bounds.contract_id),
]
TagIn = Annotated[
    str,
    Field(min_length=1, max_length=bounds.MAX_TAG, json_schema_extra={"pattern": PRINTABLE_TEXT}),
    checked(bounds.custom_tag),
]


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
    """The process is up and answering: all a liveness probe needs, without the token."""

    status: Literal["ok"] = "ok"


class Readiness(_Out):
    """Whether the service can trade now: the backend's login (``ok``, ``refused`` credentials,
    or the backend ``unreachable``), which provider and environment it trades on, whether it can
    change orders, and how its realtime stream's two hubs stand (they connect with the first
    ``/ws/stream`` client)."""

    ready: bool
    login: LoginState
    detail: str | None
    provider: str
    environment: str
    simulator: bool
    read_only: bool
    stream: StreamHealth


class JournalOut(_Out):
    """One state-changing request the service answered: when, from where, what, for which
    account, and what came of it (``ok``, ``refused``, ``unknown``: sent without an answer,
    ``error``)."""

    time: datetime
    client: str
    method: str
    route: str
    status: int
    latency_ms: float
    outcome: Outcome
    account_id: int | None
    contract_id: str | None
    order_id: int | None
    custom_tag: str | None
    detail: str | None


class JournalList(_Out):
    """Journal entries, newest first; ``kept`` is False when this service keeps no journal."""

    entries: list[JournalOut]
    kept: bool


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


class DayPnl(_Out):
    """An account's realized P&L of the current trading day, fees and commissions off."""

    account_id: int
    trading_day: date
    start: datetime
    realized_pnl: Decimal
    fills: int


class RiskOut(_Out):
    """Where an account stands against the firm's rules it is held to, judged by the core's
    rules engine from the gateway's figures (held contracts marked at their latest one-minute
    close). ``rules`` is null, and every figure with it, for an account the service knows no
    rules of. ``*_remaining`` is what is left before a limit: dollars, or weighted contracts."""

    account_id: int
    rules: str | None
    status: EnumName | None = None
    balance: Decimal | None = None
    equity: Decimal | None = None
    day_pnl: Decimal | None = None
    floor: Decimal | None = None
    daily_loss_limit: Decimal | None = None
    daily_loss_remaining: Decimal | None = None
    max_loss: Decimal | None = None
    max_loss_remaining: Decimal | None = None
    max_contracts: Decimal | None = None
    position_remaining: Decimal | None = None
    profit_target: Decimal | None = None
    profit_remaining: Decimal | None = None
    breaches: list[str] = []
    warnings: list[str] = []


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
    """A placed order: its id, the custom tag it carries (the caller's or one the service chose),
    its status just after it was placed and the whole order. The gateway took the order either
    way; ``status`` is ACCEPTED and ``order`` null when reading it back did not answer in time."""

    order_id: int
    custom_tag: str
    status: EnumName
    order: OrderOut | None


class PositionOut(_Out):
    """A netted position: ``side`` LONG or SHORT with a positive ``size``; a flat one (size 0)
    has no side."""

    id: int
    account_id: int
    contract_id: str
    created_at: datetime
    side: EnumName | None
    size: int
    average_price: Decimal
    contract_display_name: str | None

    @model_validator(mode="before")
    @classmethod
    def _flat_has_no_side(cls, data: Any) -> Any:
        if getattr(data, "size", None) == 0 and attrs.has(type(data)):
            return {**attrs.asdict(data, recurse=False), "side": None}
        return data


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
    """A change was sent but its outcome is unknown: look a placement up by ``custom_tag``, a
    cancel or modify by ``order_id``, a close by the contract's position; never resend blindly."""

    status: Literal["uncertain"] = "uncertain"
    change: str | None = Field(
        default=None, description="PLACE, CANCEL, MODIFY, CLOSE or PARTIAL_CLOSE"
    )
    account_id: int
    custom_tag: str | None
    order_id: int | None = None
    contract_id: str | None
    size: int | None = None
    sent_at: datetime | None


# --- requests ---


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _example(**fields: JsonValue) -> ConfigDict:
    """A model's example in the OpenAPI document, one the API accepts as it stands."""
    return ConfigDict(json_schema_extra={"examples": [dict(fields)]})


class BracketIn(_In):
    """A protective leg as signed ticks from the fill (buy: stop-loss < 0 < take-profit)."""

    ticks: TicksIn
    type: BracketType


class PlaceOrderIn(_In):
    """An order to place; only the prices its type uses may be given."""

    model_config = _example(
        account_id=EXAMPLE_ACCOUNT,
        contract_id=EXAMPLE_CONTRACT,
        side="BUY",
        type="MARKET",
        size=1,
        custom_tag="my-first-order",
    )

    account_id: IdIn
    contract_id: ContractIdIn
    side: Side
    type: PlaceableType
    size: SizeIn = 1
    limit_price: PriceIn = None
    stop_price: PriceIn = None
    trail_price: PriceIn = None
    custom_tag: TagIn | None = None
    stop_loss: BracketIn | None = None
    take_profit: BracketIn | None = None


class ModifyOrderIn(_In):
    """Changes to a working order; fields left out stay as they are. The account is named in
    the query, as for every route of one order."""

    model_config = _example(limit_price="5000.25")

    size: SizeIn | None = None
    limit_price: PriceIn = None
    stop_price: PriceIn = None
    trail_price: PriceIn = None


class ClosePositionIn(_In):
    """A position to flatten at market."""

    model_config = _example(account_id=EXAMPLE_ACCOUNT, contract_id=EXAMPLE_CONTRACT)

    account_id: IdIn
    contract_id: ContractIdIn


class PartialCloseIn(_In):
    """A position to reduce at market by ``size`` contracts."""

    model_config = _example(account_id=EXAMPLE_ACCOUNT, contract_id=EXAMPLE_CONTRACT, size=1)

    account_id: IdIn
    contract_id: ContractIdIn
    size: SizeIn
