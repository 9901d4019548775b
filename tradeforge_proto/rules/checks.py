"""Judging an account against its rules: an order before it is sent, the account at any moment.

``check_order`` says whether an order may go (a reducing order always may: it adds no risk, and a
breach's flatten must be able to go through). ``evaluate`` reports breaches with what must happen
(``Action``), warnings at the rules' warning share, and what remains of each limit;
``apply_breaches`` gives the state its breaches lead to. Loss limits are breached when the loss
*reaches* them; the position limit allows exactly its maximum.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal, localcontext
from typing import Final, Protocol

import attrs

from ..core.enums import OrderSide
from ..core.models import ContractId
from .account import EXACT, AccountState, AccountStatus, Event, positive_size
from .config import AccountRules
from .contracts import TickSpec
from .tradingday import trading_day


class Rule(enum.Enum):
    """A rule an order or the account can run into."""

    MAX_POSITION = "max_position"
    DAILY_LOSS = "daily_loss"
    MAX_LOSS = "max_loss"
    ACCOUNT_CLOSED = "account_closed"
    TRADING_DISABLED = "trading_disabled"


class Decision(enum.Enum):
    """Whether an order may be sent."""

    ALLOWED = "allowed"
    REFUSED = "refused"


class Action(enum.Enum):
    """What the caller must do after an assessment."""

    FLATTEN = "flatten"
    CANCEL_WORKING_ORDERS = "cancel_working_orders"
    DISABLE_FOR_DAY = "disable_for_day"
    CLOSE_ACCOUNT = "close_account"
    TURN_DAY = "turn_day"
    """The trading day turned since the state's: apply ``AccountState.turn_day`` first."""


class OrderLike(Protocol):
    """What a check needs of an order: a ``ProposedOrder`` or a core ``OrderRequest``."""

    @property
    def contract_id(self) -> ContractId: ...

    @property
    def side(self) -> OrderSide: ...

    @property
    def size(self) -> int: ...


@attrs.frozen
class ProposedOrder:
    """An order about to be sent: contract, side and size."""

    contract_id: ContractId
    side: OrderSide
    size: int = attrs.field(validator=positive_size)


@attrs.frozen
class Verdict:
    """The answer to ``check_order``: the rule that refused and its figures, or ALLOWED."""

    decision: Decision
    message: str
    rule: Rule | None = None
    limit: Decimal | None = None
    current: Decimal | None = None
    after: Decimal | None = None

    @property
    def allowed(self) -> bool:
        """True when the order may be sent."""
        return self.decision is Decision.ALLOWED


@attrs.frozen
class Finding:
    """A breach or a warning: the rule, its limit, the current figure and a message naming it."""

    rule: Rule
    limit: Decimal
    current: Decimal
    message: str


@attrs.frozen
class Consistency:
    """The best day's profit as a share of the total profit; ``met`` when below the threshold."""

    best_day: Decimal
    total_profit: Decimal
    share: Decimal | None
    """``None`` while there is no total profit to share."""
    threshold: Decimal
    met: bool


@attrs.frozen
class Assessment:
    """The account at one moment: figures, breaches, warnings, actions and what remains."""

    state: AccountState
    """The state assessed (after the day's turn, when one was due)."""
    status: AccountStatus
    day: date
    balance: Decimal
    equity: Decimal
    day_pnl: Decimal
    floor: Decimal
    weighted_position: Decimal
    breaches: tuple[Finding, ...]
    warnings: tuple[Finding, ...]
    actions: tuple[Action, ...]
    daily_loss_remaining: Decimal | None
    """Dollars still to lose today before the daily limit; ``None`` without one."""
    max_loss_remaining: Decimal
    """Equity above the trailing floor."""
    position_remaining: Decimal | None
    """Weighted contracts still to add; ``None`` without a position limit."""
    profit_remaining: Decimal | None
    """Realized profit still to make for the target (0 once reached); ``None`` without one."""
    consistency: Consistency | None

    @property
    def target_reached(self) -> bool | None:
        """True once the realized profit reaches the target; ``None`` without a target."""
        return None if self.profit_remaining is None else self.profit_remaining == 0

    @property
    def breached(self) -> bool:
        """True when a loss limit is hit."""
        return bool(self.breaches)


_BREACH_EVENT: Final = {
    Rule.DAILY_LOSS: Event.DAILY_LOSS_BREACHED,
    Rule.MAX_LOSS: Event.MAX_LOSS_BREACHED,
}


def _plain(number: Decimal) -> str:
    text = format(number.normalize(), "f")
    return "0" if text == "-0" else text


def _dollars(number: Decimal) -> str:
    sign = "-" if number < 0 else ""
    return f"{sign}${abs(number):,.2f}"


def weighted_position(state: AccountState, rules: AccountRules) -> Decimal:
    """The account's total position in weighted contracts (minis)."""
    with localcontext(EXACT):
        return sum(
            (abs(held.size) * rules.weights.weight(held.contract_id) for held in state.holdings),
            Decimal(0),
        )


def _is_reducing(state: AccountState, order: OrderLike) -> bool:
    held = state.position(order.contract_id)
    delta = order.size if order.side is OrderSide.BUY else -order.size
    return held != 0 and (held > 0) != (delta > 0) and abs(delta) <= abs(held)


def _refused(rule: Rule, message: str, limit: Decimal, current: Decimal, after: Decimal) -> Verdict:
    return Verdict(Decision.REFUSED, message, rule, limit, current, after)


class WorkingOrder(OrderLike, Protocol):
    """What the exposure count needs of a working order: a core ``Order`` has it all."""

    @property
    def fill_volume(self) -> int: ...

    @property
    def parent_order_id(self) -> int | None: ...


def working_exposure(
    working: Iterable[WorkingOrder], contract_id: ContractId, side: OrderSide
) -> int:
    """Contracts the working orders on ``side`` of a contract would add if they all filled: an
    entry's unfilled size, and a bracket's two legs once (one cancels the other).

    An order is judged with this added to its size, so that no set of orders, each within the
    rules, can take the account past them.
    """
    pending = 0
    legs: dict[int, int] = {}
    for order in working:
        if order.contract_id != contract_id or order.side is not side:
            continue
        remaining = order.size - order.fill_volume
        parent = order.parent_order_id
        if parent is None:
            pending += remaining
        else:
            legs[parent] = max(legs.get(parent, 0), remaining)
    return pending + sum(legs.values())


def check_order(
    state: AccountState,
    rules: AccountRules,
    order: OrderLike,
    marks: Mapping[ContractId, Decimal],
    specs: Mapping[ContractId, TickSpec],
) -> Verdict:
    """Whether ``order`` may be sent now, judged as if it filled in full.

    Refusals, in order: a closed account, a disabled one, the floor or the daily limit already
    reached at ``marks``, then the total weighted position after the fill. The state's day is
    taken as it stands: turn it (``AccountState.turn_day``) when the trading day has changed.
    """
    if _is_reducing(state, order):
        return Verdict(Decision.ALLOWED, "order reduces a position")
    name = rules.name
    if state.status is AccountStatus.CLOSED:
        return Verdict(
            Decision.REFUSED,
            f"the {name} account is closed: its maximum loss was reached",
            Rule.ACCOUNT_CLOSED,
        )
    if state.status is AccountStatus.DISABLED_FOR_DAY:
        return Verdict(
            Decision.REFUSED,
            f"trading on the {name} account is disabled until the next trading day",
            Rule.TRADING_DISABLED,
        )
    with localcontext(EXACT):
        equity = state.equity(marks, specs)
        if equity <= state.floor:
            return _refused(
                Rule.MAX_LOSS,
                f"equity {_dollars(equity)} is at or below the {name}'s maximum loss floor "
                f"of {_dollars(state.floor)}",
                state.floor,
                equity,
                equity,
            )
        loss = state.day_open_equity - equity
        if rules.daily_loss_limit is not None and loss >= rules.daily_loss_limit:
            return _refused(
                Rule.DAILY_LOSS,
                f"today's loss of {_dollars(loss)} has reached the {name}'s daily loss limit "
                f"of {_dollars(rules.daily_loss_limit)}",
                rules.daily_loss_limit,
                loss,
                loss,
            )
        current = weighted_position(state, rules)
        held = state.position(order.contract_id)
        delta = order.size if order.side is OrderSide.BUY else -order.size
        weight = rules.weights.weight(order.contract_id)
        after = current + (abs(held + delta) - abs(held)) * weight
        if rules.max_contracts is not None and after > rules.max_contracts:
            return _refused(
                Rule.MAX_POSITION,
                f"order would hold {_plain(after)} contracts (weighted), above the {name}'s "
                f"maximum of {_plain(rules.max_contracts)}",
                rules.max_contracts,
                current,
                after,
            )
    return Verdict(Decision.ALLOWED, "order is within the rules")


def _consistency(
    state: AccountState, rules: AccountRules, today_pnl: Decimal
) -> Consistency | None:
    threshold = rules.consistency_share
    if threshold is None:
        return None
    days = [result.pnl for result in state.history] + [today_pnl]
    total = sum(days, Decimal(0))
    best = max(days)
    share = best / total if total > 0 and best > 0 else None
    met = share is not None and share < threshold
    return Consistency(best, total, share, threshold, met)


def evaluate(
    state: AccountState,
    rules: AccountRules,
    marks: Mapping[ContractId, Decimal],
    specs: Mapping[ContractId, TickSpec],
    now: datetime,
) -> Assessment:
    """The account at ``now`` and ``marks``; a day turn due is applied to the figures first."""
    actions: list[Action] = []
    if trading_day(now) > state.day:
        actions.append(Action.TURN_DAY)
        state = state.turn_day(rules, now, marks, specs)
    name = rules.name
    breaches: list[Finding] = []
    warnings: list[Finding] = []
    with localcontext(EXACT):
        equity = state.equity(marks, specs)
        day_pnl = equity - state.day_open_equity
        loss = -day_pnl
        buffer = equity - state.floor
        if buffer <= 0:
            breaches.append(
                Finding(
                    Rule.MAX_LOSS,
                    state.floor,
                    equity,
                    f"equity {_dollars(equity)} reached the {name}'s maximum loss floor "
                    f"of {_dollars(state.floor)}: the account is closed",
                )
            )
        elif buffer <= (1 - rules.warning_share) * rules.max_loss:
            warnings.append(
                Finding(
                    Rule.MAX_LOSS,
                    state.floor,
                    equity,
                    f"equity {_dollars(equity)} is {_dollars(buffer)} above the {name}'s "
                    f"maximum loss floor of {_dollars(state.floor)}",
                )
            )
        limit = rules.daily_loss_limit
        daily_remaining: Decimal | None = None
        if limit is not None:
            daily_remaining = max(limit - loss, Decimal(0))
            if loss >= limit:
                breaches.append(
                    Finding(
                        Rule.DAILY_LOSS,
                        limit,
                        loss,
                        f"today's loss of {_dollars(loss)} reached the {name}'s daily loss limit "
                        f"of {_dollars(limit)}: trading stops until the next trading day",
                    )
                )
            elif loss >= rules.warning_share * limit:
                warnings.append(
                    Finding(
                        Rule.DAILY_LOSS,
                        limit,
                        loss,
                        f"today's loss of {_dollars(loss)} is {_plain(loss / limit * 100)}% "
                        f"of the {name}'s daily loss limit of {_dollars(limit)}",
                    )
                )
        position = weighted_position(state, rules)
        position_remaining = None
        if rules.max_contracts is not None:
            position_remaining = max(rules.max_contracts - position, Decimal(0))
        profit_remaining = None
        if rules.profit_target is not None:
            profit = state.balance - state.starting_balance
            profit_remaining = max(rules.profit_target - profit, Decimal(0))
        consistency = _consistency(state, rules, day_pnl)
    breached = {finding.rule for finding in breaches}
    already = {
        Rule.MAX_LOSS: state.status is AccountStatus.CLOSED,
        Rule.DAILY_LOSS: state.status is not AccountStatus.ACTIVE,
    }
    if breached or state.status is not AccountStatus.ACTIVE:
        if not state.is_flat:
            actions.append(Action.FLATTEN)
        actions.append(Action.CANCEL_WORKING_ORDERS)
    if Rule.MAX_LOSS in breached and not already[Rule.MAX_LOSS]:
        actions.append(Action.CLOSE_ACCOUNT)
    elif Rule.DAILY_LOSS in breached and not already[Rule.DAILY_LOSS]:
        actions.append(Action.DISABLE_FOR_DAY)
    return Assessment(
        state=state,
        status=state.status,
        day=state.day,
        balance=state.balance,
        equity=equity,
        day_pnl=day_pnl,
        floor=state.floor,
        weighted_position=position,
        breaches=tuple(breaches),
        warnings=tuple(warnings),
        actions=tuple(actions),
        daily_loss_remaining=daily_remaining,
        max_loss_remaining=buffer,
        position_remaining=position_remaining,
        profit_remaining=profit_remaining,
        consistency=consistency,
    )


def apply_breaches(assessment: Assessment) -> AccountState:
    """The assessed state after its breaches: disabled for the day, or closed."""
    state = assessment.state
    for finding in assessment.breaches:
        state = state.apply_event(_BREACH_EVENT[finding.rule])
    return state
