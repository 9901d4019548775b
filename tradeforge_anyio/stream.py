"""The async realtime stream: both hubs in one object, kept alive by the core's stream machine.

Each hub gets a driver task that moves bytes between a socket and its ``StreamMachine`` and does
what the machine asks (open or close a socket, fetch a token). Events go to callbacks (inline,
so they must be quick) and into a bounded queue read with ``async for``: quotes and depth are
coalesced when the reader falls behind, user events and market trades are never dropped — when
the queue is full of them, reading from the network pauses until the reader catches up.
"""

from __future__ import annotations

import random
import ssl
import time
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Self

import anyio
import anyio.abc
import anyio.lowlevel

from tradeforge_proto.core.book import OrderBook
from tradeforge_proto.core.errors import LocalProtocolError
from tradeforge_proto.core.events import DepthReceived, StreamEvent
from tradeforge_proto.core.interfaces import RealTimeStream
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
from .net import default_ssl_context

READ_SIZE = 65_536
Callback = Callable[[StreamEvent], object]


class _HubDriver:
    """Moves one hub's bytes and carries out its machine's actions."""

    def __init__(self, stream: TradingStream, machine: StreamMachine) -> None:
        self.stream = stream
        self.machine = machine
        self.socket: anyio.abc.ByteStream | None = None
        self.lock = anyio.Lock()
        self.wake = anyio.Event()
        self.started = False

    def poke(self) -> None:
        """Something changed (a subscription): the driver looks again now."""
        self.wake.set()

    async def flush(self) -> None:
        """Write whatever the machine has queued for the socket."""
        async with self.lock:
            data = self.machine.data_to_send()
            if data and self.socket is not None:
                try:
                    await self.socket.send(data)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
                    await self._lost(exc)

    async def _lost(self, error: BaseException | None) -> None:
        socket, self.socket = self.socket, None
        if socket is not None:
            await anyio.aclose_forcefully(socket)
        self.machine.connection_lost(time.time(), error)

    async def run(self) -> None:
        machine = self.machine
        while machine.state is not StreamState.STOPPED:
            await self._act()
            await self.flush()
            self.stream._deliver(machine.events())
            await self._wait_for_input()
            machine.handle_timer(time.time())
        await self._act()
        self.stream._deliver(machine.events())

    async def _wait_for_input(self) -> None:
        deadline = self.machine.next_deadline()
        timeout = 1.0 if deadline is None else max(0.0, min(1.0, deadline - time.time()))
        await self.stream._room_for_events(timeout)
        if self.socket is None:
            with anyio.move_on_after(timeout):
                await self.wake.wait()
            self.wake = anyio.Event()
            return
        data: bytes | None = None
        # Only the wait is bounded: a read taken off the socket is always fed in full.
        with anyio.move_on_after(timeout):
            try:
                data = await self.socket.receive(READ_SIZE)
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                data = b""
            except OSError as exc:
                await self._lost(exc)
                return
        if data:
            await self._feed(data)
        elif data is not None:
            await self._lost(None)

    async def _feed(self, data: bytes) -> None:
        """Give the machine a read slice by slice, handing each slice's events on at once."""
        machine = self.machine
        last = len(data) - FEED_SIZE
        for start in range(0, len(data), FEED_SIZE):
            machine.receive_data(data[start : start + FEED_SIZE], time.time())
            if start < last:  # the run loop hands on the last slice's events
                self.stream._deliver(machine.events())
                await anyio.lowlevel.checkpoint()

    async def _act(self) -> None:
        for action in self.machine.actions():
            if isinstance(action, FetchToken):
                await self._fetch_token(action.fresh)
            elif isinstance(action, OpenConnection):
                await self._open(action)
            elif isinstance(action, CloseConnection):
                await self.flush()
                socket, self.socket = self.socket, None
                if socket is not None:
                    await anyio.aclose_forcefully(socket)

    async def _fetch_token(self, fresh: bool) -> None:
        client = self.stream.client
        try:
            token = await client.fresh_token(force=fresh)
        except Exception as exc:  # every failure goes back to the machine
            self.machine.token_failed(exc, time.time())
            return
        self.machine.token_received(token, time.time(), expires_at=client.token_expires_at)

    async def _open(self, action: OpenConnection) -> None:
        try:
            with anyio.fail_after(self.machine.config.handshake_timeout):
                if action.tls:
                    self.socket = await anyio.connect_tcp(
                        action.host,
                        action.port,
                        ssl_context=self.stream.ssl_context,
                        tls_hostname=action.host,
                    )
                else:
                    self.socket = await anyio.connect_tcp(action.host, action.port)
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            self.machine.connection_failed(exc, time.time())
            return
        self.machine.connection_made(time.time())


class TradingStream(RealTimeStream):
    """Market data and user events of one login from both hubs, reconnecting by itself.

    ``async with client.stream() as stream:`` then subscribe at any time and read with
    ``async for event in stream`` (or register callbacks with ``on``).
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
        self._readable = anyio.Event()
        self._drained = anyio.Event()
        self._callbacks: list[Callback] = []
        self._books: dict[ContractId, OrderBook] | None = {} if books else None
        self.ssl_context = ssl_context or default_ssl_context()
        self._task_group: anyio.abc.TaskGroup | None = None
        self._closing = False
        self._closed = False
        self.callback_errors = 0
        self.overflowed = 0
        # Room kept free for what one read can carry, so events that may not be dropped fit.
        self._reserve = min(max_events // 2, 4096)

    # --- lifecycle ---

    async def __aenter__(self) -> Self:
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        for driver in self._drivers.values():
            if driver.machine.desired:
                self._start(driver)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        await self.aclose()
        assert self._task_group is not None
        return await self._task_group.__aexit__(exc_type, exc, tb)

    async def aclose(self) -> None:
        """Stop both hubs: close frames sent, sockets closed, drivers ended."""
        if self._closing:
            return
        self._closing = True
        for driver in self._drivers.values():
            if driver.machine.state is not StreamState.STOPPED:
                driver.machine.stop(time.time())
                await driver._act()
                await driver.flush()
                if driver.socket is not None:
                    await anyio.aclose_forcefully(driver.socket)
                    driver.socket = None
                self._deliver(driver.machine.events())
                driver.poke()
        # Readers stop only once every hub's last events (StreamStopped) are queued.
        self._closed = True
        self._readable.set()

    def _start(self, driver: _HubDriver) -> None:
        if driver.started or self._task_group is None:
            return
        driver.started = True
        driver.machine.start(time.time())
        self._task_group.start_soon(driver.run)

    # --- subscriptions ---

    async def subscribe(self, subscription: Subscription) -> None:
        """Want one subscription; sent now if connected, else on (re)connection."""
        if self._closing:
            raise LocalProtocolError("the stream is closed")
        driver = self._drivers[hub_for(self._hubs, subscription).name]
        driver.machine.subscribe(subscription, time.time())
        self._start(driver)
        await driver.flush()
        driver.poke()

    async def unsubscribe(self, subscription: Subscription) -> None:
        """No longer want one subscription."""
        driver = self._drivers[hub_for(self._hubs, subscription).name]
        driver.machine.unsubscribe(subscription, time.time())
        await driver.flush()
        driver.poke()

    async def subscribe_market(
        self,
        contract_id: ContractId,
        *,
        quotes: bool = True,
        trades: bool = True,
        depth: bool = False,
    ) -> None:
        """Quotes, trade prints and/or depth of a contract."""
        for sub in Subscription.market(contract_id, quotes=quotes, trades=trades, depth=depth):
            await self.subscribe(sub)

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
        trades: bool = True,
    ) -> None:
        """Account, order, position and fill events of an account."""
        subs = Subscription.user(
            account_id, accounts=accounts, orders=orders, positions=positions, fills=trades
        )
        for sub in subs:
            await self.subscribe(sub)

    async def unsubscribe_user(self, account_id: AccountId) -> None:
        """Stop user events of an account (the all-accounts channel stays)."""
        for sub in Subscription.user(account_id, accounts=False):
            await self.unsubscribe(sub)

    @property
    def subscriptions(self) -> tuple[Subscription, ...]:
        """Every desired subscription."""
        return tuple(s for d in self._drivers.values() for s in d.machine.desired)

    def state(self, hub: str) -> StreamState:
        """The state of one hub's connection ("user" or "market")."""
        return self._drivers[hub].machine.state

    @property
    def config(self) -> StreamConfig:
        """Keep-alive, timeouts and reconnect backoff, the same for both hubs."""
        return next(iter(self._drivers.values())).machine.config

    # --- events ---

    def on(self, callback: Callback) -> None:
        """Call ``callback(event)`` for every event, inline: keep it quick and non-blocking."""
        self._callbacks.append(callback)

    def book(self, contract_id: ContractId) -> OrderBook | None:
        """The live order book of a contract (with ``books=True`` and depth subscribed)."""
        return None if self._books is None else self._books.get(contract_id)

    def _deliver(self, events: list[StreamEvent]) -> None:
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
            try:
                self.queue.put(event)
            except QueueOverflow:
                # Reading pauses well before this (see _room_for_events); counted, never silent.
                self.overflowed += 1
        if events:
            self._readable.set()

    async def _room_for_events(self, timeout: float) -> None:
        """Pause reading while the queue has no room for events that cannot be dropped."""
        with anyio.move_on_after(timeout):
            while self.queue.space < self._reserve and not self._closed:
                self._drained = anyio.Event()
                await self._drained.wait()

    def __aiter__(self) -> AsyncIterator[StreamEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[StreamEvent]:
        while True:
            event = self.queue.get()
            if event is not None:
                self._drained.set()
                yield event
                continue
            if self._closed:
                return
            self._readable = anyio.Event()
            await self._readable.wait()
