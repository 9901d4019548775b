"""Finding out what an uncertain change did, without ever guessing "no" too early.

A request whose answer was lost may still be executed by the server after the client gave up.
So "not applied" is only said once the request can no longer land: the server's processing
window after the client stopped waiting (``given_up_at``, else the send time), judged by a lookup
that *started* after that moment. Without either time, or for a partial close (matched only by
its order's shape), absence proves nothing and the verdict stays UNKNOWN. Until then a
``Reconciler`` asks for lookups at a steady pace (``wait=True``) or answers UNKNOWN at once.

How each change is looked up:

- place: an order carrying the request's custom tag;
- cancel: the order's status (cancelled: applied; filled, rejected or expired: not applied);
- modify: the order's fields against the requested ones (a terminal order that does not match:
  not applied);
- close: the account's open positions (none left on the contract: applied);
- partial close: the market order the provider creates for it, on that contract, of that size,
  without a custom tag, created from shortly before the send (``CLOSE_SLACK``); seen: applied,
  not seen: unknown. Another partial close of the same size there within that slack cannot be
  told apart.
"""

from __future__ import annotations

import enum
import math
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import attrs

from .core.enums import OrderStatus, OrderType
from .core.errors import OrderUncertain
from .core.interfaces import Provider
from .core.models import Order, OrderModification, Position
from .core.operations import Change, Operation

MIN_WINDOW: Final = 5.0
"""Seconds: the least processing window, whatever the client's timeouts."""
POLL_INTERVAL: Final = 0.5
"""Seconds between lookups while waiting for the window to pass."""
TAG_SLACK: Final = timedelta(minutes=15)
"""Clock difference allowed when searching by custom tag (a tag is unique, so wide is safe)."""
CLOSE_SLACK: Final = timedelta(seconds=10)
"""Clock difference allowed when matching the order a partial close created (no tag: narrow)."""
_FINISHED_WITHOUT_CANCEL: Final = frozenset(
    {OrderStatus.FILLED, OrderStatus.REJECTED, OrderStatus.EXPIRED}
)


def processing_window(connect_timeout: float, read_timeout: float) -> float:
    """The default window: as long as a request could take to be answered, at least MIN_WINDOW."""
    return max(MIN_WINDOW, connect_timeout + read_timeout)


class Outcome(enum.Enum):
    """What an uncertain change turned out to be."""

    APPLIED = "applied"
    """It took effect: the order exists, or the cancel, modify or close landed."""
    NOT_APPLIED = "not_applied"
    """It did not take effect and no longer can: sending it again is safe."""
    UNKNOWN = "unknown"
    """It cannot be told (yet): do not send it again; reconcile later or look by hand."""


@attrs.frozen
class Reconciliation:
    """The verdict on one uncertain change: its outcome, why, and the order seen (if any)."""

    outcome: Outcome
    change: Change | None
    reason: str
    order: Order | None = None

    @property
    def applied(self) -> bool:
        """True when the change took effect."""
        return self.outcome is Outcome.APPLIED

    @property
    def not_applied(self) -> bool:
        """True when the change did not take effect and can no longer."""
        return self.outcome is Outcome.NOT_APPLIED

    @property
    def unknown(self) -> bool:
        """True when the outcome cannot be told."""
        return self.outcome is Outcome.UNKNOWN


class Reconciler:
    """Decides an uncertain change from lookups the runtime runs; pure, the clock passed in.

    Drive it: ``operation = r.lookup(now)``, run it, then ``r.observed(value, now)`` or
    ``r.failed(error, now)``; a None verdict means look again at ``r.next_lookup``.
    """

    def __init__(
        self,
        provider: Provider,
        uncertain: OrderUncertain,
        *,
        window: float,
        now: float,
        wait: bool = True,
        poll_interval: float = POLL_INTERVAL,
    ) -> None:
        if not (math.isfinite(window) and window >= 0):
            raise ValueError(f"window must be a finite number of seconds >= 0, got {window!r}")
        if not (math.isfinite(poll_interval) and poll_interval > 0):
            raise ValueError(f"poll_interval must be finite and > 0, got {poll_interval!r}")
        self._provider = provider
        self._uncertain = uncertain
        self._wait = wait
        self._poll = poll_interval
        sent, gave_up = uncertain.sent_at, uncertain.given_up_at
        # Without any known time nothing can be proved absent: the search centres on now.
        self._provable = sent is not None or gave_up is not None
        self._sent = sent.timestamp() if sent is not None else now
        base = gave_up.timestamp() if gave_up is not None else self._sent
        self._deadline = max(base, self._sent) + window
        self._give_up = self._deadline + window
        self._started = now
        self._next = now
        self._contract = uncertain.contract_id
        self._verdict: Reconciliation | None = None
        if uncertain.change is None:
            self._verdict = self._unknown("the request is not a change this library can look up")
        elif uncertain.change is Change.PLACE and not uncertain.custom_tag:
            self._verdict = self._unknown("the order has no custom tag to look it up by")
        elif uncertain.change in (Change.CANCEL, Change.MODIFY) and uncertain.order_id is None:
            self._verdict = self._unknown("the request names no order to look up")
        elif uncertain.change is Change.MODIFY and not isinstance(
            uncertain.request, OrderModification
        ):
            self._verdict = self._unknown("the request's changes are not known to compare")
        elif uncertain.change in (Change.CLOSE, Change.PARTIAL_CLOSE) and not uncertain.contract_id:
            self._verdict = self._unknown("the request names no contract to look up")
        elif uncertain.change is Change.PARTIAL_CLOSE and uncertain.size is None:
            self._verdict = self._unknown("the request names no size to look up")

    @property
    def deadline(self) -> float:
        """When the request can no longer land (UNIX seconds)."""
        return self._deadline

    @property
    def next_lookup(self) -> float:
        """When to run the next lookup (UNIX seconds)."""
        return self._next

    @property
    def verdict(self) -> Reconciliation | None:
        """The verdict once reached."""
        return self._verdict

    def lookup(self, now: float) -> Operation[Any]:
        """The read to run now; its start time is what a "not applied" verdict rests on."""
        if self._verdict is not None:
            raise RuntimeError("the outcome is already known")
        self._started = now
        u = self._uncertain
        if u.change in (Change.CANCEL, Change.MODIFY):
            assert u.order_id is not None
            return self._provider.get_order(u.account_id, u.order_id)
        if u.change is Change.CLOSE:
            return self._provider.get_open_positions(u.account_id)
        sent = datetime.fromtimestamp(self._sent, UTC)
        slack = TAG_SLACK if u.change is Change.PLACE else CLOSE_SLACK
        end = datetime.fromtimestamp(now, UTC) + slack
        return self._provider.search_orders(u.account_id, sent - slack, end)

    def observed(self, value: object, now: float) -> Reconciliation | None:
        """Judge a lookup's answer; None means look again at ``next_lookup``."""
        if self._verdict is not None:
            raise RuntimeError("the outcome is already known")
        found, final = self._judge(value)
        if found is not None:
            return self._decide(Outcome.APPLIED, found[1], found[0])
        if final is not None:
            return self._decide(Outcome.NOT_APPLIED, final[1], final[0])
        seen = value if isinstance(value, Order) else None
        if self._started >= self._deadline:
            if not self._provable or self._uncertain.change is Change.PARTIAL_CLOSE:
                return self._decide(Outcome.UNKNOWN, self._unprovable(), seen)
            return self._decide(Outcome.NOT_APPLIED, self._not_seen(), seen)
        if not self._wait:
            return self._decide(Outcome.UNKNOWN, self._not_yet(), seen)
        self._next = min(max(now, self._started + self._poll), max(now, self._deadline))
        return None

    def failed(self, error: BaseException, now: float) -> Reconciliation | None:
        """A lookup failed; keep looking for a while, then UNKNOWN with the error as reason."""
        if self._verdict is not None:
            raise RuntimeError("the outcome is already known")
        if not self._wait or now >= self._give_up:
            return self._decide(Outcome.UNKNOWN, f"the lookup failed: {error}", None)
        self._next = now + self._poll
        return None

    # --- judging ---

    def _judge(
        self, value: object
    ) -> tuple[tuple[Order | None, str] | None, tuple[Order | None, str] | None]:
        """(applied, with the order seen and why), (final refusal, with the order and why)."""
        change = self._uncertain.change
        if change in (Change.CANCEL, Change.MODIFY):
            if not isinstance(value, Order):
                return None, None
            return self._judge_order(value)
        if not isinstance(value, list):
            return None, None
        rows = value
        if change is Change.CLOSE:
            left = [p for p in rows if isinstance(p, Position) and p.contract_id == self._contract]
            return ((None, f"no position is left on {self._contract}") if not left else None), None
        match = self._created([o for o in rows if isinstance(o, Order)])
        return ((match, self._seen(match)) if match is not None else None), None

    def _judge_order(
        self, order: Order
    ) -> tuple[tuple[Order, str] | None, tuple[Order | None, str] | None]:
        if self._uncertain.change is Change.CANCEL:
            if order.status is OrderStatus.CANCELLED:
                return (order, f"order {order.id} is cancelled"), None
            if order.status is OrderStatus.PENDING_CANCELLATION:
                return (order, f"order {order.id} is being cancelled"), None
            if order.status in _FINISHED_WITHOUT_CANCEL:
                return None, (order, f"order {order.id} ended {order.status.name} uncancelled")
            return None, None
        change = self._uncertain.request
        assert isinstance(change, OrderModification)  # checked on construction
        if _matches(order, change):
            return (order, f"order {order.id} carries the requested changes"), None
        if order.status.is_terminal:
            return None, (order, f"order {order.id} ended {order.status.name} unmodified")
        return None, None

    def _created(self, orders: list[Order]) -> Order | None:
        u = self._uncertain
        if u.change is Change.PLACE:
            return next((o for o in orders if o.custom_tag == u.custom_tag), None)
        since = datetime.fromtimestamp(self._sent, UTC) - CLOSE_SLACK
        closes = [
            o
            for o in orders
            if o.created_at >= since
            and o.contract_id == u.contract_id
            and o.type is OrderType.MARKET
            and not o.custom_tag
            and o.size == u.size
        ]
        return max(closes, key=lambda o: o.created_at, default=None)

    # --- wording ---

    def _seen(self, order: Order) -> str:
        if self._uncertain.change is Change.PLACE:
            return f"order {order.id} carries custom tag {self._uncertain.custom_tag!r}"
        return f"order {order.id} on {order.contract_id} is the partial close"

    def _not_seen(self) -> str:
        return f"not seen by a lookup started after the request could land ({self._when()})"

    def _unprovable(self) -> str:
        if not self._provable:
            return "not seen, but with no known send time its absence proves nothing"
        return "no matching close order was seen; a partial close cannot be proved absent"

    def _not_yet(self) -> str:
        return f"not seen yet; the request may still land until {self._when()}"

    def _when(self) -> str:
        return datetime.fromtimestamp(self._deadline, UTC).isoformat(timespec="milliseconds")

    def _unknown(self, reason: str) -> Reconciliation:
        return Reconciliation(Outcome.UNKNOWN, self._uncertain.change, reason)

    def _decide(self, outcome: Outcome, reason: str, order: Order | None) -> Reconciliation:
        self._verdict = Reconciliation(outcome, self._uncertain.change, reason, order)
        return self._verdict


def _matches(order: Order, change: OrderModification) -> bool:
    """True when every field the modification sets has that value on the order."""
    wanted = (
        (change.size, order.size),
        (change.limit_price, order.limit_price),
        (change.stop_price, order.stop_price),
        (change.trail_price, order.trail_price),
    )
    return all(want is None or want == have for want, have in wanted)
