"""One account's rules state as a client sees it: checks before an order goes, stream alerts.

``RiskGuard`` is rebuilt from the gateway's own figures (``sync``), kept current by stream events
(``observe``) and asked before an order is sent (``check``). It is pure: the clock is passed in and
it does no I/O; a runtime's client does the reads.

The gateway's figures are authoritative: the balance comes only from account updates and the
holdings only from position updates, so a fill is never counted twice; a fill adds to the day's
realized figure (``AccountState.day_realized``), for display. Events are recognised by the model
they carry (``event.account``, ``.position``, ``.fill``, ``.quote``), as the core's stream events
do; anything else is ignored.

Without a mark or a tick spec for a held contract (``unpriced``) its P&L is unknown, and so are
the daily and maximum loss: ``check`` then refuses every order that adds risk (with ``rule`` None
and a message naming the contract), a reducing order still goes, ``observe`` reports nothing and
``assessment`` raises ``MissingFigure``. Nothing falls back to the entry price.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal, localcontext
from types import MappingProxyType

import attrs

from ..core.models import Account, AccountId, Contract, ContractId, Position, Quote
from ..core.models import Fill as Trade
from .account import EXACT, TRANSITIONS, AccountState, AccountStatus, Event, Holding, MissingFigure
from .checks import (
    Assessment,
    Decision,
    Finding,
    OrderLike,
    ProposedOrder,
    Rule,
    Verdict,
    WorkingOrder,
    apply_breaches,
    check_order,
    evaluate,
    working_exposure,
)
from .config import AccountRules
from .contracts import TickSpec
from .tradingday import trading_day


class _Kind(enum.Enum):
    WARNING = "warning"
    BREACH = "breach"


def mark_of(quote: Quote) -> Decimal | None:
    """The price a quote marks its contract at: the last price, else the bid/ask mid, else None."""
    if quote.last_price is not None:
        return quote.last_price
    if quote.best_bid is None or quote.best_ask is None:
        return None
    with localcontext(EXACT):
        return (quote.best_bid + quote.best_ask) / 2


def _holding(position: Position) -> Holding:
    with localcontext(EXACT):
        return Holding(
            position.contract_id,
            position.signed_size,
            position.signed_size * position.average_price,
        )


def _realized(trade: Trade) -> Decimal:
    """A fill's part of the day's P&L: its profit, less its fees and its commissions."""
    with localcontext(EXACT):
        charges = trade.fees + (trade.commissions or Decimal(0))
        return (trade.profit_and_loss or Decimal(0)) - charges


class RiskGuard:
    """The rules state of one account, rebuilt by ``sync`` and updated by ``observe``.

    ``eod_high`` is the account's highest end-of-day balance so far; the trailing floor is it less
    the maximum loss (up to the rules' lock level). It defaults to the rules' starting balance,
    and each ``sync`` raises it to the day's opening balance, which is the previous day's close.
    """

    def __init__(
        self, rules: AccountRules, account_id: AccountId, *, eod_high: Decimal | None = None
    ) -> None:
        self._rules = rules
        self._account_id = account_id
        self._eod_high = rules.starting_balance if eod_high is None else eod_high
        self._state: AccountState | None = None
        self._marks: dict[ContractId, Decimal] = {}
        self._specs: dict[ContractId, TickSpec] = {}
        self._fills: set[int] = set()
        self._working: tuple[WorkingOrder, ...] = ()
        """Ids of the fills counted in the current day's realized figure."""
        self._reported: set[tuple[date, Rule, _Kind]] = set()

    @property
    def rules(self) -> AccountRules:
        """The limits the account is held to."""
        return self._rules

    @property
    def account_id(self) -> AccountId:
        """The account guarded; figures of any other account are left out."""
        return self._account_id

    @property
    def state(self) -> AccountState | None:
        """The account as the rules see it; ``None`` until the first ``sync``."""
        return self._state

    @property
    def marks(self) -> Mapping[ContractId, Decimal]:
        """The latest mark of each contract quoted so far."""
        return MappingProxyType(self._marks)

    @property
    def unpriced(self) -> tuple[ContractId, ...]:
        """Held contracts whose P&L cannot be known yet.

        Each lacks a mark (subscribe to its quotes and ``observe`` them) or a tick spec (pass its
        contract to ``sync``).
        """
        if self._state is None:
            return ()
        known = self._marks.keys() & self._specs.keys()
        return tuple(h.contract_id for h in self._state.holdings if h.contract_id not in known)

    # --- feeding the guard ---

    def sync(
        self,
        account: Account,
        positions: Sequence[Position],
        trades_today: Sequence[Trade],
        contracts: Mapping[ContractId, Contract],
        now: datetime,
        *,
        working: Sequence[WorkingOrder] = (),
    ) -> None:
        """Rebuild the state from the gateway's figures at ``now``; ``working`` are the
        account's open orders, which ``check`` counts with an order as the exchange does.

        The day's realized P&L is the sum of the trading day's fills (P&L less fees; voided ones
        and those of other days left out), and the day opened flat at the balance less it, as the
        firm has every position closed by the day's end. A suspension or closure already found
        today is kept; a new trading day ends a suspension.
        """
        if account.id != self._account_id:
            raise ValueError(f"the guard is for account {self._account_id}, not {account.id}")
        day = trading_day(now)
        counted = [
            trade
            for trade in trades_today
            if trade.account_id == self._account_id
            and not trade.voided
            and trading_day(trade.created_at) == day
        ]
        holdings = sorted(
            (_holding(p) for p in positions if p.account_id == self._account_id and p.size),
            key=lambda held: held.contract_id,
        )
        rules = self._rules
        previous = self._state
        with localcontext(EXACT):
            realized = sum((_realized(trade) for trade in counted), Decimal(0))
            day_open = account.balance - realized
            high = max(self._eod_high if previous is None else previous.eod_high, day_open)
            target = high - rules.max_loss
            if rules.lock_level is not None:
                target = min(target, rules.lock_level)
            floor = max(rules.initial_floor if previous is None else previous.floor, target)
        status = AccountStatus.ACTIVE
        if previous is not None:
            status = previous.status
            if day > previous.day:
                status = TRANSITIONS[status, Event.DAY_TURNED]
        self._specs.update(contracts)
        self._working = tuple(working)
        self._fills = {trade.id for trade in counted}
        self._state = AccountState(
            status=status,
            day=day,
            starting_balance=rules.starting_balance,
            balance=account.balance,
            eod_high=high,
            floor=floor,
            day_open_equity=day_open,
            day_realized=realized,
            holdings=tuple(holdings),
            history=() if previous is None else previous.history,
        )
        self._settle(now)

    def set_mark(self, contract_id: ContractId, price: Decimal) -> None:
        """Mark a contract at ``price`` (the last bar's close, say) until a quote says otherwise."""
        if not (isinstance(price, Decimal) and price.is_finite() and price > 0):
            raise ValueError(f"a mark must be a positive Decimal, got {price!r}")
        self._marks[contract_id] = price

    def observe(self, event: object, now: datetime) -> tuple[Finding, ...]:
        """Apply a stream event; the breaches, then the warnings, not reported before today.

        Each rule's warning and breach are reported once per trading day (a warning not after
        its breach). Quotes are kept from the start; other events count once synced.
        """
        quote = getattr(event, "quote", None)
        if isinstance(quote, Quote):
            mark = mark_of(quote)
            if mark is None:
                return ()
            self._marks[quote.contract_id] = mark
        elif self._state is None:
            return ()
        else:
            self._turn(now)
            if not self._apply(event):
                return ()
        if self._state is None:
            return ()
        assessment = self._settle(now)
        return () if assessment is None else self._new_findings(assessment)

    # --- asking the guard ---

    def check(self, order: OrderLike, now: datetime) -> Verdict:
        """Whether ``order`` may be sent at ``now``, judged as if it and the working orders on
        its side (as of the last ``sync``) all filled."""
        name = self._rules.name
        if self._state is None:
            return Verdict(
                Decision.REFUSED,
                f"the risk guard of the {name} account {self._account_id} has not been synced",
            )
        self._turn(now)
        pending = working_exposure(self._working, order.contract_id, order.side)
        judged = ProposedOrder(order.contract_id, order.side, order.size + pending)
        try:
            return check_order(self._state, self._rules, judged, self._marks, self._specs)
        except MissingFigure as exc:
            return Verdict(
                Decision.REFUSED,
                f"{exc}: the {name}'s loss limits cannot be judged, "
                "so only an order that reduces a position may go",
            )

    def assessment(self, now: datetime) -> Assessment:
        """The account at ``now``: figures, findings and what remains of each limit.

        Raises ``MissingFigure`` before the first ``sync`` or while a held contract has no mark.
        """
        if self._state is None:
            raise MissingFigure(f"the risk guard of account {self._account_id} has not been synced")
        return self._evaluate(now)

    # --- inside ---

    def _apply(self, event: object) -> bool:
        state = self._state
        assert state is not None
        account = getattr(event, "account", None)
        position = getattr(event, "position", None)
        trade = getattr(event, "fill", None)
        if isinstance(account, Account) and account.id == self._account_id:
            self._state = attrs.evolve(state, balance=account.balance)
        elif isinstance(position, Position) and position.account_id == self._account_id:
            others = [h for h in state.holdings if h.contract_id != position.contract_id]
            if position.size:
                others.append(_holding(position))
            holdings = tuple(sorted(others, key=lambda held: held.contract_id))
            self._state = attrs.evolve(state, holdings=holdings)
        elif (
            isinstance(trade, Trade)
            and trade.account_id == self._account_id
            and not trade.voided
            and trade.id not in self._fills
            and trading_day(trade.created_at) == state.day
        ):
            self._fills.add(trade.id)
            with localcontext(EXACT):
                realized = state.day_realized + _realized(trade)
            self._state = attrs.evolve(state, day_realized=realized)
        else:
            return False
        return True

    def _turn(self, now: datetime) -> None:
        """End the held day when ``now`` is in a later one (not while its close is unknown)."""
        state = self._state
        assert state is not None
        try:
            turned = state.turn_day(self._rules, now, self._marks, self._specs)
        except MissingFigure:
            return
        if turned is not state:
            self._fills = set()
        self._state = turned

    def _evaluate(self, now: datetime) -> Assessment:
        self._turn(now)
        state = self._state
        assert state is not None
        assessment = evaluate(state, self._rules, self._marks, self._specs, now)
        self._state = apply_breaches(assessment)
        return assessment

    def _settle(self, now: datetime) -> Assessment | None:
        try:
            return self._evaluate(now)
        except MissingFigure:
            return None

    def _new_findings(self, assessment: Assessment) -> tuple[Finding, ...]:
        day = assessment.day
        self._reported = {key for key in self._reported if key[0] == day}
        found: list[Finding] = []
        for kind, findings in (
            (_Kind.BREACH, assessment.breaches),
            (_Kind.WARNING, assessment.warnings),
        ):
            for finding in findings:
                key = (day, finding.rule, kind)
                if key in self._reported or (day, finding.rule, _Kind.BREACH) in self._reported:
                    continue
                self._reported.add(key)
                found.append(finding)
        return tuple(found)
