"""The blocking realtime stream: both hubs in one object, kept alive by the core's stream machine.

Each hub gets a driver thread, started on its first subscription, that moves bytes between a
socket and its ``StreamMachine`` and does what the machine asks (open or close a socket, fetch a
token). Only that thread touches the hub's socket; other threads change the machine under its lock
and wake the driver. Events go to callbacks (on the driver thread, one at a time, so they must be
quick) and into a bounded queue read with ``for event in stream``: quotes and depth are coalesced
when the reader falls behind, user events and market trades are never dropped — when the queue
is full of them, reading from the network pauses until the reader catches up.
"""

from __future__ import annotations

import contextlib
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Final, Self

from tradeforge_proto.core.book import OrderBook
from tradeforge_proto.core.errors import LocalProtocolError
from tradeforge_proto.core.events import DepthReceived, StreamEvent
from tradeforge_proto.core.models import AccountId, ContractId
from tradeforge_proto.core.subscriptions import Subscription
from tradeforge_proto.providers.topstepx.hubs import hubs_for
from tradeforge_proto.realtime.machine import (
    FEED_SIZE,
    CloseConnection,
    FetchToken,
    OpenConnection,
    StreamConfig,
    StreamMachine,
    StreamState,
    hub_for,
)
from tradeforge_proto.realtime.queue import EventQueue, QueueOverflow

from .client import TradingClient
from .net import default_ssl_context, wait_readable

READ_SIZE: Final = 65_536
MAX_WAIT: Final = 0.5  # longest single wait of a driver, in seconds
JOIN_TIMEOUT: Final = 5.0  # how long ``close`` waits for each driver thread
Callback = Callable[[StreamEvent], object]


def _close(sock: socket.socket | None) -> None:
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.close()


class _HubDriver:
    """Moves one hub's bytes and carries out its machine's actions, on its own thread."""

    def __init__(self, stream: TradingStream, machine: StreamMachine) -> None:
        self.stream = stream
        self.machine = machine
        self.socket: socket.socket | None = None  # touched by the driver thread only
        self.lock = threading.RLock()  # guards the machine
        self.thread: threading.Thread | None = None
        self.started = False
        self._wake_in: socket.socket | None = None
        self._wake_out: socket.socket | None = None

    def poke(self) -> None:
        """Something changed (a subscription): the driver looks again now."""
        wake = self._wake_out
        if wake is not None:
            with contextlib.suppress(OSError):  # full: a wake-up is already pending; or closed
                wake.send(b"\0")

    def start(self) -> None:
        """Start the driver thread (the stream joins it in ``close``)."""
        self._wake_in, self._wake_out = socket.socketpair()
        self._wake_out.setblocking(False)
        self.thread = threading.Thread(
            target=self.run, name=f"tradeforge-{self.machine.hub.name}-hub", daemon=True
        )
        self.thread.start()

    def flush(self) -> None:
        """Write whatever the machine has queued for the socket."""
        with self.lock:
            data = self.machine.data_to_send()
        if data and self.socket is not None:
            try:
                self.socket.settimeout(self.machine.config.server_timeout)
                self.socket.sendall(data)
            except OSError as exc:
                self._lost(exc)

    def _lost(self, error: BaseException | None) -> None:
        socket_, self.socket = self.socket, None
        _close(socket_)
        with self.lock:
            self.machine.connection_lost(time.time(), error)

    def _deliver(self) -> None:
        with self.lock:
            events = self.machine.events()
        self.stream._deliver(events)

    def _stopped(self) -> bool:
        with self.lock:
            return self.machine.state is StreamState.STOPPED

    def run(self) -> None:
        try:
            while not self._stopped():
                self._act()
                self.flush()
                self._deliver()
                self._wait_for_input()
                with self.lock:
                    self.machine.handle_timer(time.time())
            self._act()
            self._deliver()
        except BaseException as exc:  # surfaces to the reader and to close()
            self.stream._failed(exc)
        finally:
            socket_, self.socket = self.socket, None
            _close(socket_)
            wake_out, self._wake_out = self._wake_out, None
            _close(wake_out)
            _close(self._wake_in)

    def _wait_for_input(self) -> None:
        with self.lock:
            deadline = self.machine.next_deadline()
        timeout = MAX_WAIT if deadline is None else max(0.0, min(MAX_WAIT, deadline - time.time()))
        self.stream._room_for_events(timeout)
        wake, sock = self._wake_in, self.socket
        assert wake is not None
        ready: list[socket.socket]
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            ready = [sock]  # decrypted bytes already waiting: nothing to wait for
        else:
            ready = wait_readable([wake] if sock is None else [wake, sock], timeout)
        if wake in ready:
            with contextlib.suppress(OSError):
                wake.recv(READ_SIZE)
        if sock is None or sock not in ready:
            return
        try:
            sock.settimeout(MAX_WAIT)  # only part of a TLS record may have arrived yet
            data = sock.recv(READ_SIZE)
        except (TimeoutError, ssl.SSLWantReadError):
            return
        except OSError as exc:
            self._lost(exc)
            return
        if data:
            self._feed(data)
        else:
            self._lost(None)

    def _feed(self, data: bytes) -> None:
        """Give the machine a read slice by slice, handing each slice's events on at once."""
        last = len(data) - FEED_SIZE
        for start in range(0, len(data), FEED_SIZE):
            with self.lock:
                self.machine.receive_data(data[start : start + FEED_SIZE], time.time())
            if start < last:  # the run loop hands on the last slice's events
                self._deliver()
                time.sleep(0)  # lets the reader thread take the interpreter

    def _act(self) -> None:
        with self.lock:
            actions = self.machine.actions()
        for action in actions:
            if isinstance(action, FetchToken):
                self._fetch_token(action.fresh)
            elif isinstance(action, OpenConnection):
                self._open(action)
            elif isinstance(action, CloseConnection):
                self.flush()
                socket_, self.socket = self.socket, None
                _close(socket_)

    def _fetch_token(self, fresh: bool) -> None:
        client = self.stream.client
        try:
            token = client.fresh_token(force=fresh)
        except Exception as exc:  # every failure goes back to the machine
            with self.lock:
                self.machine.token_failed(exc, time.time())
            return
        with self.lock:
            self.machine.token_received(token, time.time(), expires_at=client.token_expires_at)

    def _open(self, action: OpenConnection) -> None:
        timeout = self.machine.config.handshake_timeout
        deadline = time.monotonic() + timeout
        sock: socket.socket | None = None
        try:
            sock = socket.create_connection((action.host, action.port), timeout=timeout)
            if action.tls:
                sock.settimeout(max(0.001, deadline - time.monotonic()))
                sock = self.stream.ssl_context.wrap_socket(sock, server_hostname=action.host)
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            _close(sock)
            with self.lock:
                self.machine.connection_failed(exc, time.time())
            return
        with self.lock:
            if self.machine.state is not StreamState.CONNECTING:
                _close(sock)  # stopped meanwhile
                return
            self.socket = sock
            self.machine.connection_made(time.time())


class TradingStream:
    """Market data and user events of one login from both hubs, reconnecting by itself.

    ``with client.stream() as stream:`` then subscribe at any time and read with
    ``for event in stream``, ``events(timeout)`` or ``get(timeout)`` (or register callbacks with
    ``on``). Hubs connect on their first subscription; ``close`` stops them.
    """

    def __init__(
        self,
        client: TradingClient,
        *,
        config: StreamConfig | None = None,
        max_events: int = 10_000,
        books: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.client = client
        env = client.provider.environment
        user, market = hubs_for(env.user_hub_url, env.market_hub_url)
        rng = rng or random.Random()
        self._drivers = {
            hub.name: _HubDriver(self, StreamMachine(hub, config=config, rng=rng))
            for hub in (user, market)
        }
        self._hubs = (user, market)
        self.queue = EventQueue(max_events=max_events)
        self._changed = threading.Condition()  # guards the queue and the flags below
        self.lock = threading.RLock()  # held while events are delivered (and books updated)
        self._callbacks: list[Callback] = []
        self._books: dict[ContractId, OrderBook] | None = {} if books else None
        self.ssl_context = ssl_context or default_ssl_context()
        self._closed = False  # no more subscriptions
        self._ended = False  # drivers finished: readers stop once the queue is empty
        self._error: BaseException | None = None  # a driver thread failed with it
        self._error_raised = False
        self.callback_errors = 0
        self.overflowed = 0
        # Room kept free for what one read can carry, so events that may not be dropped fit.
        self._reserve = min(max_events // 2, 4096)

    # --- lifecycle ---

    def __enter__(self) -> Self:
        for driver in self._drivers.values():
            if driver.machine.desired:
                self._start(driver)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None:
            with self._changed:
                self._error_raised = True  # the block's own exception is the one to see
        self.close()

    def close(self) -> None:
        """Stop both hubs: close frames sent, sockets closed, driver threads joined.

        Raises the error of a driver thread that failed, unless a reader already got it.
        """
        drivers = self._drivers.values()
        if any(d.thread is threading.current_thread() for d in drivers):
            raise LocalProtocolError("close the stream from its owner's thread, not a callback")
        with self._changed:
            if self._closed:
                return
            self._closed = True
            self._changed.notify_all()  # a driver waiting for room stops waiting
        for driver in drivers:
            with driver.lock:
                if driver.machine.state is not StreamState.STOPPED:
                    driver.machine.stop(time.time())
            driver.poke()
        for driver in drivers:
            if driver.thread is not None:
                driver.thread.join(JOIN_TIMEOUT)
            else:  # never started: no socket, only the final events
                driver._act()
                driver._deliver()
        with self._changed:
            self._ended = True
            self._changed.notify_all()
            error, raised = self._error, self._error_raised
            self._error_raised = True
        if error is not None and not raised:
            raise error

    def _failed(self, error: BaseException) -> None:
        """A driver thread failed: readers get ``error`` once the queue is empty."""
        with self._changed:
            if self._error is None:
                self._error = error
            self._ended = True
            self._changed.notify_all()

    def _start(self, driver: _HubDriver) -> None:
        with driver.lock:
            if driver.started:
                return
            driver.started = True
            driver.machine.start(time.time())
        driver.start()

    # --- subscriptions ---

    def subscribe(self, subscription: Subscription) -> None:
        """Want one subscription; sent now if connected, else on (re)connection."""
        if self._closed:
            raise LocalProtocolError("the stream is closed")
        driver = self._drivers[hub_for(self._hubs, subscription).name]
        with driver.lock:
            driver.machine.subscribe(subscription, time.time())
        self._start(driver)
        driver.poke()

    def unsubscribe(self, subscription: Subscription) -> None:
        """No longer want one subscription."""
        driver = self._drivers[hub_for(self._hubs, subscription).name]
        with driver.lock:
            driver.machine.unsubscribe(subscription, time.time())
        driver.poke()

    def subscribe_market(
        self,
        contract_id: ContractId,
        *,
        quotes: bool = True,
        trades: bool = True,
        depth: bool = False,
    ) -> None:
        """Quotes, trade prints and/or depth of a contract."""
        for sub in Subscription.market(contract_id, quotes=quotes, trades=trades, depth=depth):
            self.subscribe(sub)

    def unsubscribe_market(
        self,
        contract_id: ContractId,
        *,
        quotes: bool = True,
        trades: bool = True,
        depth: bool = True,
    ) -> None:
        """Stop market data of a contract."""
        for sub in Subscription.market(contract_id, quotes=quotes, trades=trades, depth=depth):
            self.unsubscribe(sub)

    def subscribe_user(
        self,
        account_id: AccountId,
        *,
        accounts: bool = True,
        orders: bool = True,
        positions: bool = True,
        trades: bool = True,
    ) -> None:
        """Account, order, position and fill events of an account."""
        subs = Subscription.user(
            account_id, accounts=accounts, orders=orders, positions=positions, fills=trades
        )
        for sub in subs:
            self.subscribe(sub)

    def unsubscribe_user(self, account_id: AccountId) -> None:
        """Stop user events of an account (the all-accounts channel stays)."""
        for sub in Subscription.user(account_id, accounts=False):
            self.unsubscribe(sub)

    @property
    def subscriptions(self) -> tuple[Subscription, ...]:
        """Every desired subscription."""
        subs: list[Subscription] = []
        for driver in self._drivers.values():
            with driver.lock:
                subs.extend(driver.machine.desired)
        return tuple(subs)

    def state(self, hub: str) -> StreamState:
        """The state of one hub's connection ("user" or "market")."""
        return self._drivers[hub].machine.state

    @property
    def config(self) -> StreamConfig:
        """Keep-alive, timeouts and reconnect backoff, the same for both hubs."""
        return next(iter(self._drivers.values())).machine.config

    # --- events ---

    def on(self, callback: Callback) -> None:
        """Call ``callback(event)`` for every event, on a driver thread: keep it quick.

        Callbacks run one at a time under ``stream.lock``; the final events of a hub that never
        started are delivered by ``close`` on its caller's thread.
        """
        self._callbacks.append(callback)

    def book(self, contract_id: ContractId) -> OrderBook | None:
        """The live order book of a contract (with ``books=True`` and depth subscribed).

        Driver threads update it under ``stream.lock``: hold that lock to read it consistently
        from another thread (callbacks already run under it).
        """
        return None if self._books is None else self._books.get(contract_id)

    def _deliver(self, events: list[StreamEvent]) -> None:
        with self.lock:
            for event in events:
                if self._books is not None and isinstance(event, DepthReceived):
                    book = self._books.get(event.contract_id)
                    if book is None:
                        book = self._books[event.contract_id] = OrderBook(event.contract_id)
                    book.apply_all(event.updates)
                for callback in self._callbacks:
                    try:
                        callback(event)
                    except Exception:  # a user callback must not stop the stream
                        self.callback_errors += 1
                with self._changed:
                    try:
                        self.queue.put(event)
                    except QueueOverflow:
                        # Reading pauses well before this (see _room_for_events); counted.
                        self.overflowed += 1
            if events:
                with self._changed:
                    self._changed.notify_all()

    def _room_for_events(self, timeout: float) -> None:
        """Pause reading while the queue has no room for events that cannot be dropped."""
        with self._changed:
            self._changed.wait_for(
                lambda: self.queue.space >= self._reserve or self._closed, timeout
            )

    def get(self, timeout: float | None = None) -> StreamEvent | None:
        """The next event, waiting at most ``timeout`` seconds (None: none came, or closed).

        Raises the error of a driver thread that failed, once the events before it were read.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while True:
                event = self.queue.get()
                if event is not None:
                    self._changed.notify_all()  # room for the drivers again
                    return event
                if self._ended:
                    if self._error is not None and not self._error_raised:
                        self._error_raised = True
                        raise self._error
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._changed.wait(remaining)

    def events(self, timeout: float | None = None) -> Iterator[StreamEvent]:
        """Events as they arrive, until ``timeout`` s pass without one or the stream ends."""
        while (event := self.get(timeout)) is not None:
            yield event

    def __iter__(self) -> Iterator[StreamEvent]:
        return self.events()
