"""The blocking realtime stream: the core's ``StreamSession`` stepped by one thread per hub.

Everything about the hubs (routing, keep-alive, reconnects, back-pressure, gap recovery, books,
the queue) is the session's; a driver thread only opens and closes its hub's socket, writes what
the session produced, reads while the session allows, sleeps until its deadline, and runs the
REST reads it asks for through the client. Only a hub's driver touches its socket; every call
into the session holds ``stream.lock``. Events go to callbacks (on a driver thread, under that
lock: keep them quick) and to the reader of ``for event in stream``.
"""

from __future__ import annotations

import contextlib
import logging
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Self

from tradeforge_proto.core.book import OrderBook
from tradeforge_proto.core.errors import LocalProtocolError, SubscriptionTimeout
from tradeforge_proto.core.events import StreamEvent
from tradeforge_proto.core.models import AccountId, ContractId
from tradeforge_proto.core.subscriptions import Subscription
from tradeforge_proto.realtime import (
    CLOSE_TIMEOUT,
    MAX_WAIT,
    READ_SIZE,
    SUBSCRIBE_TIMEOUT,
    CloseConnection,
    EventQueue,
    FetchToken,
    HubLink,
    OpenConnection,
    RunOperation,
    StreamConfig,
    StreamSession,
    StreamState,
    StreamStats,
)
from tradeforge_proto.realtime.reading import ReadWindow

from .client import TradingClient
from .net import connect_unless, default_ssl_context, wait_readable

Callback = Callable[[StreamEvent], object]
log = logging.getLogger("tradeforge.stream")


def _close(sock: socket.socket | None) -> None:
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.close()


class _Driver:
    """One hub's thread: its socket, and the actions of its link."""

    def __init__(self, stream: TradingStream, link: HubLink) -> None:
        self.stream = stream
        self.link = link
        self.socket: socket.socket | None = None
        self.thread: threading.Thread | None = None
        self._wake_in, self._wake_out = socket.socketpair()
        self._wake_out.setblocking(False)

    def poke(self) -> None:
        """Look at the session again now (a subscription, room in the queue, a REST result)."""
        with contextlib.suppress(OSError):  # full: a wake-up is pending already; or closed
            self._wake_out.send(b"\0")

    def start(self) -> None:
        self.thread = threading.Thread(
            target=self.run, name=f"tradeforge-{self.link.name}-hub", daemon=True
        )
        self.thread.start()

    def run(self) -> None:
        link, lock = self.link, self.stream.lock
        try:
            while not link.finished:
                self._step()
                with lock:  # callbacks run before the reader may take the events
                    fed = link.feed(time.time())
                    self.stream._deliver()
                if fed:
                    time.sleep(0)  # the reader takes this slice's events
                    continue
                self._wait()
                with lock:
                    link.handle_timer(time.time())
                    self.stream._deliver()
            self._step()
        except BaseException as exc:  # surfaces to the reader and to close()
            self.stream._failed(exc)
        finally:
            self._close_socket()
            _close(self._wake_out)
            _close(self._wake_in)

    def _step(self) -> None:
        with self.stream.lock:
            actions = self.link.actions()
        for action in actions:
            if isinstance(action, OpenConnection):
                self._open(action)
            elif isinstance(action, CloseConnection):
                self._flush()
                self._close_socket()
            else:  # a token or a REST read: on a thread of its own, the hub's timers go on
                self.stream._spawn(self, action)
        self._flush()
        self.stream._deliver()

    def _wait(self) -> None:
        link, lock, sock = self.link, self.stream.lock, self.socket
        with lock:
            now = time.time()
            deadline = link.next_deadline()
            reading = link.check_reading(now) and sock is not None
        timeout = MAX_WAIT if deadline is None else max(0.0, min(MAX_WAIT, deadline - now))
        ready: list[socket.socket]
        if reading and isinstance(sock, ssl.SSLSocket) and sock.pending():
            ready = [sock]  # decrypted bytes already waiting
        else:
            watched = [self._wake_in, sock] if reading and sock is not None else [self._wake_in]
            ready = wait_readable(watched, timeout)
        if self._wake_in in ready:
            with contextlib.suppress(OSError):
                self._wake_in.recv(READ_SIZE)
        if not reading or sock is None or sock not in ready:
            return
        try:
            sock.settimeout(MAX_WAIT)  # only part of a TLS record may have arrived yet
            data = sock.recv(READ_SIZE)
        except (TimeoutError, ssl.SSLWantReadError):
            return
        except OSError as exc:
            self._close_socket()
            with lock:
                link.connection_lost(time.time(), exc)
                self.stream._deliver()
            return
        if not data:
            self._close_socket()
        with lock:
            link.receive_data(data, time.time())
            self.stream._deliver()

    def _flush(self) -> None:
        with self.stream.lock:
            data = self.link.data_to_send()
        sock = self.socket
        if data and sock is not None:
            try:
                sock.settimeout(self.link.machine.config.server_timeout)
                sock.sendall(data)
            except OSError as exc:
                self._close_socket()
                with self.stream.lock:
                    self.link.connection_lost(time.time(), exc)
                    self.stream._deliver()

    def _close_socket(self) -> None:
        sock, self.socket = self.socket, None
        _close(sock)

    def abort(self) -> None:
        """Cut the socket so a blocked write or read returns (closing took too long)."""
        sock = self.socket
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _open(self, action: OpenConnection) -> None:
        lock = self.stream.lock
        timeout = self.link.machine.config.handshake_timeout
        try:
            sock = connect_unless(
                action.host,
                action.port,
                self.stream.ssl_context if action.tls else None,
                timeout=timeout,
                wake=self._wake_in,
                unwanted=self._gone,
            )
        except (OSError, ssl.SSLError) as exc:
            with lock:
                self.link.connection_failed(exc, time.time())
                self.stream._deliver()
            return
        with lock:
            made = sock is not None and self.link.connection_made(time.time())
            self.stream._deliver()
        if made:
            self.socket = sock
        else:
            _close(sock)  # no longer wanted (closing, held)

    def _gone(self) -> bool:
        with self.stream.lock:
            return self.link.machine.state is not StreamState.CONNECTING

    def request(self, action: FetchToken | RunOperation) -> None:
        """Fetch a token or run a REST read through the client, and report it to the link."""
        client, lock = self.stream.client, self.stream.lock
        try:
            if isinstance(action, FetchToken):
                value: object = client.fresh_token(force=action.fresh)
            else:
                value = client.execute(action.operation)
        except Exception as exc:  # every failure goes back to the session
            with lock:
                self.link.request_failed(action, exc, time.time())
        except BaseException as exc:  # not a failure of the request: it surfaces to the reader
            self.stream._failed(exc)
            return
        else:
            expires = client.token_expires_at
            with lock:
                self.link.request_done(action, value, time.time(), token_expires_at=expires)
        self.poke()


class TradingStream:
    """Market data and user events of one login from every hub, reconnecting by itself.

    ``with client.stream() as stream:`` then subscribe (each call returns once the hub
    acknowledged) and read with ``for event in stream``, ``events(idle_timeout, duration=...)``
    or ``get(timeout)`` (or callbacks, ``on``). Hubs connect on their first subscription;
    ``close`` stops them.
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
        self.session = StreamSession(
            client.provider, config=config, max_events=max_events, books=books, rng=rng
        )
        self.lock = threading.RLock()  # guards the session; held while callbacks run
        self._changed = threading.Condition(self.lock)  # events entered the queue
        self._drivers = {name: _Driver(self, link) for name, link in self.session.links.items()}
        self.ssl_context = ssl_context or default_ssl_context()
        self._requests: list[threading.Thread] = []
        self._seen = 0
        self._callbacks: list[Callback] = []
        self._closed = False
        self._error: BaseException | None = None  # a driver thread failed with it
        self._error_raised = False
        self.callback_errors = 0

    # --- lifecycle ---

    def __enter__(self) -> Self:
        with self.lock:
            for driver in self._drivers.values():
                if driver.link.machine.desired:
                    self._start(driver)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None:
            with self.lock:
                self._error_raised = True  # the block's own exception is the one to see
        self.close()

    def close(self) -> None:
        """Stop every hub: close frames sent, sockets closed, threads joined (within 2 s each).

        Raises the error of a driver thread that failed, unless a reader already got it.
        """
        if self._on_driver_thread():
            raise LocalProtocolError("close the stream from its owner's thread, not a callback")
        with self.lock:
            if self._closed:
                return
            self._closed = True
            self.session.stop(time.time())
        threads = []
        for driver in self._drivers.values():
            driver.poke()
            if driver.thread is not None:
                threads.append((driver, driver.thread))
        for driver, thread in threads:
            thread.join(CLOSE_TIMEOUT)
            if thread.is_alive():
                driver.abort()
                thread.join(CLOSE_TIMEOUT)
        for thread in self._requests:
            thread.join(CLOSE_TIMEOUT)
        self._deliver()  # final events of hubs that never started
        with self.lock:
            self._changed.notify_all()
            error, raised = self._error, self._error_raised
            self._error_raised = True
        if error is not None and not raised:
            raise error

    def _on_driver_thread(self) -> bool:
        return any(d.thread is threading.current_thread() for d in self._drivers.values())

    def _failed(self, error: BaseException) -> None:
        """A driver thread failed: the hubs stop, readers get ``error`` once the queue is empty."""
        with self.lock:
            if self._error is None:
                self._error = error
            self.session.stop(time.time())
            self._changed.notify_all()
        for driver in self._drivers.values():
            driver.poke()

    def _start(self, driver: _Driver) -> None:
        if driver.thread is None and not self._closed:
            driver.link.start(time.time())
            driver.start()

    def _spawn(self, driver: _Driver, action: FetchToken | RunOperation) -> None:
        thread = threading.Thread(
            target=driver.request, args=(action,), name="tradeforge-request", daemon=True
        )
        with self.lock:
            self._requests = [t for t in self._requests if t.is_alive()]
            self._requests.append(thread)
        thread.start()

    # --- subscriptions ---

    def subscribe(
        self, subscription: Subscription, *, wait: bool = True, timeout: float = SUBSCRIBE_TIMEOUT
    ) -> None:
        """Want one subscription; by default return once acknowledged (see ``subscribe_all``)."""
        self.subscribe_all((subscription,), wait=wait, timeout=timeout)

    def subscribe_all(
        self,
        subscriptions: Iterable[Subscription],
        *,
        wait: bool = True,
        timeout: float = SUBSCRIBE_TIMEOUT,
    ) -> None:
        """Want several subscriptions, sent at once; with ``wait``, return once all are live.

        Raises SubscriptionFailed when one is refused (an unknown contract) or the stream stops,
        SubscriptionTimeout when not acknowledged within ``timeout`` s (it stays wanted).
        """
        if wait and self._on_driver_thread():
            raise LocalProtocolError("subscribe with wait=False from a callback")
        subs = tuple(dict.fromkeys(subscriptions))
        with self.lock:
            for sub in subs:
                driver = self._drivers[self.session.subscribe(sub, time.time()).name]
                self._start(driver)
                driver.poke()
            if wait:
                self._settled(subs, timeout)

    def _settled(self, subs: tuple[Subscription, ...], timeout: float) -> None:
        end = time.monotonic() + timeout
        pending = subs
        self.session.begin_wait(subs)  # their hubs read on past a full queue meanwhile
        try:
            while True:
                pending = tuple(s for s in pending if self.session.pending(s))
                remaining = end - time.monotonic()
                if not pending:
                    return
                if remaining <= 0:
                    raise SubscriptionTimeout(pending[0], timeout)
                self._changed.wait(remaining)
        finally:
            self.session.end_wait(subs)

    def unsubscribe(self, subscription: Subscription) -> None:
        """No longer want one subscription."""
        with self.lock:
            self._drivers[self.session.unsubscribe(subscription, time.time()).name].poke()

    def subscribe_market(
        self,
        contract_id: ContractId,
        *,
        quotes: bool = False,
        trades: bool = False,
        depth: bool = False,
        wait: bool = True,
    ) -> None:
        """Exactly what is asked of a contract (quotes, trade prints, depth), live on return."""
        subs = Subscription.market(contract_id, quotes=quotes, trades=trades, depth=depth)
        self.subscribe_all(subs, wait=wait)

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
        fills: bool = True,
        wait: bool = True,
    ) -> None:
        """Account, order, position and fill events of an account, live when this returns."""
        subs = Subscription.user(
            account_id, accounts=accounts, orders=orders, positions=positions, fills=fills
        )
        self.subscribe_all(subs, wait=wait)

    def unsubscribe_user(self, account_id: AccountId) -> None:
        """Stop user events of an account (the all-accounts channel stays)."""
        for sub in Subscription.user(account_id, accounts=False):
            self.unsubscribe(sub)

    @property
    def subscriptions(self) -> tuple[Subscription, ...]:
        """Every wanted subscription."""
        with self.lock:
            return self.session.subscriptions

    def state(self, hub: str) -> StreamState:
        """The state of one hub's connection ("user" or "market")."""
        with self.lock:
            return self.session.links[hub].machine.state

    @property
    def config(self) -> StreamConfig:
        """Keep-alive, timeouts, reconnect backoff and recovery, the same for every hub."""
        return self.session.config

    # --- events ---

    def on(self, callback: Callback) -> None:
        """Call ``callback(event)`` for every event as it is queued, on a driver thread.

        Callbacks run one at a time under ``stream.lock``, in the same hold of the lock as the
        decoding that queued the event, so a callback sees an event before the reader can get
        it (those a REST recovery brings are handed on by the driver it wakes). Keep them quick.
        """
        with self.lock:
            self.session.track_fresh()
            self._callbacks.append(callback)

    @property
    def queue(self) -> EventQueue:
        """The bounded queue between the hubs and the reader (its coalescing counters)."""
        return self.session.queue

    @property
    def stats(self) -> StreamStats:
        """What was coalesced, paused, closed on purpose and recovered so far."""
        with self.lock:
            return self.session.stats(time.time())

    def book(self, contract_id: ContractId) -> OrderBook | None:
        """The live order book of a contract (with ``books=True`` and depth subscribed).

        Drivers update it under ``stream.lock``: hold that lock to read it from another thread.
        """
        return self.session.book(contract_id)

    def _deliver(self) -> None:
        with self.lock:
            for event in self.session.take_fresh():
                for callback in self._callbacks:
                    try:
                        callback(event)
                    except Exception:  # a user callback must not stop the stream
                        self.callback_errors += 1
                        log.exception(
                            "stream callback %r failed on %s", callback, type(event).__name__
                        )
            if self.session.enqueued != self._seen:
                self._seen = self.session.enqueued
                self._changed.notify_all()

    def get(self, timeout: float | None = None) -> StreamEvent | None:
        """The next event, waiting at most ``timeout`` seconds (None: none came, or closed).

        Raises the error of a driver thread that failed, once the events before it were read.
        """
        end = None if timeout is None else time.monotonic() + timeout
        session = self.session
        with self.lock:
            while True:
                event = session.get()
                if event is not None:
                    if session.paused:
                        for driver in self._drivers.values():
                            driver.poke()
                    return event
                if session.ended or self._error is not None:
                    if self._error is not None and not self._error_raised:
                        self._error_raised = True
                        raise self._error
                    return None
                remaining = None if end is None else end - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._changed.wait(remaining)

    def events(
        self,
        idle_timeout: float | None = None,
        *,
        duration: float | None = None,
        timeout: float | None = None,
    ) -> Iterator[StreamEvent]:
        """Events as they arrive, until the stream ends, ``idle_timeout`` seconds pass without
        an event, or ``duration`` seconds pass in all (a live feed never falls idle).
        ``timeout`` is the former name of ``idle_timeout``, deprecated."""
        now = time.monotonic()
        window = ReadWindow.start(idle_timeout, duration, now, timeout=timeout)
        timed = window.timed
        while not window.over(now):
            event = self.get(window.wait(now))
            if event is None:
                return
            yield event
            if timed:
                now = time.monotonic()

    def __iter__(self) -> Iterator[StreamEvent]:
        return self.events()
