"""Gap recovery for user hubs: what the stream delivered, and the REST reads that fill a gap.

A user hub that was down, or read too late, missed events. ``Ledger`` remembers the last state
delivered of every order, fill, position and account, so an event is never delivered twice (nor
an older state after a newer one). ``Recovery`` is one round of REST reads after a (re)connect:
it hands out operations, takes their results, and turns them into ordinary events marked
``recovered``, each admitted through the ledger.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Final

import attrs

from ..core.events import (
    AccountUpdated,
    FillReceived,
    OrderUpdated,
    PositionUpdated,
    Resynced,
    StreamEvent,
)
from ..core.interfaces import Provider
from ..core.models import Account, AccountId, ContractId, Fill, Order, OrderId, Position
from ..core.operations import Operation
from ..core.subscriptions import Channel, Subscription

__all__ = ["RECOVERABLE", "Ledger", "Recovery", "RecoveryRead"]

# The user channels a gap can be recovered for, through REST.
RECOVERABLE: Final = frozenset({Channel.ACCOUNTS, Channel.ORDERS, Channel.POSITIONS, Channel.FILLS})
MAX_TRACKED: Final = 100_000  # orders and fills remembered for deduplication, the oldest forgotten


def _order_state(order: Order) -> tuple[object, ...]:
    return (
        order.status,
        order.size,
        order.fill_volume,
        order.limit_price,
        order.stop_price,
        order.trail_price,
        order.filled_price,
    )


def _position_state(position: Position) -> tuple[object, ...]:
    if position.size == 0:
        return (0,)
    return (position.side, position.size, position.average_price)


def _account_state(account: Account) -> tuple[object, ...]:
    return (account.name, account.balance, account.can_trade, account.is_visible)


class Verdict(enum.Enum):
    """What the ledger made of a user event."""

    NEW = "new"  # not delivered before: deliver it
    DUPLICATE = "duplicate"  # this very state was delivered already
    STALE = "stale"  # an older state than one delivered already


class Ledger:
    """The last state delivered of each order, fill, position and account of the stream."""

    def __init__(self, *, max_tracked: int = MAX_TRACKED) -> None:
        self._max = max_tracked
        self._orders: OrderedDict[OrderId, Order] = OrderedDict()
        self._fills: OrderedDict[int, bool] = OrderedDict()  # fill id -> voided
        self._positions: dict[tuple[AccountId, ContractId], Position] = {}
        self._accounts: dict[AccountId, Account] = {}
        self.duplicates = 0
        self.stale = 0
        # The latest time (UNIX seconds) of an order or fill event judged: everything before it
        # in the stream was judged too, so a gap starts no earlier.
        self.mark: float | None = None

    def admit(self, event: StreamEvent) -> bool:
        """True when ``event`` carries something not delivered yet (and records it as delivered)."""
        verdict = self.judge(event)
        moment: datetime | None = None
        if isinstance(event, OrderUpdated):
            moment = event.order.updated_at or event.order.created_at
        elif isinstance(event, FillReceived):
            moment = event.fill.created_at
        if moment is not None:
            at = moment.timestamp()
            self.mark = at if self.mark is None else max(self.mark, at)
        if verdict is Verdict.NEW:
            self._record(event)
            return True
        if verdict is Verdict.DUPLICATE:
            self.duplicates += 1
        else:
            self.stale += 1
        return False

    def judge(self, event: StreamEvent) -> Verdict:
        """Whether ``event`` is new, a duplicate or stale, without recording it."""
        if isinstance(event, OrderUpdated):
            return self._judge_order(event.order)
        if isinstance(event, FillReceived):
            seen = self._fills.get(event.fill.id)
            return Verdict.NEW if seen is None or seen != event.fill.voided else Verdict.DUPLICATE
        if isinstance(event, PositionUpdated):
            position = event.position
            last = self._positions.get((position.account_id, position.contract_id))
            if last is not None and _position_state(last) == _position_state(position):
                return Verdict.DUPLICATE
            return Verdict.NEW
        if isinstance(event, AccountUpdated):
            known = self._accounts.get(event.account.id)
            if known is not None and _account_state(known) == _account_state(event.account):
                return Verdict.DUPLICATE
        return Verdict.NEW

    def _judge_order(self, order: Order) -> Verdict:
        last = self._orders.get(order.id)
        if last is None:
            return Verdict.NEW
        if _order_state(last) == _order_state(order):
            return Verdict.DUPLICATE
        if last.status.is_terminal and not order.status.is_terminal:
            return Verdict.STALE
        if (
            last.updated_at is not None
            and order.updated_at is not None
            and order.updated_at < last.updated_at
        ):
            return Verdict.STALE
        return Verdict.NEW

    def _record(self, event: StreamEvent) -> None:
        if isinstance(event, OrderUpdated):
            self._remember(self._orders, event.order.id, event.order)
        elif isinstance(event, FillReceived):
            self._remember(self._fills, event.fill.id, event.fill.voided)
        elif isinstance(event, PositionUpdated):
            position = event.position
            self._positions[(position.account_id, position.contract_id)] = position
        elif isinstance(event, AccountUpdated):
            self._accounts[event.account.id] = event.account

    def _remember(self, table: OrderedDict[Any, Any], key: object, value: object) -> None:
        table[key] = value
        table.move_to_end(key)
        if len(table) > self._max:
            table.popitem(last=False)

    def working_orders(self, account_id: AccountId) -> list[Order]:
        """Orders of the account last delivered as still working."""
        return [
            o for o in self._orders.values() if o.account_id == account_id and o.status.is_working
        ]

    def open_positions(self, account_id: AccountId) -> list[Position]:
        """Positions of the account last delivered as open."""
        return [p for p in self._positions.values() if p.account_id == account_id and p.size]


@attrs.frozen
class RecoveryRead:
    """A REST read a recovery needs; its result goes back under ``key``."""

    key: int
    operation: Operation[Any]


class _Kind(enum.Enum):
    ORDERS = "orders"
    OPEN_ORDERS = "open_orders"
    FILLS = "fills"
    POSITIONS = "positions"
    ACCOUNTS = "accounts"


def utc(timestamp: float) -> datetime:
    """A UNIX time as an aware UTC datetime."""
    return datetime.fromtimestamp(timestamp, UTC)


class Recovery:
    """One round of REST reads that rebuilds what a user hub missed since ``since``.

    ``reads`` are handed to the runtime; each result comes back through ``done`` or ``failed``.
    Once ``finished`` (and not ``error``), ``events`` yields the missed events, deduplicated.
    """

    def __init__(
        self,
        provider: Provider,
        hub: str,
        subscriptions: Iterable[Subscription],
        since: float,
        ledger: Ledger,
        *,
        first_key: int,
    ) -> None:
        self.hub = hub
        self.since = since
        self.subscriptions = tuple(subscriptions)
        self._wanted: dict[AccountId | None, set[Channel]] = {}
        for sub in self.subscriptions:
            self._wanted.setdefault(sub.key if isinstance(sub.key, int) else None, set()).add(
                sub.channel
            )
        start = utc(since)
        plan: list[tuple[_Kind, AccountId | None, Operation[Any]]] = []
        for account, channels in self._wanted.items():
            if account is None:
                plan.append((_Kind.ACCOUNTS, None, provider.get_accounts(True)))
                continue
            if Channel.ORDERS in channels:
                # Orders created before the gap may have changed in it: look back to the oldest
                # one still working, as far as the stream knows.
                working = [o.created_at for o in ledger.working_orders(account)]
                orders_from = min([start, *working])
                plan.append((_Kind.ORDERS, account, provider.search_orders(account, orders_from)))
                plan.append((_Kind.OPEN_ORDERS, account, provider.get_open_orders(account)))
            if Channel.FILLS in channels:
                plan.append((_Kind.FILLS, account, provider.search_trades(account, start)))
            if Channel.POSITIONS in channels:
                plan.append((_Kind.POSITIONS, account, provider.get_open_positions(account)))
        self._plan = {first_key + i: (kind, account) for i, (kind, account, _) in enumerate(plan)}
        self.reads = tuple(RecoveryRead(first_key + i, op) for i, (_, _, op) in enumerate(plan))
        self._results: dict[int, Any] = {}
        self.error: str | None = None

    @property
    def finished(self) -> bool:
        """Every read answered, or one failed."""
        return self.error is not None or len(self._results) == len(self._plan)

    def owns(self, key: int) -> bool:
        """True when ``key`` names one of this recovery's reads."""
        return key in self._plan

    def done(self, key: int, value: Any) -> None:
        """The result of one read."""
        if key in self._plan:
            self._results[key] = value

    def failed(self, key: int, error: BaseException) -> None:
        """One read failed: the recovery is over and must be tried again."""
        if key in self._plan and self.error is None:
            self.error = f"{type(error).__name__}: {error}"

    def _results_of(self, kind: _Kind) -> list[tuple[AccountId | None, Any]]:
        return [
            (account, self._results[key])
            for key, (k, account) in self._plan.items()
            if k is kind and key in self._results
        ]

    def events(self, ledger: Ledger) -> list[StreamEvent]:
        """The missed events, oldest first, each admitted through ``ledger``; then ``Resynced``."""
        orders: dict[OrderId, Order] = {}
        for kind in (_Kind.ORDERS, _Kind.OPEN_ORDERS):
            for account, found in self._results_of(kind):
                for order in found:
                    if order.account_id != account:
                        continue
                    known = orders.get(order.id)
                    if known is None or _newer(order, known):
                        orders[order.id] = order
        fills: dict[int, Fill] = {}
        for account, found in self._results_of(_Kind.FILLS):
            fills.update((f.id, f) for f in found if f.account_id == account)
        timeline: list[tuple[datetime, int, int, StreamEvent]] = [
            (f.created_at, 0, f.id, FillReceived(f, recovered=True)) for f in fills.values()
        ]
        timeline += [
            (o.updated_at or o.created_at, 1, o.id, OrderUpdated(o, recovered=True))
            for o in orders.values()
        ]
        timeline.sort(key=lambda item: item[:3])
        candidates = [event for *_, event in timeline]
        for account, found in self._results_of(_Kind.POSITIONS):
            assert account is not None
            open_now = {p.contract_id: p for p in found if p.account_id == account and p.size}
            candidates += [PositionUpdated(p, recovered=True) for p in open_now.values()]
            # A position the stream knows as open but REST no longer lists was closed in the gap.
            candidates += [
                PositionUpdated(attrs.evolve(p, size=0), recovered=True)
                for p in ledger.open_positions(account)
                if p.contract_id not in open_now
            ]
        for _, accounts in self._results_of(_Kind.ACCOUNTS):
            candidates += [AccountUpdated(a, recovered=True) for a in accounts]
        delivered = [event for event in candidates if ledger.admit(event)]
        counts = dict.fromkeys((OrderUpdated, FillReceived, PositionUpdated, AccountUpdated), 0)
        for event in delivered:
            counts[type(event)] += 1
        delivered.append(
            Resynced(
                self.hub,
                orders=counts[OrderUpdated],
                fills=counts[FillReceived],
                positions=counts[PositionUpdated],
                accounts=counts[AccountUpdated],
                since=self.since,
            )
        )
        return delivered


def _newer(order: Order, than: Order) -> bool:
    """True when ``order`` is a later state of the same order than ``than``."""
    if than.status.is_terminal != order.status.is_terminal:
        return order.status.is_terminal
    if order.updated_at is None or than.updated_at is None:
        return False
    return order.updated_at > than.updated_at
