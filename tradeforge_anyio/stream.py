"""The async realtime stream: the core's ``StreamSession`` stepped by one task per hub.

Everything about the hubs (routing, keep-alive, reconnects, back-pressure, gap recovery, books,
the queue) is the session's; a driver task only opens and closes its hub's socket, writes what
the session produced, reads while the session allows, sleeps until its deadline, and runs the
REST reads it asks for through the client. Events go to callbacks (inline: keep them quick) and
to the reader of ``async for``.
"""

from __future__ import annotations

import logging
import random
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterable
from types import TracebackType
from typing import Final, Self

import anyio
import anyio.abc
import anyio.lowlevel

from tradeforge_proto.core.book import OrderBook
from tradeforge_proto.core.errors import LocalProtocolError, SubscriptionTimeout, single_error
from tradeforge_proto.core.events import StreamEvent
from tradeforge_proto.core.interfaces import RealTimeStream
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
from .net import default_ssl_context

Callback = Callable[[StreamEvent], object]
log = logging.getLogger("tradeforge.stream")
_SOCKET_ERRORS: Final = (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError)


class _Driver:
    """One hub's task: its socket, and the actions of its link."""

    def __init__(self, stream: TradingStream, link: HubLink) -> None:
        self.stream = stream
        self.link = link
        self.socket: anyio.abc.ByteStream | None = None
        self.wake = anyio.Event()
        self.running = False
        self.done = anyio.Event()
        self._reading: anyio.CancelScope | None = None
        self._connecting: anyio.CancelScope | None = None

    def poke(self) -> None:
        """Look at the session again now (a subscription, room in the queue, a REST result)."""
        self.wake.set()
        if self._reading is not None:
            self._reading.cancel()  # a read not yet taken is left in the socket
        if self._connecting is not None and self.link.finished:
            self._connecting.cancel()  # closing: a connection under way is no longer wanted

    async def run(self) -> None:
        link = self.link
        try:
            while not link.finished:
                await self._step()
                if link.feed(time.time()):
                    self.stream._deliver()
                    await anyio.lowlevel.checkpoint()  # the reader takes this slice's events
                    continue
                await self._wait()
                link.handle_timer(time.time())
                self.stream._deliver()
            await self._step()
        finally:
            await self._close_socket()
            self.done.set()

    async def _step(self) -> None:
        for action in self.link.actions():
            if isinstance(action, OpenConnection):
                await self._open(action)
                self.stream._deliver()
            elif isinstance(action, CloseConnection):
                await self._flush()
                await self._close_socket()
            else:  # a token or a REST read: in the background, the hub's timers go on
                self.stream._task_group_now().start_soon(self._request, action)
        await self._flush()
        self.stream._deliver()

    async def _wait(self) -> None:
        link = self.link
        now = time.time()
        deadline = link.next_deadline()
        timeout = MAX_WAIT if deadline is None else max(0.0, min(MAX_WAIT, deadline - now))
        if not link.check_reading(now) or self.socket is None:
            with anyio.move_on_after(timeout):
                await self.wake.wait()
            self.wake = anyio.Event()
            return
        data: bytes | None = None
        with anyio.move_on_after(timeout) as self._reading:  # a read taken is always fed in full
            try:
                data = await self.socket.receive(READ_SIZE)
            except (anyio.EndOfStream, *_SOCKET_ERRORS):
                data = b""
        self._reading = None
        if data is not None:
            if not data:
                await self._close_socket()
            link.receive_data(data, time.time())
            self.stream._deliver()

    async def _flush(self) -> None:
        data = self.link.data_to_send()
        if data and self.socket is not None:
            try:
                await self.socket.send(data)
            except _SOCKET_ERRORS as exc:
                await self._close_socket()
                self.link.connection_lost(time.time(), exc)
                self.stream._deliver()

    async def _close_socket(self) -> None:
        socket, self.socket = self.socket, None
        if socket is not None:
            await anyio.aclose_forcefully(socket)

    async def _open(self, action: OpenConnection) -> None:
        link = self.link
        socket: anyio.abc.ByteStream | None = None
        try:
            with (
                anyio.CancelScope() as self._connecting,
                anyio.fail_after(link.machine.config.handshake_timeout),
            ):
                if action.tls:
                    socket = await anyio.connect_tcp(
                        action.host,
                        action.port,
                        ssl_context=self.stream.ssl_context,
                        tls_hostname=action.host,
                    )
                else:
                    socket = await anyio.connect_tcp(action.host, action.port)
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            link.connection_failed(exc, time.time())
            return
        finally:
            self._connecting = None
        if socket is None:
            link.connection_failed(OSError("connecting was given up"), time.time())
        elif link.connection_made(time.time()):
            self.socket = socket
        else:
            await anyio.aclose_forcefully(socket)  # no longer wanted (closing, held)

    async def _request(self, action: FetchToken | RunOperation) -> None:
        """Fetch a token or run a REST read through the client, and report it to the link."""
        client = self.stream.client
        try:
            if isinstance(action, FetchToken):
                value: object = await client.fresh_token(force=action.fresh)
            else:
                value = await client.execute(action.operation)
        except Exception as exc:  # every failure goes back to the session
            self.link.request_failed(action, exc, time.time())
        else:
            expires = client.token_expires_at
            self.link.request_done(action, value, time.time(), token_expires_at=expires)
        self.stream._deliver()
        self.poke()


class TradingStream(RealTimeStream):
    """Market data and user events of one login from every hub, reconnecting by itself.

    ``async with client.stream() as stream:`` then subscribe (each call returns once the hub
    acknowledged) and read with ``async for event in stream`` or callbacks (``on``).
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
        self._drivers = {name: _Driver(self, link) for name, link in self.session.links.items()}
        self.ssl_context = ssl_context or default_ssl_context()
        self._task_group: anyio.abc.TaskGroup | None = None
        self._progress = anyio.Event()  # set when events entered the queue
        self._seen = 0
        self._callbacks: list[Callback] = []
        self._closing = False
        self.callback_errors = 0

    # --- lifecycle ---

    async def __aenter__(self) -> Self:
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        for driver in self._drivers.values():
            if driver.link.machine.desired:
                self._start(driver)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        group = self._task_group
        assert group is not None
        try:
            await self.aclose()
        except BaseException as error:  # cancelled while closing: the tasks still end here
            group.cancel_scope.cancel()
            await group.__aexit__(type(error), error, error.__traceback__)
            raise
        try:
            return await group.__aexit__(exc_type, exc, tb)
        except BaseExceptionGroup as errors:
            sole = single_error(errors, anyio.get_cancelled_exc_class())
            if sole is None:
                raise
            raise sole from None  # what the block raised, not a group around it

    async def aclose(self) -> None:
        """Stop every hub: close frames sent, sockets closed, tasks ended (within 2 s)."""
        if self._closing:
            return
        self._closing = True
        self.session.stop(time.time())
        self._deliver()
        try:
            with anyio.move_on_after(CLOSE_TIMEOUT):
                for driver in self._drivers.values():
                    driver.poke()
                    if driver.running:
                        await driver.done.wait()
        finally:
            if self._task_group is not None:
                self._task_group.cancel_scope.cancel()  # what is left: a slow peer, REST reads
            self._wake_readers()

    def _task_group_now(self) -> anyio.abc.TaskGroup:
        if self._task_group is None:
            raise LocalProtocolError("use the stream in `async with`")
        return self._task_group

    def _start(self, driver: _Driver) -> None:
        if driver.running or self._task_group is None or self._closing:
            return
        driver.running = True
        driver.link.start(time.time())
        self._task_group.start_soon(driver.run)

    # --- subscriptions ---

    async def subscribe(
        self, subscription: Subscription, *, wait: bool = True, timeout: float = SUBSCRIBE_TIMEOUT
    ) -> None:
        """Want one subscription; by default return once acknowledged (see ``subscribe_all``)."""
        await self.subscribe_all((subscription,), wait=wait, timeout=timeout)

    async def subscribe_all(
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
        subs = tuple(dict.fromkeys(subscriptions))
        for sub in subs:
            driver = self._drivers[self.session.subscribe(sub, time.time()).name]
            self._start(driver)
            driver.poke()
        self._deliver()
        if wait:
            await self._settled(subs, timeout)

    async def _settled(self, subs: tuple[Subscription, ...], timeout: float) -> None:
        session = self.session
        pending = subs
        session.begin_wait(subs)  # their hubs read on past a full queue meanwhile
        try:
            with anyio.move_on_after(timeout):
                while True:
                    pending = tuple(s for s in pending if session.pending(s))
                    if not pending:
                        return
                    await self._progress.wait()
        finally:
            session.end_wait(subs)
        raise SubscriptionTimeout(pending[0], timeout)

    async def unsubscribe(self, subscription: Subscription) -> None:
        """No longer want one subscription."""
        self._drivers[self.session.unsubscribe(subscription, time.time()).name].poke()
        self._deliver()

    async def subscribe_market(
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
        await self.subscribe_all(subs, wait=wait)

    async def unsubscribe_market(
        self,
        contract_id: ContractId,
        *,
        quotes: bool = True,
        trades: bool = True,
        depth: bool = True,
    ) -> None:
        """Stop market data of a contract."""
        for sub in Subscription.market(contract_id, quotes=quotes, trades=trades, depth=depth):
            await self.unsubscribe(sub)

    async def subscribe_user(
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
        await self.subscribe_all(subs, wait=wait)

    async def unsubscribe_user(self, account_id: AccountId) -> None:
        """Stop user events of an account (the all-accounts channel stays)."""
        for sub in Subscription.user(account_id, accounts=False):
            await self.unsubscribe(sub)

    @property
    def subscriptions(self) -> tuple[Subscription, ...]:
        """Every wanted subscription."""
        return self.session.subscriptions

    def state(self, hub: str) -> StreamState:
        """The state of one hub's connection ("user" or "market")."""
        return self.session.links[hub].machine.state

    @property
    def config(self) -> StreamConfig:
        """Keep-alive, timeouts, reconnect backoff and recovery, the same for every hub."""
        return self.session.config

    # --- events ---

    def on(self, callback: Callback) -> None:
        """Call ``callback(event)`` for every event as it is queued, inline (keep it quick),
        always before the reader of ``async for`` can get that event."""
        self.session.track_fresh()
        self._callbacks.append(callback)

    @property
    def queue(self) -> EventQueue:
        """The bounded queue between the hubs and the reader (its coalescing counters)."""
        return self.session.queue

    @property
    def stats(self) -> StreamStats:
        """What was coalesced, paused, closed on purpose and recovered so far."""
        return self.session.stats(time.time())

    def book(self, contract_id: ContractId) -> OrderBook | None:
        """The live order book of a contract (with ``books=True`` and depth subscribed)."""
        return self.session.book(contract_id)

    def _deliver(self) -> None:
        """Run the callbacks on the events just queued, then wake the reader: called right after
        every session call that may queue events, with no await in between, so that a callback
        always sees an event before the reader can take it."""
        for event in self.session.take_fresh():
            for callback in self._callbacks:
                try:
                    callback(event)
                except Exception:  # a user callback must not stop the stream
                    self.callback_errors += 1
                    log.exception("stream callback %r failed on %s", callback, type(event).__name__)
        if self.session.enqueued != self._seen:
            self._seen = self.session.enqueued
            self._wake_readers()

    def _wake_readers(self) -> None:
        progress, self._progress = self._progress, anyio.Event()
        progress.set()

    async def get(self, timeout: float | None = None) -> StreamEvent | None:
        """The next event, waiting at most ``timeout`` seconds (None: none came, or it ended)."""
        if timeout is None:
            return await self._next()
        with anyio.move_on_after(timeout):
            return await self._next()
        return None

    async def _next(self) -> StreamEvent | None:
        session = self.session
        while True:
            event = session.get()
            if event is not None:
                if session.paused:
                    for driver in self._drivers.values():
                        driver.poke()
                return event
            if session.ended:
                return None
            await self._progress.wait()

    async def events(
        self,
        idle_timeout: float | None = None,
        *,
        duration: float | None = None,
        timeout: float | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """Events as they arrive, until the stream ends, ``idle_timeout`` seconds pass without
        an event, or ``duration`` seconds pass in all (a live feed never falls idle).
        ``timeout`` is the former name of ``idle_timeout``, deprecated."""
        now = anyio.current_time()
        window = ReadWindow.start(idle_timeout, duration, now, timeout=timeout)
        timed = window.timed
        while not window.over(now):
            event = await self.get(window.wait(now))
            if event is None:
                return
            yield event
            if timed:
                now = anyio.current_time()

    def __aiter__(self) -> AsyncIterator[StreamEvent]:
        return self.events()
