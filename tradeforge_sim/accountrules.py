"""The firm's account rules as the simulated gateway keeps them: one rules state per ruled account.

The judging is the core's (``tradeforge_proto.rules``); this module keeps each account's state
across fills and days, and turns the core's verdicts and actions into what the exchange must do.
The exchange carries the actions out (cancel, flatten, disable, close) and announces them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final

from tradeforge_proto.core.models import Contract
from tradeforge_proto.rules import (
    AccountRules,
    AccountState,
    AccountStatus,
    Action,
    Assessment,
    Decision,
    MissingFigure,
    ProposedOrder,
    Rule,
    Verdict,
    apply_breaches,
    check_order,
    evaluate,
)
from tradeforge_proto.rules import Fill as RuleFill

RULE_TITLES: Final = {
    Rule.MAX_POSITION: "Maximum position size",
    Rule.DAILY_LOSS: "Daily loss limit",
    Rule.MAX_LOSS: "Maximum loss limit",
    Rule.ACCOUNT_CLOSED: "Maximum loss limit",
    Rule.TRADING_DISABLED: "Daily loss limit",
}
"""How a refusal's message names the rule behind it."""


def refusal_message(verdict: Verdict) -> str:
    """The gateway-style error message of a refused order: the rule, then its figures."""
    title = "Account rule" if verdict.rule is None else RULE_TITLES[verdict.rule]
    return f"{title}: {verdict.message}."


def _moment(now: float) -> datetime:
    return datetime.fromtimestamp(now, UTC)


class RuleKeeper:
    """The rules state of every ruled account, fed by fills and marks, judged by the core."""

    def __init__(
        self,
        rules: Mapping[int, AccountRules],
        contracts: Mapping[str, Contract],
        *,
        now: float,
        states: Mapping[int, AccountState] | None = None,
    ) -> None:
        self._rules = dict(rules)
        self._contracts = contracts
        given = dict(states or {})
        unknown = set(given) - set(self._rules)
        if unknown:
            raise ValueError(f"rules states for accounts without rules: {sorted(unknown)}")
        moment = _moment(now)
        self._states = {
            account_id: given.get(account_id) or AccountState.open(account_rules, moment)
            for account_id, account_rules in self._rules.items()
        }

    def __contains__(self, account_id: object) -> bool:
        return account_id in self._rules

    @property
    def accounts(self) -> Iterable[int]:
        """The ids of the ruled accounts."""
        return self._rules.keys()

    def rules(self, account_id: int) -> AccountRules:
        """The rules an account is held to."""
        return self._rules[account_id]

    def state(self, account_id: int) -> AccountState:
        """An account's current rules state."""
        return self._states[account_id]

    def states(self) -> dict[int, AccountState]:
        """Every ruled account's current rules state."""
        return dict(self._states)

    def status(self, account_id: int) -> AccountStatus:
        """Whether a ruled account is active, disabled for the day or closed."""
        return self._states[account_id].status

    def check(
        self, account_id: int, order: ProposedOrder, *, marks: Mapping[str, Decimal]
    ) -> Verdict:
        """Whether ``order`` may go, on the state as it stands (a review turns the day first)."""
        try:
            return check_order(
                self._states[account_id], self._rules[account_id], order, marks, self._contracts
            )
        except MissingFigure as exc:
            return Verdict(Decision.REFUSED, f"the account cannot be judged: {exc}")

    def record_fill(self, account_id: int, fill: RuleFill, contract: Contract) -> None:
        """Net an execution (its fees and commissions as the fee) into the rules state."""
        self._states[account_id], _ = self._states[account_id].apply_fill(fill, contract)

    def review(
        self, account_id: int, marks: Mapping[str, Decimal], now: float
    ) -> Assessment | None:
        """Assess the account at ``marks`` and keep the state its breaches lead to; ``None`` when a
        held contract has no mark yet (nothing can be judged until it has one)."""
        try:
            assessment = evaluate(
                self._states[account_id],
                self._rules[account_id],
                marks,
                self._contracts,
                _moment(now),
            )
        except MissingFigure:
            return None
        self._states[account_id] = apply_breaches(assessment)
        return assessment


def needs_flatten(assessment: Assessment) -> bool:
    """True when the assessment calls for the positions to be closed."""
    return Action.FLATTEN in assessment.actions


def needs_cancel(assessment: Assessment) -> bool:
    """True when the assessment calls for the working orders to be cancelled."""
    return Action.CANCEL_WORKING_ORDERS in assessment.actions
