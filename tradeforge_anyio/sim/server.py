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

from tradeforge_proto.core.errors import LocalProtocolError, RemoteProtocolError
from tradeforge_proto.core.operations import HttpRequest, HttpResponse
from tradeforge_proto.http import HttpServerConnection, HttpServerState, RejectedRequest, is_upgrade
from tradeforge_proto.signalr import (
    HandshakeReceived,
    HubConnection,
    HubRole,
    HubState,
    InvocationReceived,
    negotiate_response_body,
)
from tradeforge_proto.websocket import (
    ConnectionClosed,
    TextReceived,
    UpgradeRequested,
    WebSocketServer,
    WebSocketState,
)

from .auth import bearer
from .faults import Faults
from .rest import plain
from .simulation import HubSession, SimConfig, Simulation

READ_SIZE: Final = 65_536
TICK: Final = 0.02  # seconds between market steps
KEEPALIVE: Final = 15.0  # the hub's own pings, as ASP.NET Core sends them
MALFORMED: Final = '{"type":1,"target":"GatewayQuote","arguments":[\x1e'


class SimServer:
    """The embedded gateway on ``host:port`` (port 0 picks a free one), as an async context.

    ``async with SimServer() as sim:`` serves until the block ends; ``sim.api_url`` and the hub
    URLs point at it, ``sim.faults`` can be changed at any time.
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
        ws = WebSocketServer()
        try:
            events = ws.receive_data(raw)
        except RemoteProtocolError:
            await stream.send(ws.data_to_send())
            return
        upgrade = next(e for e in events if isinstance(e, UpgradeRequested))
        query = dict(upgrade.query)
        token = query.get("access_token") or bearer(_header(upgrade.headers, "authorization"))
        opened = self.simulation.open_hub(upgrade.path, token, self._clock())
        if isinstance(opened, int):
            ws.reject(opened, body=b"Unauthorized" if opened == 401 else b"Not Found")
            await stream.send(ws.data_to_send())
            return
        session = opened
        link = _HubLink(self, stream, ws, session)
        try:
            await link.run(ws.accept())
        finally:
            self.simulation.close_hub(session)


class _HubLink:
    """One hub connection: reads invocations, writes pushes and keep-alive pings."""

    def __init__(
        self,
        server: SimServer,
        stream: anyio.abc.ByteStream,
        ws: WebSocketServer,
        session: HubSession,
    ) -> None:
        self.server = server
        self.stream = stream
        self.ws = ws
        self.session = session
        self.hub = HubConnection(HubRole.SERVER)
        self.pushed = 0
        self.done = False
        self.lock = anyio.Lock()

    async def run(self, first_events: list[Any]) -> None:
        await self._flush()
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._writer, tg.cancel_scope)
            await self._handle(first_events)
            while not self.done:
                try:
                    data = await _receive(self.stream)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    break
                try:
                    events = self.ws.receive_data(data)
                except RemoteProtocolError:
                    break
                await self._handle(events)
                if not data:
                    break
            tg.cancel_scope.cancel()

    async def _handle(self, events: list[Any]) -> None:
        for event in events:
            if isinstance(event, TextReceived):
                try:
                    hub_events = self.hub.receive(event.data)
                except RemoteProtocolError:
                    self.done = True
                    return
                for hub_event in hub_events:
                    self._on_hub_event(hub_event)
            elif isinstance(event, ConnectionClosed):
                self.done = True
        await self._flush()

    def _on_hub_event(self, event: Any) -> None:
        if isinstance(event, HandshakeReceived):
            if event.protocol == "json":
                self.hub.accept_handshake()
            else:
                self.hub.reject_handshake(
                    f"Requested protocol '{event.protocol}' is not available."
                )
        elif isinstance(event, InvocationReceived):
            error = self.server.simulation.invoke(
                self.session, event.target, event.arguments, self.server._clock()
            )
            if event.invocation_id is not None and self.hub.state is HubState.OPEN:
                if error is None:
                    self.hub.complete(event.invocation_id, has_result=False)
                else:
                    self.hub.complete(event.invocation_id, error=error, has_result=False)
            self.server.wake()

    async def _writer(self, scope: anyio.CancelScope) -> None:
        last_ping = self.server._clock()
        while not self.done:
            with anyio.move_on_after(1.0):
                await self.server._wake.wait()
            faults = self.server.faults
            if faults.silent:
                self.session.take()
                continue
            if self.hub.state is not HubState.OPEN:
                continue
            close = faults.take_hub_close()
            if close is not None:
                self.hub.close(close[0], close[1])
                await self._flush()
                self.ws.close(1000, "hub closed")
                await self._send(self.ws.data_to_send())
                self.done = True
                scope.cancel()
                return
            pushes = self.session.take()
            if pushes:
                if faults.take_malformed():
                    await self._send_text(MALFORMED)
                else:
                    await self._send_text(pushes)
                self.pushed += pushes.count("\x1e")
                if faults.should_drop(self.pushed):
                    self.done = True
                    await self.stream.aclose()
                    scope.cancel()
                    return
                last_ping = self.server._clock()
            elif self.server._clock() - last_ping >= KEEPALIVE:
                self.hub.ping()
                await self._flush()
                last_ping = self.server._clock()

    async def _flush(self) -> None:
        text = self.hub.data_to_send()
        if text:
            await self._send_text(text)
        else:
            await self._send(self.ws.data_to_send())

    async def _send_text(self, text: str) -> None:
        if self.ws.state is not WebSocketState.OPEN:
            return
        try:
            self.ws.send_text(text)
        except LocalProtocolError:
            return
        await self._send(self.ws.data_to_send())

    async def _send(self, data: bytes) -> None:
        if not data:
            return
        async with self.lock:
            try:
                await self.stream.send(data)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                self.done = True


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
