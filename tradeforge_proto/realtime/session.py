"""The realtime session: every hub of one login, stepped by a runtime that only does I/O.

``StreamSession`` owns one ``StreamMachine`` per hub of the provider (``provider.hubs()``), routes
subscriptions to them, slices what the runtime reads, keeps the live books and the event queue,
and holds the rules a bot relies on:

- Back-pressure. Events that must not be dropped (user events, trade prints) are never dropped:
  once the queue is full the session stops reading that hub (TCP then pushes back on the server),
  timers and keep-alive pings go on, and time paused for our own reader never counts as server
  silence. A hub paused longer than ``StreamConfig.max_pause`` is closed on purpose and connected
  again once the reader made room, its gap recovered. Quotes and depth coalesce per contract.
- Gap recovery. Once a user hub's subscriptions are acknowledged (first connection, reconnect,
  or after a deliberate close) the session asks the runtime to run REST reads and delivers what
  the stream missed as ordinary events marked ``recovered``, each once, then ``Resynced``; live
  events read later come after them. Market data is not recovered: ``FeedGap`` says it was missed.
- Subscriptions report their outcome (``status``) so a runtime can return once acknowledged.

A runtime drives each ``HubLink`` the same way: carry out ``actions()``, write ``data_to_send()``,
``feed`` held input while it can, read only while ``check_reading`` allows, sleep until
``next_deadline()`` or a wake-up, call ``handle_timer``; and hand the session's events on.
"""

from __future__ import annotations

import enum
import logging
import random
from collections import Counter, OrderedDict, deque
from collections.abc import Iterable
from typing import Any, Final

import attrs

from ..core.book import OrderBook
from ..core.errors import LocalProtocolError, SubscriptionFailed, TradeForgeError
from ..core.events import (
    AccountUpdated,
    Connected,
    DepthReceived,
    Disconnected,
    EventDropped,
    FeedGap,
    FeedStale,
    FillReceived,
    MarketTradeReceived,
    OrderUpdated,
    PositionUpdated,
    QuoteUpdated,
    Reconnecting,
    Resubscribed,
    Resynced,
    ResyncFailed,
    StreamEvent,
    StreamStopped,
    Subscribed,
    SubscriptionRefused,
)
from ..core.interfaces import Provider
from ..core.models import ContractId
from ..core.operations import Operation
from ..core.secret import Secret
from ..core.subscriptions import Subscription
from .machine import (
    FEED_SIZE,
    CloseConnection,
    FetchToken,
    OpenConnection,
    StreamConfig,
    StreamMachine,
    StreamState,
)
from .queue import EventQueue
from .recovery import RECOVERABLE, Ledger, Recovery

__all__ = [
    "CLOSE_TIMEOUT",
    "MAX_WAIT",
    "READ_SIZE",
    "SUBSCRIBE_TIMEOUT",
    "HubLink",
    "RunOperation",
    "SessionAction",
    "StreamSession",
    "StreamStats",
    "SubscriptionStatus",
]

log = logging.getLogger("tradeforge.stream")

# The longest a runtime's driver waits at once: a safety net, since deadlines and wake-ups are
# exact; the same in every runtime.
MAX_WAIT: Final = 1.0
READ_SIZE: Final = 65_536  # the most a runtime takes off a hub's socket at once
CLOSE_TIMEOUT: Final = 2.0  # how long closing waits for close frames before cutting sockets
SUBSCRIBE_TIMEOUT: Final = 30.0  # how long a subscription call waits for it to go live
MAX_REFUSALS_KEPT: Final = 1024  # refused subscriptions remembered for their callers
SMALL_FEED: Final = 1024  # bytes fed at a time once fewer than ROOMY events fit in the queue
ROOMY: Final = 256
# Events a hub may queue past the limit while a caller waits for its acknowledgement: what a
# busy market keeps in flight ahead of it (socket buffers and the server's outbox).
WAIT_ALLOWANCE: Final = 100_000
_USER_TYPES: Final = frozenset({OrderUpdated, FillReceived, PositionUpdated, AccountUpdated})
_MARKET_TYPES: Final = frozenset({QuoteUpdated, MarketTradeReceived, DepthReceived})


@attrs.frozen
class RunOperation:
    """Run ``operation`` through the client; report ``operation_done`` or ``operation_failed``."""

    key: int
    operation: Operation[Any]


SessionAction = OpenConnection | CloseConnection | FetchToken | RunOperation


class SubscriptionStatus(enum.Enum):
    """Where a subscription stands, for a caller waiting on it."""

    PENDING = "pending"  # wanted, not yet live on the current connection
    ACTIVE = "active"  # acknowledged on the current connection (user ones: and resynced)
    REFUSED = "refused"  # the provider refused it; no longer wanted
    STOPPED = "stopped"  # its hub stopped for good
    UNWANTED = "unwanted"  # unsubscribed (or never asked for)


@attrs.frozen
class StreamStats:
    """What the session did to stay within its bounds, since it was made."""

    queued: int  # events waiting to be read now
    high_water: int  # the most events that ever waited at once
    coalesced_quotes: int
    coalesced_depth: int
    pauses: int  # times reading stopped because the queue was full
    paused_seconds: float  # time spent paused for the reader, in all
    held: int  # hubs closed on purpose after a pause longer than ``max_pause``
    resyncs: int  # gap recoveries completed
    recovered: int  # events delivered through recovery
    duplicates: int  # user events not delivered again (same state delivered already)
    stale: int  # user events older than a state delivered already


class HubLink:
    """One hub of a session, as the runtime's driver for that hub sees it."""

    def __init__(self, session: StreamSession, machine: StreamMachine) -> None:
        self._session = session
        self.machine = machine
        self.name = machine.hub.name
        self.started = False
        self._actions: list[SessionAction] = []
        self._inbox = b""  # read but not yet fed (the queue filled up meanwhile)
        self._inbox_at = 0
        self._reader_paused_since: float | None = None
        self._held_for_reader = False
        self._lost_at: float | None = None  # when market data was last cut off
        # Recovery (user hubs): subscriptions acknowledged but not yet recovered on this
        # connection, those recovered (live), the round in flight, what waits behind it.
        self._to_recover: dict[Subscription, None] = {}
        self._live: set[Subscription] = set()
        self._recovery: Recovery | None = None
        self._retry_at: float | None = None
        self._held_live: list[StreamEvent] = []
        self._backlog: deque[StreamEvent] = deque()
        self._allowance = 0  # events it may queue past the limit while a caller waits on it

    def __repr__(self) -> str:
        return f"<HubLink {self.name} {self.machine.state.value}>"

    # --- what the runtime does ---

    @property
    def finished(self) -> bool:
        """The hub stopped for good: the driver does its last actions and writes, then ends."""
        return self.machine.state is StreamState.STOPPED

    @property
    def recovering(self) -> bool:
        """A gap recovery is under way or its events wait to enter the queue."""
        return self._recovery is not None or bool(self._backlog)

    def start(self, now: float) -> None:
        """Begin connecting (once)."""
        if not self.started and self.machine.state is StreamState.IDLE:
            self.started = True
            self.machine.start(now)
            self._absorb(now)

    def actions(self) -> list[SessionAction]:
        """What the runtime must do next (drained): sockets, tokens, REST reads."""
        actions: list[SessionAction] = [*self.machine.actions(), *self._actions]
        self._actions = []
        return actions

    def data_to_send(self) -> bytes:
        """Bytes for this hub's socket (drained); write them before closing it."""
        return self.machine.data_to_send()

    def connection_made(self, now: float) -> bool:
        """The socket is up; False when it is no longer wanted (close it unused)."""
        made = self.machine.connection_made(now)
        self._absorb(now)
        return made

    def connection_failed(self, error: BaseException, now: float) -> None:
        """The socket asked for could not be opened."""
        self.machine.connection_failed(error, now)
        self._absorb(now)

    def connection_lost(self, now: float, error: BaseException | None = None) -> None:
        """The socket closed or failed."""
        self.machine.connection_lost(now, error)
        self._absorb(now)

    def token_received(self, token: Secret, now: float, *, expires_at: float | None = None) -> None:
        """A token obtained after FetchToken."""
        self.machine.token_received(token, now, expires_at=expires_at)
        self._absorb(now)

    def token_failed(self, error: BaseException, now: float) -> None:
        """No token could be obtained."""
        self.machine.token_failed(error, now)
        self._absorb(now)

    def operation_done(self, key: int, value: Any, now: float) -> None:
        """The result of a RunOperation."""
        recovery = self._recovery
        if recovery is not None and recovery.owns(key):
            recovery.done(key, value)
            self._recovery_progress(now)

    def operation_failed(self, key: int, error: BaseException, now: float) -> None:
        """A RunOperation failed (after the client's own retries)."""
        recovery = self._recovery
        if recovery is not None and recovery.owns(key):
            recovery.failed(key, error)
            self._recovery_progress(now)

    def request_done(
        self,
        action: FetchToken | RunOperation,
        value: Any,
        now: float,
        *,
        token_expires_at: float | None = None,
    ) -> None:
        """What a FetchToken (a token, expiring at ``token_expires_at``) or RunOperation gave."""
        if isinstance(action, FetchToken):
            self.token_received(value, now, expires_at=token_expires_at)
        else:
            self.operation_done(action.key, value, now)

    def request_failed(
        self, action: FetchToken | RunOperation, error: BaseException, now: float
    ) -> None:
        """A FetchToken or RunOperation failed."""
        if isinstance(action, FetchToken):
            self.token_failed(error, now)
        else:
            self.operation_failed(action.key, error, now)

    def check_reading(self, now: float) -> bool:
        """Whether to read this hub's socket now; pauses, resumes or releases the hub as needed.

        Reading stops while held input waits, while the queue is full (the reader is behind),
        and while a recovery is under way (its events go first).
        """
        session = self._session
        full = self._room() <= 0
        if self._held_for_reader:
            if len(session._queue) <= session._queue.max_events // 2 and not self._backlog:
                self._held_for_reader = False
                log.info("%s hub: the reader made room; connecting again", self.name)
                self.machine.release(now)
                self._absorb(now)
            return False
        self._reader_pause(full, now)
        if self.machine.state not in (StreamState.HANDSHAKING, StreamState.CONNECTED):
            return False
        if self._inbox or full or self.recovering:
            session._stalled = True
            self.machine.pause_reading(now)
            return False
        self.machine.resume_reading(now)
        return True

    def _room(self) -> int:
        """Events the queue takes before this hub stops reading.

        While a caller waits for an acknowledgement from this hub, up to its allowance more:
        the acknowledgement may sit behind data, and a caller that reads only after its
        subscriptions are live would otherwise wait for ever.
        """
        queue = self._session._queue
        room = queue.max_events - len(queue)
        if self._session._waiting[self.name]:
            return max(room, self._allowance)
        return room

    def _reader_pause(self, full: bool, now: float) -> None:
        since = self._reader_paused_since
        connected = self.machine.state in (StreamState.HANDSHAKING, StreamState.CONNECTED)
        if full and connected and since is None:
            self._session._stalled = True
            self._reader_paused_since = now
            self._session._pauses += 1
            log.info(
                "%s hub: reading paused, %d events wait for the reader",
                self.name,
                len(self._session._queue),
            )
        elif since is not None and not (full and connected):
            self._reader_paused_since = None
            self._session._paused_seconds += now - since
            log.info("%s hub: reading resumed after %.3fs", self.name, now - since)

    def receive_data(self, data: bytes, now: float) -> None:
        """Bytes read from the socket; the first slice is decoded at once, the rest by ``feed``."""
        if not data:
            self.connection_lost(now)
            return
        if self._inbox:
            self._inbox = self._inbox[self._inbox_at :] + data
        else:
            self._inbox = data
        self._inbox_at = 0
        self.feed(now)

    def feed(self, now: float) -> bool:
        """Decode the next slice of held input if the queue has room; True when one was fed."""
        if not self._inbox:
            return False
        room = self._room()
        if room <= 0 or self.recovering:
            self._session._stalled = True
            return False
        start = self._inbox_at
        # Near the queue's limit, smaller slices: the overshoot stays a few events, not a slice's.
        end = start + (FEED_SIZE if room >= ROOMY else SMALL_FEED)
        chunk = self._inbox[start:end] if start or end < len(self._inbox) else self._inbox
        if end >= len(self._inbox):
            self._inbox, self._inbox_at = b"", 0
        else:
            self._inbox_at = end
        self.machine.receive_data(chunk, now)
        self._absorb(now)
        return True

    @property
    def has_input(self) -> bool:
        """Bytes read but not yet decoded wait (``feed`` them when allowed)."""
        return bool(self._inbox)

    def next_deadline(self) -> float | None:
        """When ``handle_timer`` is due next (None: only on input or a wake-up)."""
        if self.finished:
            return None
        deadlines = [d for d in (self.machine.next_deadline(), self._retry_at) if d is not None]
        since = self._reader_paused_since
        if since is not None:
            deadlines.append(since + self.machine.config.max_pause)
        return min(deadlines) if deadlines else None

    def handle_timer(self, now: float) -> None:
        """Act on every deadline that has passed."""
        self.machine.handle_timer(now)
        since = self._reader_paused_since
        max_pause = self.machine.config.max_pause
        if since is not None and now - since >= max_pause:
            self._reader_paused_since = None
            self._session._paused_seconds += now - since
            self._session._held += 1
            self._held_for_reader = True
            self._session._stalled = True
            reason = f"the reader made no room for {now - since:.1f}s"
            log.warning("%s hub: closed on purpose, %s", self.name, reason)
            self.machine.hold(now, reason)
        if self._retry_at is not None and now >= self._retry_at:
            self._retry_at = None
            self._maybe_recover(now)
        self._absorb(now)

    # --- events ---

    def _absorb(self, now: float) -> None:
        """Route what the machine produced: books, ledger, recovery, the queue."""
        events = self.machine.events()
        if not events:
            return
        session = self._session
        books = session._books
        queue = session._queue

        def counted(event: StreamEvent) -> None:
            if len(queue) >= queue.max_events and self._allowance:
                self._allowance -= 1  # queued past the limit for a waiting caller
            session._enqueue(event)

        enqueue = counted if self._allowance else session._enqueue

        for event in events:
            kind = type(event)
            if kind in _MARKET_TYPES:
                if books is not None and isinstance(event, DepthReceived):
                    book = books.get(event.contract_id)
                    if book is None:
                        book = books[event.contract_id] = OrderBook(event.contract_id)
                    book.apply_all(event.updates)
                enqueue(event)
            elif kind in _USER_TYPES:
                if self._recovery is not None or (self._to_recover and self._retry_at is None):
                    # A recovery round is due or under way: its events go first (after a failed
                    # round, live events flow while the retry waits).
                    self._held_live.append(event)
                    if self._recovery is None and len(self._held_live) >= session._queue.max_events:
                        self._maybe_recover(now, force=True)  # not for ever behind a late ack
                elif session._ledger.admit(event):
                    enqueue(event)
            else:
                self._lifecycle(event, now)
                enqueue(event)
                if isinstance(event, Subscribed | Resubscribed):
                    self._after_subscribed(event, now)
                    self._maybe_recover(now)  # at once: later events in this slice wait for it
        self._maybe_recover(now)

    def _lifecycle(self, event: StreamEvent, now: float) -> None:
        if isinstance(event, Disconnected):
            self._disconnected(now)
            level = logging.INFO if event.reason == "stopped" else logging.WARNING
            log.log(level, "%s hub disconnected: %s", self.name, event.reason)
        elif isinstance(event, Connected):
            if not any(s.is_market for s in self.machine.desired):
                self._lost_at = None  # no market data wanted any more: no gap to report
            log.info("%s hub connected (connection %d)", self.name, event.attempt + 1)
        elif isinstance(event, Reconnecting):
            log.info("%s hub: reconnect attempt %d in %.2fs", self.name, event.attempt, event.delay)
        elif isinstance(event, SubscriptionRefused):
            self._session._refused_now(event.subscription, event.error)
            self._to_recover.pop(event.subscription, None)
            log.warning("%s hub refused %s: %s", self.name, event.subscription, event.error)
        elif isinstance(event, StreamStopped):
            self._disconnected(now)
            if event.error is None:
                log.info("%s hub stopped", self.name)
            else:
                log.error("%s hub stopped: %s", self.name, event.error)
        elif isinstance(event, FeedStale | EventDropped):
            log.warning("%s hub: %s", self.name, event)

    def _after_subscribed(self, event: Subscribed | Resubscribed, now: float) -> None:
        subs = (event.subscription,) if isinstance(event, Subscribed) else event.subscriptions
        if isinstance(event, Resubscribed):
            log.info("%s hub resubscribed %d subscriptions", self.name, len(subs))
        market = tuple(str(s.key) for s in subs if s.is_market)
        lost_at = self._lost_at
        if market and lost_at is not None and isinstance(event, Resubscribed):
            self._lost_at = None
            gap = FeedGap(self.name, tuple(dict.fromkeys(market)), lost_at, now)
            log.info("%s hub: market data missed for %.1fs", self.name, now - lost_at)
            self._session._enqueue(gap)
        for sub in subs:
            if sub.channel in RECOVERABLE:
                self._to_recover[sub] = None
            else:
                self._live.add(sub)

    def _disconnected(self, now: float) -> None:
        """The connection is gone, and with it what was read and not yet delivered."""
        if any(s.is_market for s in self._live):
            self._lost_at = now if self._lost_at is None else self._lost_at
        self._live.clear()
        self._to_recover.clear()
        if self._recovery is not None:
            log.info("%s hub: recovery abandoned with its connection", self.name)
        self._recovery = None
        self._retry_at = None
        self._held_live.clear()  # not admitted: the next recovery fetches them again
        self._inbox, self._inbox_at = b"", 0

    # --- recovery ---

    def _maybe_recover(self, now: float, *, force: bool = False) -> None:
        """Start a recovery once every wanted user subscription is acknowledged."""
        if not self._to_recover or self._recovery is not None or self._retry_at is not None:
            return
        machine = self.machine
        # Acknowledged subscriptions wait here only while their connection lasts.
        assert machine.state is StreamState.CONNECTED
        # Everything wanted must be acknowledged, as far as the events handled so far tell (the
        # machine may be further on in the same slice): then one round recovers it all.
        known = self._to_recover.keys() | self._live
        if not force and not all(s in known for s in machine.desired if s.channel in RECOVERABLE):
            return
        session = self._session
        subs = list(self._to_recover)
        since = min(session._since(s, now) for s in subs) - machine.config.recovery_overlap
        recovery = Recovery(
            session._provider, self.name, subs, since, session._ledger, first_key=session._keys
        )
        session._keys += len(recovery.reads)
        self._recovery = recovery
        log.info("%s hub: recovering %d subscriptions since %.3f", self.name, len(subs), since)
        self._actions += [RunOperation(read.key, read.operation) for read in recovery.reads]
        self._recovery_progress(now)

    def _recovery_progress(self, now: float) -> None:
        recovery = self._recovery
        if recovery is None or not recovery.finished:
            return
        self._recovery = None
        session = self._session
        held, self._held_live = self._held_live, []
        if recovery.error is not None:
            delay = self.machine.config.recovery_retry
            self._retry_at = now + delay
            log.warning(
                "%s hub: recovery failed (%s); again in %gs", self.name, recovery.error, delay
            )
            session._enqueue(ResyncFailed(self.name, recovery.error, delay))
            for event in held:
                if session._ledger.admit(event):
                    session._enqueue(event)
            return
        events = recovery.events(session._ledger)
        resynced = events[-1]
        assert isinstance(resynced, Resynced)
        session._recovered += len(events) - 1
        session._resyncs += 1
        log.info(
            "%s hub resynced: %d orders, %d fills, %d positions, %d accounts recovered",
            self.name,
            resynced.orders,
            resynced.fills,
            resynced.positions,
            resynced.accounts,
        )
        for sub in recovery.subscriptions:
            self._to_recover.pop(sub, None)
            self._live.add(sub)
            session._ever_live.add(sub)
        session._stalled = True
        self._backlog.extend(events)
        self._backlog.extend(event for event in held if session._ledger.admit(event))
        session._pump_backlog(self)

    def _stop(self, now: float, error: TradeForgeError | None) -> None:
        """Stop for good: recovered events still waiting go first, then the stop events."""
        session = self._session
        while self._backlog:
            session._enqueue(self._backlog.popleft())
        self._reader_pause(False, now)
        self._held_for_reader = False
        self.machine.stop(now, error)
        self._absorb(now)


class StreamSession:
    """Every realtime hub of one login, its subscriptions, books, queue and recovery."""

    def __init__(
        self,
        provider: Provider,
        *,
        config: StreamConfig | None = None,
        max_events: int = 10_000,
        books: bool = False,
        rng: random.Random | None = None,
    ) -> None:
        self._provider = provider
        self.config = config or StreamConfig()
        rng = rng or random.Random()
        self._queue = EventQueue(max_events=max_events)
        self.links: dict[str, HubLink] = {}
        for hub in provider.hubs():
            if hub.name in self.links:
                raise LocalProtocolError(f"two hubs are called {hub.name!r}")
            self.links[hub.name] = HubLink(self, StreamMachine(hub, config=self.config, rng=rng))
        self._books: dict[ContractId, OrderBook] | None = {} if books else None
        self._ledger = Ledger()
        # When each subscription was asked for, and those that were live once: a gap of one
        # starts at the later of its request and the last user event delivered.
        self._requested: dict[Subscription, float] = {}
        self._ever_live: set[Subscription] = set()
        self._refused: OrderedDict[Subscription, str] = OrderedDict()
        self._waiting: Counter[str] = Counter()  # callers waiting on each hub's acknowledgements
        self._stalled = False  # a hub may wait for the reader: look after each get
        self._fresh: list[StreamEvent] | None = None
        self.enqueued = 0  # events that entered the queue so far: readers wait for it to move
        self._keys = 1
        self._stopped = False
        self._pauses = 0
        self._paused_seconds = 0.0
        self._held = 0
        self._resyncs = 0
        self._recovered = 0

    # --- subscriptions ---

    def link_for(self, subscription: Subscription) -> HubLink:
        """The hub that serves ``subscription``."""
        for link in self.links.values():
            if link.machine.hub.handles(subscription):
                return link
        raise LocalProtocolError(f"no hub serves {subscription}")

    def subscribe(self, subscription: Subscription, now: float) -> HubLink:
        """Want ``subscription`` (sent on connection); the link whose driver must be running."""
        if self._stopped:
            raise LocalProtocolError("the stream is closed")
        link = self.link_for(subscription)
        self._refused.pop(subscription, None)
        self._requested.setdefault(subscription, now)
        link.machine.subscribe(subscription, now)
        link._absorb(now)
        return link

    def unsubscribe(self, subscription: Subscription, now: float) -> HubLink:
        """No longer want ``subscription``."""
        link = self.link_for(subscription)
        self._requested.pop(subscription, None)
        self._ever_live.discard(subscription)
        link.machine.unsubscribe(subscription, now)
        link._to_recover.pop(subscription, None)
        link._live.discard(subscription)
        link._absorb(now)
        return link

    def status(self, subscription: Subscription) -> SubscriptionStatus:
        """Where ``subscription`` stands (see ``refusal`` for why it was refused)."""
        if subscription in self._refused:
            return SubscriptionStatus.REFUSED
        link = self.link_for(subscription)
        machine = link.machine
        if machine.state is StreamState.STOPPED:
            return SubscriptionStatus.STOPPED
        # A user subscription is live once its gap was recovered (or its recovery failed and
        # waits for a retry: live events flow meanwhile).
        if subscription in machine.active and (
            subscription not in link._to_recover or link._retry_at is not None
        ):
            return SubscriptionStatus.ACTIVE
        if subscription in machine.desired:
            return SubscriptionStatus.PENDING
        return SubscriptionStatus.UNWANTED

    def pending(self, subscription: Subscription) -> bool:
        """True while a caller waiting for ``subscription`` must wait on.

        Raises SubscriptionFailed when it was refused or its hub stopped; False once it is live
        (or no longer wanted).
        """
        status = self.status(subscription)
        if status is SubscriptionStatus.PENDING:
            return True
        if status is SubscriptionStatus.REFUSED:
            raise SubscriptionFailed(subscription, self.refusal(subscription) or "refused")
        if status is SubscriptionStatus.STOPPED:
            raise SubscriptionFailed(subscription, "the stream stopped")
        return False

    def begin_wait(self, subscriptions: Iterable[Subscription]) -> None:
        """A caller waits for ``subscriptions`` to go live: their hubs read on past a full queue.

        Each such hub may queue up to ``WAIT_ALLOWANCE`` events (or ``max_events``, if more) past
        the limit, so an acknowledgement behind data in flight still arrives while nobody
        reads; pair with ``end_wait``.
        """
        for name in {self.link_for(s).name for s in subscriptions}:
            if not self._waiting[name]:
                self.links[name]._allowance = max(self._queue.max_events, WAIT_ALLOWANCE)
            self._waiting[name] += 1

    def end_wait(self, subscriptions: Iterable[Subscription]) -> None:
        """The caller of ``begin_wait`` stopped waiting."""
        for name in {self.link_for(s).name for s in subscriptions}:
            self._waiting[name] = max(0, self._waiting[name] - 1)
            if not self._waiting[name]:
                self.links[name]._allowance = 0

    def refusal(self, subscription: Subscription) -> str | None:
        """The provider's reason for refusing ``subscription``, if it did."""
        return self._refused.get(subscription)

    def _since(self, subscription: Subscription, now: float) -> float:
        """Where a gap of ``subscription`` may start (before the overlap is taken off)."""
        requested = self._requested.get(subscription, now)
        mark = self._ledger.mark
        if subscription in self._ever_live and mark is not None:
            return max(requested, mark)
        return requested

    def _refused_now(self, subscription: Subscription, reason: str) -> None:
        self._requested.pop(subscription, None)
        self._refused[subscription] = reason
        self._refused.move_to_end(subscription)
        if len(self._refused) > MAX_REFUSALS_KEPT:
            self._refused.popitem(last=False)

    @property
    def subscriptions(self) -> tuple[Subscription, ...]:
        """Every wanted subscription, hub by hub."""
        return tuple(s for link in self.links.values() for s in link.machine.desired)

    # --- lifecycle ---

    def stop(self, now: float, error: TradeForgeError | None = None) -> None:
        """Stop every hub: close frames queued, sockets to close, StreamStopped events."""
        if self._stopped:
            return
        self._stopped = True
        for link in self.links.values():
            link._stop(now, error)

    @property
    def stopped(self) -> bool:
        """``stop`` was called."""
        return self._stopped

    @property
    def ended(self) -> bool:
        """Nothing more will come: every started hub stopped (or ``stop``) and the queue is empty.

        Readers end here; before it they wait for events.
        """
        if len(self._queue):
            return False
        if self._stopped:
            return True
        links = self.links.values()
        started = [link for link in links if link.started]
        return bool(started) and all(
            link.finished or (not link.started and not link.machine.desired) for link in links
        )

    # --- events ---

    @property
    def queue(self) -> EventQueue:
        """The bounded queue between the hubs and the reader."""
        return self._queue

    def track_fresh(self) -> None:
        """Keep each event entering the queue for ``take_fresh`` too (for callbacks)."""
        if self._fresh is None:
            self._fresh = []

    def take_fresh(self) -> list[StreamEvent]:
        """The events that entered the queue since the last call (drained), oldest first."""
        fresh = self._fresh
        if not fresh:
            return []
        self._fresh = []
        return fresh

    def _enqueue(self, event: StreamEvent) -> None:
        self.enqueued += 1
        self._queue.admit(event)
        if self._fresh is not None:
            self._fresh.append(event)

    def _pump_backlog(self, link: HubLink) -> None:
        backlog = link._backlog
        while backlog and link._room() > 0:
            self._enqueue(backlog.popleft())

    def get(self) -> StreamEvent | None:
        """The oldest waiting event, or None; reading it may let a paused hub go on."""
        event = self._queue.get()
        if event is not None and self._stalled:
            for link in self.links.values():
                if link._backlog:
                    self._pump_backlog(link)
        return event

    @property
    def paused(self) -> bool:
        """Some hub waits for the reader (paused, held, recovered events): wake it after a get."""
        if not self._stalled:
            return False  # the common case, checked after every get: nothing to look at
        self._stalled = any(
            not link.finished
            and (
                link._reader_paused_since is not None
                or link._held_for_reader
                or bool(link._backlog)
                or link.has_input
            )
            for link in self.links.values()
        )
        return self._stalled

    def book(self, contract_id: ContractId) -> OrderBook | None:
        """The live order book of a contract (with ``books=True`` and depth subscribed)."""
        return None if self._books is None else self._books.get(contract_id)

    def stats(self, now: float) -> StreamStats:
        """Counters of coalescing, pauses, purposeful closes and recovery."""
        paused = self._paused_seconds + sum(
            now - link._reader_paused_since
            for link in self.links.values()
            if link._reader_paused_since is not None
        )
        queue = self._queue
        return StreamStats(
            queued=len(queue),
            high_water=queue.high_water,
            coalesced_quotes=queue.coalesced_quotes,
            coalesced_depth=queue.coalesced_depth,
            pauses=self._pauses,
            paused_seconds=paused,
            held=self._held,
            resyncs=self._resyncs,
            recovered=self._recovered,
            duplicates=self._ledger.duplicates,
            stale=self._ledger.stale,
        )
