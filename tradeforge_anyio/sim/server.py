"""The simulator on the network: one anyio TCP server for REST and both SignalR hubs.

All protocol work is done by the sans-IO roles of ``tradeforge_proto`` (HTTP server,
WebSocket server, SignalR hub server) and all gateway behaviour by ``Simulation``; this module
only moves bytes, keeps time, and injects the faults a test asks for.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Final, Self
from urllib.parse import parse_qsl

import anyio
import anyio.abc
from anyio.streams.tls import TLSStream

from tradeforge_proto.core.operations import HttpRequest, HttpResponse
from tradeforge_proto.http import HttpServerConnection, HttpServerState, RejectedRequest, is_upgrade
from tradeforge_proto.realtime.hubserver import (
    KEEPALIVE_INTERVAL,
    MAX_OUTBOX,
    HubServerConnection,
    HubServerEvent,
    HubServerState,
)
from tradeforge_proto.signalr import RS, InvocationReceived, negotiate_response_body
from tradeforge_proto.websocket import UpgradeRequested

from .auth import bearer
from .faults import Faults
from .rest import plain
from .simulation import HubSession, SimConfig, Simulation, hub_name

READ_SIZE: Final = 65_536
TICK: Final = 0.02  # seconds between market steps
KEEPALIVE: Final = KEEPALIVE_INTERVAL  # the hub's own pings, as ASP.NET Core sends them
WAIT_BOUND: Final = 1.0  # the longest a hub's writer sleeps before it looks at its faults again
CLOSE_GRACE: Final = 5.0  # seconds a closing hub connection may take to write its last bytes
MALFORMED: Final = '{"type":1,"target":"GatewayQuote","arguments":[\x1e'


class SimServer:
    """The embedded gateway on ``host:port`` (port 0 picks a free one), as an async context.

    ``async with SimServer() as sim:`` serves until the block ends; ``sim.api_url`` and the hub
    URLs point at it, ``sim.faults`` can be changed at any time. ``hub_outbox`` bounds the bytes
    a hub client may leave unread; past it the client is closed as too slow.
    """

    def __init__(
        self,
        config: SimConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: Faults | None = None,
        ssl_context: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.time,
        hub_outbox: int = MAX_OUTBOX,
    ) -> None:
        self.config = config or SimConfig()
        self.host = host
        self.port = port
        self.faults = faults or Faults()
        self._ssl = ssl_context
        self._clock = clock
        self.simulation = Simulation(self.config, now=clock())
        self._wake = anyio.Event()
        self._task_group: anyio.abc.TaskGroup | None = None
        self._listener: anyio.abc.Listener[Any] | None = None
        self.connections = 0
        self.market_paused = False  # tests freeze the market to compare books exactly
        self.hub_outbox = hub_outbox  # bytes a hub client may leave unread before it is closed
        self.slow_hub_closes = 0  # hub connections closed because their client read too slowly

    # --- addresses ---

    @property
    def api_url(self) -> str:
        """Base URL of the REST API."""
        scheme = "https" if self._ssl else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    @property
    def user_hub_url(self) -> str:
        """URL of the user hub."""
        return f"{self.api_url}/hubs/user"

    @property
    def market_hub_url(self) -> str:
        """URL of the market hub."""
        return f"{self.api_url}/hubs/market"

    # --- control ---

    def expire_tokens(self, after: float = 0.0) -> None:
        """Make every token issued so far expire ``after`` seconds from now."""
        self.simulation.tokens.expire_in(after, self._clock())

    def wake(self) -> None:
        """Tell every hub connection that pushes may be waiting."""
        old, self._wake = self._wake, anyio.Event()
        old.set()

    async def __aenter__(self) -> Self:
        listener = await anyio.create_tcp_listener(local_host=self.host, local_port=self.port)
        self._listener = listener
        self.port = int(listener.extra(anyio.abc.SocketAttribute.local_port))
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        self._task_group.start_soon(self._market_loop)
        self._task_group.start_soon(listener.serve, self._serve_connection)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._task_group is not None
        assert self._listener is not None
        self._task_group.cancel_scope.cancel()
        try:
            return await self._task_group.__aexit__(exc_type, exc, tb)
        finally:
            await self._listener.aclose()

    async def serve_forever(self) -> None:
        """Serve until cancelled."""
        async with self:
            await anyio.sleep_forever()

    # --- market ---

    async def _market_loop(self) -> None:
        while True:
            await anyio.sleep(TICK)
            if self.market_paused:
                continue
            self.simulation.advance(self._clock())
            self.wake()

    # --- connections ---

    async def _serve_connection(self, stream: anyio.abc.ByteStream) -> None:
        self.connections += 1
        async with stream:
            if self.faults.take_refusal():
                return
            if self.faults.connect_delay:
                await anyio.sleep(self.faults.connect_delay)
            if self._ssl is not None:
                try:
                    stream = await TLSStream.wrap(stream, server_side=True, ssl_context=self._ssl)
                except (ssl.SSLError, OSError, anyio.BrokenResourceError, anyio.EndOfStream):
                    return
            try:
                await self._first_request(stream)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream):
                return

    async def _first_request(self, stream: anyio.abc.ByteStream) -> None:
        http = HttpServerConnection()
        raw = bytearray()
        request: HttpRequest | None = None
        try:
            while request is None:
                data = await _receive(stream)
                raw += data
                request = http.receive_data(data)
                if request is None and _closed(http):
                    return
        except RejectedRequest as exc:
            await stream.send(http.error_response(exc.status_hint))
            return
        if is_upgrade(request):
            await self._serve_hub(stream, bytes(raw))
        else:
            await self._serve_rest(stream, http, request)

    async def _serve_rest(
        self, stream: anyio.abc.ByteStream, http: HttpServerConnection, request: HttpRequest
    ) -> None:
        current: HttpRequest | None = request
        while current is not None:
            response = await self._answer(current)
            if self.faults.take_rest_drop():
                self.wake()
                return  # carried out, but the answer never leaves: the client cannot know
            await stream.send(http.send_response(response.status, response.headers, response.body))
            self.wake()
            if _closed(http):
                return
            current = http.next_request()
            try:
                while current is None:
                    current = http.receive_data(await _receive(stream))
                    if current is None and _closed(http):
                        return
            except RejectedRequest as exc:
                await stream.send(http.error_response(exc.status_hint))
                return

    async def _answer(self, request: HttpRequest) -> HttpResponse:
        faults = self.faults
        if faults.rest_delay:
            await anyio.sleep(faults.rest_delay)
        status = faults.take_rest_status()
        if status is not None:
            response = plain(status, "injected fault")
            if status == 429:
                response = HttpResponse(429, (("retry-after", "1"),), b"Too Many Requests")
            return response
        path = request.path.partition("?")[0].lower()
        if path.startswith("/hubs/") and path.endswith("/negotiate"):
            return self._negotiate(request)
        return self.simulation.handle_rest(request, self._clock())

    def _negotiate(self, request: HttpRequest) -> HttpResponse:
        token = bearer(request.header("authorization")) or _query_token(request.path)
        if self.simulation.tokens.check(token, self._clock()) is None:
            return plain(401)
        query = dict(parse_qsl(request.path.partition("?")[2]))
        version = 1 if query.get("negotiateVersion", "0") != "0" else 0
        connection = f"sim-{self.simulation.tokens.issue('negotiate', self._clock())[-12:]}"
        token_value = connection + "-token" if version else None
        body = negotiate_response_body(connection, token_value, version=version)
        return HttpResponse(200, (("content-type", "application/json"),), body)

    # --- hubs ---

    async def _serve_hub(self, stream: anyio.abc.ByteStream, raw: bytes) -> None:
        conn = HubServerConnection(max_outbox=self.hub_outbox)
        events = conn.receive_data(raw, self._clock())
        upgrade = next((e for e in events if isinstance(e, UpgradeRequested)), None)
        if upgrade is None:  # not a valid upgrade: the machine queued the HTTP error
            await stream.send(conn.data_to_send())
            return
        hub = hub_name(upgrade.path)
        if hub is not None and self.faults.hub_down(hub):
            conn.reject(503, body=b"Service Unavailable")
            await stream.send(conn.data_to_send())
            return
        query = dict(upgrade.query)
        token = query.get("access_token") or bearer(_header(upgrade.headers, "authorization"))
        opened = self.simulation.open_hub(upgrade.path, token, self._clock())
        if isinstance(opened, int):
            conn.reject(opened, body=b"Unauthorized" if opened == 401 else b"Not Found")
            await stream.send(conn.data_to_send())
            return
        session = opened
        link = _HubLink(self, stream, conn, session)
        try:
            await link.run(conn.accept())
        finally:
            self.simulation.close_hub(session)


class _HubLink:
    """One hub connection: the core's hub-server machine between the socket and the simulation.

    Three tasks: the reader feeds the machine and runs client invocations; the producer moves the
    session's pushes into the machine, fires its keep-alive timer and injects the faults; the
    flusher writes what the machine queued. Pushes never wait for a slow client's socket: they
    fill the machine's bounded outbox, and past the bound the machine closes the client.
    """

    def __init__(
        self,
        server: SimServer,
        stream: anyio.abc.ByteStream,
        conn: HubServerConnection,
        session: HubSession,
    ) -> None:
        self.server = server
        self.stream = stream
        self.conn = conn
        self.session = session
        self.pushed = 0
        self.lock = anyio.Lock()
        self._queued = anyio.Event()  # set when the machine holds bytes for the flusher
        self._finishing = False
        self._scope = anyio.CancelScope()  # the task group's, once run() starts

    async def run(self, first_events: list[HubServerEvent]) -> None:
        async with anyio.create_task_group() as tg:
            self._scope = tg.cancel_scope
            tg.start_soon(self._flusher)
            tg.start_soon(self._producer)
            self._handle(first_events)
            while self.conn.state is not HubServerState.CLOSED:
                try:
                    data = await _receive(self.stream)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    break
                self._handle(self.conn.receive_data(data, self.server._clock()))
            await self._finish()

    def _handle(self, events: list[HubServerEvent]) -> None:
        for event in events:
            if isinstance(event, InvocationReceived):
                error = self.server.simulation.invoke(
                    self.session, event.target, event.arguments, self.server._clock()
                )
                self.conn.complete(event.invocation_id, error)
                self.server.wake()
        self._queued.set()

    async def _producer(self) -> None:
        conn, session, server = self.conn, self.session, self.server
        while True:
            with anyio.move_on_after(self._wait_bound()):
                await server._wake.wait()
            faults = server.faults
            if faults.hub_down(session.hub):
                await self._drop()  # the hub went down: as a network failure, no goodbye
                return
            if faults.silent:
                session.take()
                continue
            # The keep-alive ping or a late handshake; it also dates the pushes that follow.
            ended = conn.handle_timer(server._clock())
            if not ended and conn.state is HubServerState.OPEN:
                close = faults.take_hub_close()
                if close is not None:
                    conn.close(close[0], close[1])
                    await self._finish()
                    return
                pushes = session.take()
                if pushes:
                    conn.send_records(MALFORMED if faults.take_malformed() else pushes)
                    self.pushed += pushes.count(RS)
                    if faults.should_drop(self.pushed):
                        await self._flush()
                        await self._drop()
                        return
            if conn.state is HubServerState.CLOSED:  # too slow a client, or no handshake
                await self._finish()
                return
            self._queued.set()

    def _wait_bound(self) -> float:
        """Seconds to the machine's next timer, at most ``WAIT_BOUND`` (no timers when silent)."""
        deadline = self.conn.next_deadline()
        if deadline is None or self.server.faults.silent:
            return WAIT_BOUND
        return min(WAIT_BOUND, max(0.0, deadline - self.server._clock()))

    async def _flusher(self) -> None:
        while True:
            await self._queued.wait()
            self._queued = anyio.Event()
            await self._flush()

    async def _flush(self) -> None:
        """Write what the machine holds; it counts as unwritten until the socket took it."""
        async with self.lock:
            data = self.conn.data_to_send()
            if not data:
                return
            self.conn.report_unwritten(len(data))
            try:
                await self.stream.send(data)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                self._scope.cancel()  # the client is gone; the reader would only learn it later
            finally:
                self.conn.report_unwritten(0)

    async def _finish(self) -> None:
        """Write the last bytes (a Close, say) within ``CLOSE_GRACE``, then end the connection."""
        if self._finishing:  # the reader and the producer may both see the end
            return
        self._finishing = True
        if self.conn.overflowed:
            self.server.slow_hub_closes += 1
        with anyio.move_on_after(CLOSE_GRACE):
            await self._flush()
        self._scope.cancel()

    async def _drop(self) -> None:
        """End the connection without a word, as a network failure would."""
        await self.stream.aclose()
        self._scope.cancel()


async def _receive(stream: anyio.abc.ByteStream) -> bytes:
    try:
        return await stream.receive(READ_SIZE)
    except anyio.EndOfStream:
        return b""


def _closed(http: HttpServerConnection) -> bool:
    """True once the HTTP connection may not serve another request."""
    return http.state is HttpServerState.CLOSED


def _header(headers: tuple[tuple[str, str], ...], name: str) -> str | None:
    lowered = name.lower()
    return next((v for k, v in headers if k.lower() == lowered), None)


def _query_token(path: str) -> str | None:
    return dict(parse_qsl(path.partition("?")[2])).get("access_token")
