"""The account as the rules see it, and every change to it: fills, the day's turn and breaches.

A position keeps its signed size and its cost (the sum of signed size times price of the part
still open), so realized plus unrealized P&L always equals the fills' cash flows exactly; the
average price is derived from the cost. Status changes go through one table, ``TRANSITIONS``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Context, Decimal, localcontext
from typing import Any, Final

import attrs

from ..core.enums import OrderSide
from ..core.models import ContractId
from .config import AccountRules
from .contracts import TickSpec
from .tradingday import trading_day

EXACT: Final = Context(prec=60)
"""Arithmetic context of every money figure: wide enough that sums and products stay exact."""
_COST_PLACES: Final = Decimal("1E-20")


class AccountStatus(enum.Enum):
    """Whether the account may trade."""

    ACTIVE = "active"
    DISABLED_FOR_DAY = "disabled_for_day"
    """The daily loss limit was hit: no new risk until the next trading day."""
    CLOSED = "closed"
    """The maximum loss was hit: the account is over."""


class Event(enum.Enum):
    """What changes an account's status."""

    DAILY_LOSS_BREACHED = "daily_loss_breached"
    MAX_LOSS_BREACHED = "max_loss_breached"
    DAY_TURNED = "day_turned"


TRANSITIONS: Final[Mapping[tuple[AccountStatus, Event], AccountStatus]] = {
    (AccountStatus.ACTIVE, Event.DAILY_LOSS_BREACHED): AccountStatus.DISABLED_FOR_DAY,
    (AccountStatus.ACTIVE, Event.MAX_LOSS_BREACHED): AccountStatus.CLOSED,
    (AccountStatus.ACTIVE, Event.DAY_TURNED): AccountStatus.ACTIVE,
    (AccountStatus.DISABLED_FOR_DAY, Event.DAILY_LOSS_BREACHED): AccountStatus.DISABLED_FOR_DAY,
    (AccountStatus.DISABLED_FOR_DAY, Event.MAX_LOSS_BREACHED): AccountStatus.CLOSED,
    (AccountStatus.DISABLED_FOR_DAY, Event.DAY_TURNED): AccountStatus.ACTIVE,
    (AccountStatus.CLOSED, Event.DAILY_LOSS_BREACHED): AccountStatus.CLOSED,
    (AccountStatus.CLOSED, Event.MAX_LOSS_BREACHED): AccountStatus.CLOSED,
    (AccountStatus.CLOSED, Event.DAY_TURNED): AccountStatus.CLOSED,
}
"""The next status for each status and event; a closed account stays closed."""


class MissingFigure(LookupError):
    """A held contract has no tick spec or no mark, so its P&L cannot be known."""


def _signed(side: OrderSide, size: int) -> int:
    return size if side is OrderSide.BUY else -size


def positive_size(_: object, attribute: attrs.Attribute[Any], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{attribute.name} must be a positive whole number, got {value!r}")


def _positive_price(_: object, attribute: attrs.Attribute[Any], value: Decimal) -> None:
    if not (isinstance(value, Decimal) and value.is_finite() and value > 0):
        raise ValueError(f"{attribute.name} must be a positive Decimal, got {value!r}")


@attrs.frozen
class Fill:
    """One execution on the account; ``fee`` (dollars) is charged against the balance."""

    contract_id: ContractId
    side: OrderSide
    size: int = attrs.field(validator=positive_size)
    price: Decimal = attrs.field(validator=_positive_price)
    fee: Decimal = Decimal(0)

    @property
    def signed_size(self) -> int:
        """The size with its direction: positive for a buy."""
        return _signed(self.side, self.size)


@attrs.frozen
class Holding:
    """An open position: signed size (positive long) and the cost of the open part."""

    contract_id: ContractId
    size: int
    cost: Decimal
    """Sum of signed size times price over the open part, in price units."""

    @property
    def average_price(self) -> Decimal:
        """The average entry price."""
        with localcontext(EXACT):
            return self.cost / self.size

    def unrealized(self, mark: Decimal, spec: TickSpec) -> Decimal:
        """Dollars made or lost if the position closed at ``mark``."""
        with localcontext(EXACT):
            return to_dollars(mark * self.size - self.cost, spec)


def to_dollars(price_units: Decimal, spec: TickSpec) -> Decimal:
    """Convert a price difference times a size into dollars through the tick size and value."""
    with localcontext(EXACT):
        return price_units / spec.tick_size * spec.tick_value


@attrs.frozen
class DayResult:
    """A finished trading day's P&L: realized and unrealized, from its open to its end."""

    day: date
    pnl: Decimal


def _spec(specs: Mapping[ContractId, TickSpec], contract_id: ContractId) -> TickSpec:
    try:
        return specs[contract_id]
    except KeyError:
        raise MissingFigure(f"no tick spec for contract {contract_id}") from None


def _mark(marks: Mapping[ContractId, Decimal], contract_id: ContractId) -> Decimal:
    try:
        return marks[contract_id]
    except KeyError:
        raise MissingFigure(f"no mark for contract {contract_id}") from None


@attrs.frozen
class AccountState:
    """Everything the rules track for one account, immutable: each change returns a new state.

    ``day_open_equity`` is the equity when the trading day began, so the day's P&L is the equity
    now less it (a position carried over the turn counts only its move during the day).
    """

    status: AccountStatus
    day: date
    starting_balance: Decimal
    balance: Decimal
    """Starting balance plus every realized P&L, fees deducted."""
    eod_high: Decimal
    """Highest end-of-day balance so far (the starting balance at first)."""
    floor: Decimal
    """The trailing maximum-loss floor: the equity at or below which the account closes."""
    day_open_equity: Decimal
    day_realized: Decimal = Decimal(0)
    holdings: tuple[Holding, ...] = ()
    """Open positions, sorted by contract id, none flat."""
    history: tuple[DayResult, ...] = ()

    @classmethod
    def open(cls, rules: AccountRules, now: datetime) -> AccountState:
        """A new account on the trading day of ``now``, at the rules' starting balance."""
        start = rules.starting_balance
        return cls(
            status=AccountStatus.ACTIVE,
            day=trading_day(now),
            starting_balance=start,
            balance=start,
            eod_high=start,
            floor=rules.initial_floor,
            day_open_equity=start,
        )

    @property
    def can_trade(self) -> bool:
        """True when the account may take on new risk."""
        return self.status is AccountStatus.ACTIVE

    @property
    def is_flat(self) -> bool:
        """True when no position is open."""
        return not self.holdings

    def holding(self, contract_id: ContractId) -> Holding | None:
        """The open position on a contract, if any."""
        for held in self.holdings:
            if held.contract_id == contract_id:
                return held
        return None

    def position(self, contract_id: ContractId) -> int:
        """The signed size held on a contract (0 when flat)."""
        held = self.holding(contract_id)
        return 0 if held is None else held.size

    def unrealized(
        self, marks: Mapping[ContractId, Decimal], specs: Mapping[ContractId, TickSpec]
    ) -> Decimal:
        """Dollars the open positions make or lose at ``marks``."""
        with localcontext(EXACT):
            return sum(
                (
                    held.unrealized(_mark(marks, held.contract_id), _spec(specs, held.contract_id))
                    for held in self.holdings
                ),
                Decimal(0),
            )

    def equity(
        self, marks: Mapping[ContractId, Decimal], specs: Mapping[ContractId, TickSpec]
    ) -> Decimal:
        """Balance plus the open positions' P&L at ``marks``."""
        with localcontext(EXACT):
            return self.balance + self.unrealized(marks, specs)

    def day_pnl(
        self, marks: Mapping[ContractId, Decimal], specs: Mapping[ContractId, TickSpec]
    ) -> Decimal:
        """The trading day's P&L so far, realized and unrealized."""
        with localcontext(EXACT):
            return self.equity(marks, specs) - self.day_open_equity

    def apply_fill(self, fill: Fill, spec: TickSpec) -> tuple[AccountState, Decimal]:
        """Net a fill into its position; the new state and the dollars it realized (fee apart).

        A fill against the position closes at the average price first; any remainder opens the
        other way at the fill price. Fills are facts, so they apply whatever the status.
        """
        with localcontext(EXACT):
            held = self.holding(fill.contract_id)
            size = 0 if held is None else held.size
            cost = Decimal(0) if held is None else held.cost
            delta = fill.signed_size
            realized_units = Decimal(0)
            if size and (size > 0) != (delta > 0):
                closing = min(abs(delta), abs(size))
                removed = (cost * closing / abs(size)).quantize(_COST_PLACES)
                if closing == abs(size):
                    removed = cost
                step = closing if delta > 0 else -closing
                realized_units = -step * fill.price - removed
                cost -= removed
                size += step
                delta -= step
            size += delta
            cost += delta * fill.price
            realized = to_dollars(realized_units, spec)
            others = tuple(h for h in self.holdings if h.contract_id != fill.contract_id)
            if size:
                others = (*others, Holding(fill.contract_id, size, cost))
            holdings = tuple(sorted(others, key=lambda h: h.contract_id))
            state = attrs.evolve(
                self,
                balance=self.balance + realized - fill.fee,
                day_realized=self.day_realized + realized - fill.fee,
                holdings=holdings,
            )
            return state, realized

    def turn_day(
        self,
        rules: AccountRules,
        now: datetime,
        marks: Mapping[ContractId, Decimal],
        specs: Mapping[ContractId, TickSpec],
    ) -> AccountState:
        """End the trading day if ``now`` belongs to a later one; otherwise the same state.

        The end-of-day balance (equity at ``marks``; normally all realized, the firm flattening
        before the close) may raise the high; the floor follows the high less the max loss, stops
        at the rules' lock level and never moves down. The day's figures reset and a day's
        suspension ends.
        """
        today = trading_day(now)
        if today <= self.day:
            return self
        with localcontext(EXACT):
            closing = self.equity(marks, specs)
            high = max(self.eod_high, closing)
            target = high - rules.max_loss
            lock = rules.lock_level
            if lock is not None:
                target = min(target, lock)
            result = DayResult(self.day, closing - self.day_open_equity)
            return attrs.evolve(
                self,
                status=TRANSITIONS[self.status, Event.DAY_TURNED],
                day=today,
                eod_high=high,
                floor=max(self.floor, target),
                day_open_equity=closing,
                day_realized=Decimal(0),
                history=(*self.history, result),
            )

    def apply_event(self, event: Event) -> AccountState:
        """The status an event leads to; other figures unchanged (``turn_day`` resets the day)."""
        return attrs.evolve(self, status=TRANSITIONS[self.status, event])
