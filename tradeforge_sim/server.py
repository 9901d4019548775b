"""The simulator on the network: one anyio TCP server for REST and both SignalR hubs.

All protocol work is done by the sans-IO roles of ``tradeforge_proto`` (HTTP server,
WebSocket server, SignalR hub server) and all gateway behaviour by ``Simulation``; this module
only moves bytes, keeps time, and injects the faults a test asks for.

Nothing a client does stops the server: every connection has time limits (for a request's header
block, its body, an idle keep-alive, each write, a quiet hub client) and size limits; a failed
accept (no file descriptors left, say) backs off and retries; a failure while answering is
logged with its traceback on the ``tradeforge.sim`` logger and answered HTTP 500.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import secrets
import ssl
import time
from collections.abc import Callable
from types import TracebackType
from typing import Final, Self
from urllib.parse import parse_qsl

import anyio
import anyio.abc
from anyio.streams.stapled import MultiListener
from anyio.streams.tls import TLSStream

from tradeforge_proto.core.errors import single_error
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
from .rest import internal_error, plain
from .simulation import HubSession, SimConfig, Simulation, hub_name
from .store import StateStore

READ_SIZE: Final = 65_536
TICK: Final = 0.02  # seconds between market steps
KEEPALIVE: Final = KEEPALIVE_INTERVAL  # the hub's own pings, as ASP.NET Core sends them
WAIT_BOUND: Final = 1.0  # the longest a hub's writer sleeps before it looks at its faults again
CLOSE_GRACE: Final = 5.0  # seconds a closing hub connection may take to write its last bytes
MALFORMED: Final = '{"type":1,"target":"GatewayQuote","arguments":[\x1e'
HEADER_TIMEOUT: Final = 10.0  # seconds from a request's first byte to the end of its headers
BODY_TIMEOUT: Final = 30.0  # seconds from the end of a request's headers to the end of its body
IDLE_TIMEOUT: Final = 75.0  # seconds a kept-alive connection may wait for its next request
WRITE_TIMEOUT: Final = 30.0  # seconds one HTTP answer may take to be written
HUB_CLIENT_TIMEOUT: Final = 30.0  # seconds a hub client may stay silent (ASP.NET Core's default)
MAX_BODY: Final = 1024 * 1024  # bytes of a request body; past it the answer is 413
MAX_HEADER: Final = 64 * 1024  # bytes of a request's header block; past it the answer is 431
ACCEPT_BACKOFF: Final = (0.01, 1.0)  # first and longest pause after a failed accept, in seconds
LINGER: Final = 2.0  # seconds a refused client's unread request is drained before closing
LINGER_BYTES: Final = 16 * 1024 * 1024  # and at most this much of it
_GONE: Final = (
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    anyio.EndOfStream,
    ssl.SSLError,
    OSError,
)  # the client went away or broke the transport: nothing to report

log = logging.getLogger("tradeforge.sim")


class SimServer:
    """The embedded gateway on ``host:port`` (port 0 picks a free one), as an async context.

    ``async with SimServer() as sim:`` serves until the block ends; ``sim.api_url`` and the hub
    URLs point at it, ``sim.faults`` can be changed at any time. ``hub_outbox`` bounds the bytes
    a hub client may leave unread; past it the client is closed as too slow.

    Limits, in seconds and bytes: a request's header block must arrive within ``header_timeout``
    (of its first byte, or of the connection for the first request) and its body within
    ``body_timeout`` after that, else it is answered 408; a kept-alive connection closes after
    ``idle_timeout`` without a request, and any connection whose answer takes longer than
    ``write_timeout`` to write; a hub client silent for ``hub_client_timeout`` is dropped. Bodies
    over ``max_body`` are answered 413, header blocks over ``max_header`` 431.

    With a ``store`` the exchange starts from the state it holds and writes every change to it;
    the caller opens and closes the store.
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
        header_timeout: float = HEADER_TIMEOUT,
        body_timeout: float = BODY_TIMEOUT,
        idle_timeout: float = IDLE_TIMEOUT,
        write_timeout: float = WRITE_TIMEOUT,
        hub_client_timeout: float = HUB_CLIENT_TIMEOUT,
        max_body: int = MAX_BODY,
        max_header: int = MAX_HEADER,
        store: StateStore | None = None,
    ) -> None:
        for name, value in (
            ("header_timeout", header_timeout),
            ("body_timeout", body_timeout),
            ("idle_timeout", idle_timeout),
            ("write_timeout", write_timeout),
            ("hub_client_timeout", hub_client_timeout),
            ("max_body", max_body),
            ("max_header", max_header),
        ):
            if not value > 0:
                raise ValueError(f"{name} must be positive, got {value!r}")
        self.config = config or SimConfig()
        self.host = host
        self.port = port
        self.faults = faults or Faults()
        self._ssl = ssl_context
        self._clock = clock
        self.simulation = Simulation(self.config, now=clock(), store=store)
        self._wake = anyio.Event()
        self._task_group: anyio.abc.TaskGroup | None = None
        self._listener: MultiListener[anyio.abc.SocketStream] | None = None
        self.connections = 0
        self.market_paused = False  # tests freeze the market to compare books exactly
        self.hub_outbox = hub_outbox  # bytes a hub client may leave unread before it is closed
        self.slow_hub_closes = 0  # hub connections closed because their client read too slowly
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        self.idle_timeout = idle_timeout
        self.write_timeout = write_timeout
        self.hub_client_timeout = hub_client_timeout
        self.max_body = max_body
        self.max_header = max_header

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
        for inner in listener.listeners:
            assert isinstance(inner, anyio.abc.SocketListener)
            self._task_group.start_soon(self._accept_loop, inner)
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
        except BaseExceptionGroup as group:
            sole = single_error(group, anyio.get_cancelled_exc_class())
            if sole is None:
                raise
            raise sole from None  # what the block raised, not a group around it
        finally:
            await self._listener.aclose()

    async def serve_forever(self) -> None:
        """Serve until cancelled."""
        async with self:
            await anyio.sleep_forever()

    # --- market ---

    async def _market_loop(self) -> None:
        failing = False  # a failure is logged once, not at every step it repeats
        while True:
            await anyio.sleep(TICK)
            if self.market_paused:
                continue
            try:
                self.simulation.advance(self._clock())
            except Exception:
                if not failing:
                    log.exception("the market step failed; the market keeps stepping")
                failing = True
                continue
            failing = False
            self.wake()

    # --- connections ---

    async def _accept_loop(self, listener: anyio.abc.SocketListener) -> None:
        """Accept for ever; a failed accept (out of file descriptors, say) backs off and retries.

        A run of failures is logged once, when it starts, and once more when accepting works
        again; the connections waiting meanwhile stay in the listen queue.
        """
        pause = 0.0
        while True:
            try:
                stream = await listener.accept()
            except (OSError, anyio.BrokenResourceError) as exc:
                if not pause:
                    log.warning("cannot accept connections (%s); retrying", _accept_error(exc))
                pause = min(ACCEPT_BACKOFF[1], max(ACCEPT_BACKOFF[0], pause * 2))
                await anyio.sleep(pause)
                continue
            if pause:
                log.warning("accepting connections again")
                pause = 0.0
            assert self._task_group is not None
            self._task_group.start_soon(self._serve_connection, stream)

    async def _serve_connection(self, stream: anyio.abc.ByteStream) -> None:
        """Serve one client to the end; whatever goes wrong ends this connection only."""
        self.connections += 1
        try:
            async with stream:
                await self._serve_stream(stream)
        except _GONE:
            return
        except Exception:
            log.exception("a connection failed; the simulator keeps serving")

    async def _serve_stream(self, stream: anyio.abc.ByteStream) -> None:
        if self.faults.take_refusal():
            return
        if self.faults.connect_delay:
            await anyio.sleep(self.faults.connect_delay)
        peer = _peer(stream)
        if self._ssl is not None:
            wrapped = None
            with anyio.move_on_after(self.header_timeout):
                wrapped = await TLSStream.wrap(stream, server_side=True, ssl_context=self._ssl)
            if wrapped is None:
                return
            stream = wrapped
        http = HttpServerConnection(max_request_size=self.max_body, max_header_size=self.max_header)
        reader = _RequestReader(self, stream, http)
        request = await reader.first()
        if request is None:
            return
        if is_upgrade(request):
            await self._serve_hub(stream, bytes(reader.raw))
        else:
            await self._serve_rest(reader, request, peer)

    async def _serve_rest(self, reader: _RequestReader, request: HttpRequest, peer: str) -> None:
        http = reader.http
        current: HttpRequest | None = request
        while current is not None:
            response = await self._answer(current, peer)
            if self.faults.take_rest_drop():
                self.wake()
                return  # carried out, but the answer never leaves: the client cannot know
            sent = await reader.send(
                http.send_response(response.status, response.headers, response.body)
            )
            self.wake()
            if not sent or _closed(http):
                return
            current = await reader.next()

    async def _answer(self, request: HttpRequest, peer: str) -> HttpResponse:
        """The answer to one request; a failure of the simulator is logged and answered 500."""
        try:
            return await self._answer_or_fail(request, peer)
        except Exception:
            log.exception("the simulator failed to answer %s %r", request.method, request.path)
            return internal_error()

    async def _answer_or_fail(self, request: HttpRequest, peer: str) -> HttpResponse:
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
        return self.simulation.handle_rest(request, self._clock(), peer=peer)

    def _negotiate(self, request: HttpRequest) -> HttpResponse:
        token = bearer(request.header("authorization")) or _query_token(request.path)
        if self.simulation.tokens.check(token, self._clock()) is None:
            return plain(401)
        query = dict(parse_qsl(request.path.partition("?")[2]))
        version = 1 if query.get("negotiateVersion", "0") != "0" else 0
        connection = f"sim-{secrets.token_urlsafe(9)}"
        token_value = connection + "-token" if version else None
        body = negotiate_response_body(connection, token_value, version=version)
        return HttpResponse(200, (("content-type", "application/json"),), body)

    async def _send_within(self, stream: anyio.abc.ByteStream, data: bytes) -> bool:
        """Write ``data`` within ``write_timeout``; False when the client did not take it."""
        if not data:
            return True
        with anyio.move_on_after(self.write_timeout):
            await stream.send(data)
            return True
        return False

    # --- hubs ---

    async def _serve_hub(self, stream: anyio.abc.ByteStream, raw: bytes) -> None:
        conn = HubServerConnection(max_outbox=self.hub_outbox)
        events = conn.receive_data(raw, self._clock())
        upgrade = next((e for e in events if isinstance(e, UpgradeRequested)), None)
        if upgrade is None:  # not a valid upgrade: the machine queued the HTTP error
            await self._send_within(stream, conn.data_to_send())
            return
        hub = hub_name(upgrade.path)
        if hub is not None and self.faults.hub_down(hub):
            conn.reject(503, body=b"Service Unavailable")
            await self._send_within(stream, conn.data_to_send())
            return
        query = dict(upgrade.query)
        token = query.get("access_token") or bearer(_header(upgrade.headers, "authorization"))
        opened = self.simulation.open_hub(upgrade.path, token, self._clock())
        if isinstance(opened, int):
            conn.reject(opened, body=b"Unauthorized" if opened == 401 else b"Not Found")
            await self._send_within(stream, conn.data_to_send())
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
                data = None
                with anyio.move_on_after(self.server.hub_client_timeout):
                    try:
                        data = await _receive(self.stream)
                    except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                        break
                if data is None:  # silent for too long: dropped, as ASP.NET Core aborts it
                    await self._drop()
                    return
                self._handle(self.conn.receive_data(data, self.server._clock()))
            await self._finish()

    def _handle(self, events: list[HubServerEvent]) -> None:
        for event in events:
            if isinstance(event, InvocationReceived):
                self.conn.complete(event.invocation_id, self._invoke(event))
                self.server.wake()
        self._queued.set()

    def _invoke(self, event: InvocationReceived) -> str | None:
        """Run a client invocation; a failure is logged and completes it with ASP.NET's error."""
        try:
            return self.server.simulation.invoke(
                self.session, event.target, event.arguments, self.server._clock()
            )
        except Exception:
            log.exception("hub method %r failed", event.target)
            return f"An unexpected error occurred invoking '{event.target}' on the server."

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


class _RequestReader:
    """Reads one client's requests within the server's time and size limits.

    A request cut short by a time limit is answered 408 (nothing, when none of it came), a
    request over a size limit its ``RejectedRequest`` status; the connection then ends.
    """

    def __init__(
        self, server: SimServer, stream: anyio.abc.ByteStream, http: HttpServerConnection
    ) -> None:
        self.server = server
        self.stream = stream
        self.http = http
        self.raw = bytearray()  # the bytes of the first request, for the WebSocket layer

    async def first(self) -> HttpRequest | None:
        """The connection's first request, its header block due ``header_timeout`` from now."""
        return await self._read(self.server.header_timeout, keep=True)

    async def next(self) -> HttpRequest | None:
        """The next request of a kept-alive connection; None once the connection is over."""
        try:
            request = self.http.next_request()  # one the client already sent behind the last
        except RejectedRequest as exc:
            await self._refuse(exc.status_hint)
            return None
        if request is not None:
            return request
        return await self._read(self.server.idle_timeout, keep=False, idle=True)

    async def send(self, data: bytes) -> bool:
        """Write an answer within ``write_timeout``; False when the client did not take it."""
        return await self.server._send_within(self.stream, data)

    async def _read(self, wait: float, *, keep: bool, idle: bool = False) -> HttpRequest | None:
        server, http = self.server, self.http
        deadline = anyio.current_time() + wait
        started = False  # some of this request arrived
        try:
            while True:
                data = await self._receive_by(deadline)
                if data is None:
                    if started:
                        await self._refuse(408)
                    return None
                if keep:
                    self.raw += data
                if data and not started:
                    started = True
                    if idle:  # the next request began: its header block is due
                        deadline = anyio.current_time() + server.header_timeout
                reading_head = not http.reading_body
                request = http.receive_data(data)
                if request is not None or _closed(http):
                    return request
                if reading_head and http.reading_body:  # the header block is in: the body is due
                    deadline = anyio.current_time() + server.body_timeout
        except RejectedRequest as exc:
            await self._refuse(exc.status_hint)
            return None

    async def _refuse(self, status: int) -> None:
        """Answer ``status``, then end the connection without resetting it.

        The rest of the client's request is read and dropped for a moment (``LINGER``), so the
        client, still sending, reads the answer instead of a reset.
        """
        if not await self.send(self.http.error_response(status)):
            return
        with contextlib.suppress(NotImplementedError):  # TLS before 1.3 cannot half-close
            await self.stream.send_eof()
        drained = 0
        with anyio.move_on_after(LINGER):
            while drained < LINGER_BYTES:
                data = await _receive(self.stream)
                if not data:
                    return
                drained += len(data)

    async def _receive_by(self, deadline: float) -> bytes | None:
        """What the client sends next, or None when ``deadline`` passes first."""
        with anyio.move_on_after(deadline - anyio.current_time()):
            return await _receive(self.stream)
        return None


def _accept_error(exc: BaseException) -> str:
    """The errno name and text of a failed accept (anyio on trio wraps the OSError)."""
    cause = exc if isinstance(exc, OSError) else exc.__cause__
    if isinstance(cause, OSError) and cause.errno is not None:
        return f"{errno.errorcode.get(cause.errno, cause.errno)}: {cause.strerror}"
    return repr(exc)


def _peer(stream: anyio.abc.ByteStream) -> str:
    """The client's IP address ("" when the stream has none, as an in-memory pipe)."""
    address = stream.extra(anyio.abc.SocketAttribute.remote_address, None)
    if isinstance(address, tuple):
        return str(address[0])
    return "" if address is None else str(address)


def _closed(http: HttpServerConnection) -> bool:
    """True once the HTTP connection may not serve another request."""
    return http.state is HttpServerState.CLOSED


def _header(headers: tuple[tuple[str, str], ...], name: str) -> str | None:
    lowered = name.lower()
    return next((v for k, v in headers if k.lower() == lowered), None)


def _query_token(path: str) -> str | None:
    return dict(parse_qsl(path.partition("?")[2])).get("access_token")
