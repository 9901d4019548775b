"""Sockets for the async runtime: a pool of keep-alive HTTP/1.1 connections to one origin.

HTTP itself is the core's ``HttpClientConnection``; this module only connects (TCP, then TLS with
the system trust store), writes the bytes the core produced, reads until the core has a response,
and turns socket failures into ``TransportError`` saying whether the request may have left.
"""

from __future__ import annotations

import contextlib
import select
import ssl
import sys
import time
from types import TracebackType
from typing import Final, Self

import anyio
import anyio.abc
import attrs
from anyio.streams.tls import TLSStream

from tradeforge_proto.core.errors import ConfigurationError, LocalProtocolError
from tradeforge_proto.core.operations import HttpRequest, HttpResponse
from tradeforge_proto.http import HttpClientConnection
from tradeforge_proto.transport import (
    ConnectTimeout,
    IdleConnections,
    Origin,
    ReadTimeout,
    SendProgress,
    TransportError,
    address_of,
    connection_lost,
    failure_reason,
)

__all__ = [
    "ConnectTimeout",
    "ConnectionPool",
    "Origin",
    "ReadTimeout",
    "SendProgress",
    "TransportError",
    "default_ssl_context",
]

READ_SIZE: Final = 65_536
# Failures of the byte stream itself, as anyio reports them on every backend.
_STREAM_ERRORS: Final = (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError)


def default_ssl_context() -> ssl.SSLContext:
    """A client TLS context trusting the system's certificate store (truststore when present)."""
    try:
        import truststore
    except ImportError:  # pragma: no cover - truststore is a dependency
        return ssl.create_default_context()
    return truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


@attrs.define(eq=False)
class _Connection:
    stream: anyio.abc.ByteStream
    http: HttpClientConnection
    requests: int = 0  # requests written on this connection so far


def _stale(stream: anyio.abc.ByteStream) -> bool:
    """True when an idle connection has something to read: the server closed it or misbehaves."""
    sock = stream.extra(anyio.abc.SocketAttribute.raw_socket, None)
    if sock is None:
        return False
    try:
        if sys.platform == "win32":
            readable, _, _ = select.select([sock], [], [], 0)
            return bool(readable)
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return True


class ConnectionPool:
    """Keep-alive HTTP/1.1 connections to one origin, at most ``max_connections`` open at once.

    ``send`` never sends a request twice: when a connection fails after the request was written,
    ``TransportError.request_sent`` is True and retrying is the caller's decision.
    """

    def __init__(
        self,
        origin: Origin,
        *,
        max_connections: int = 4,
        connect_timeout: float = 10.0,
        read_timeout: float = 30.0,
        keepalive_expiry: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
        max_response_size: int = 16 * 1024 * 1024,
    ) -> None:
        if max_connections < 1:
            raise ConfigurationError(f"max_connections must be at least 1, got {max_connections}")
        for name, value in (
            ("connect_timeout", connect_timeout),
            ("read_timeout", read_timeout),
            ("keepalive_expiry", keepalive_expiry),
        ):
            if not value > 0:
                raise ConfigurationError(f"{name} must be a positive number, got {value!r}")
        self.origin = origin
        self._max_connections = max_connections
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._max_response_size = max_response_size
        # TLS only for https; a context given for an http origin is not used.
        self._ssl_context: ssl.SSLContext | None = None
        if origin.scheme == "https":
            self._ssl_context = ssl_context or default_ssl_context()
        self._where = address_of(origin)
        self._slots: anyio.Semaphore | None = None  # created on first use, inside the event loop
        self._idle = IdleConnections[_Connection](max_idle=max_connections, expiry=keepalive_expiry)
        self._open = 0
        self._closed = False
        self._connections_opened = 0
        self._requests_sent = 0

    @property
    def connections_opened(self) -> int:
        """How many connections were opened (TCP and TLS established) so far."""
        return self._connections_opened

    @property
    def requests_sent(self) -> int:
        """How many requests started being written so far."""
        return self._requests_sent

    @property
    def open_connections(self) -> int:
        """Connections open now: in use plus idle."""
        return self._open

    async def send(
        self, request: HttpRequest, *, progress: SendProgress | None = None
    ) -> HttpResponse:
        """Send ``request`` on an idle or new connection and return the whole response.

        Raises ``TransportError`` (``ConnectTimeout``, ``ReadTimeout``) when the transport fails and
        ``RemoteProtocolError`` when the server breaks HTTP. When cancelled, the connection is
        dropped and ``progress.request_sent`` says whether writing the request began.
        """
        progress = SendProgress() if progress is None else progress
        progress.request_sent = False
        self._check_open()
        if self._slots is None:
            self._slots = anyio.Semaphore(self._max_connections)
        async with self._slots:
            self._check_open()
            conn = await self._checkout()
            return await self._use(conn, request, progress)

    async def aclose(self) -> None:
        """Close the idle connections; connections in use close when their request ends."""
        self._closed = True
        idle = self._idle.clear()
        for conn in idle:
            await self._discard(conn)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # --- connections ---

    def _check_open(self) -> None:
        if self._closed:
            raise LocalProtocolError(f"the connection pool for {self._where} is closed")

    async def _discard(self, conn: _Connection) -> None:
        self._open -= 1
        conn.http.close()
        with contextlib.suppress(*_STREAM_ERRORS):
            await anyio.aclose_forcefully(conn.stream)

    async def _checkout(self) -> _Connection:
        now = time.monotonic()
        while True:
            conn, expired = self._idle.take(now)
            for old in expired:
                await self._discard(old)
            if conn is None:
                return await self._connect()
            if not _stale(conn.stream):
                return conn
            await self._discard(conn)

    async def _checkin(self, conn: _Connection) -> None:
        if self._closed or not conn.http.reusable:
            await self._discard(conn)
            return
        for surplus in self._idle.put(conn, time.monotonic()):
            await self._discard(surplus)

    async def _connect(self) -> _Connection:
        stream: anyio.abc.ByteStream | None = None
        with anyio.move_on_after(self._connect_timeout):
            stream = await self._open_stream()
        if stream is None:
            raise ConnectTimeout(
                f"connecting to {self._where} took longer than {self._connect_timeout:g} s",
                request_sent=False,
            )
        self._connections_opened += 1
        self._open += 1
        http = HttpClientConnection(
            self.origin.host_header, max_response_size=self._max_response_size
        )
        return _Connection(stream, http)

    async def _open_stream(self) -> anyio.abc.ByteStream:
        try:
            tcp = await anyio.connect_tcp(self.origin.host, self.origin.port)
        except OSError as exc:
            raise TransportError(
                f"could not connect to {self._where}: {failure_reason(exc)}", request_sent=False
            ) from exc
        if self._ssl_context is None:
            return tcp
        established = False
        try:
            # Not standard_compatible: HTTP framing detects truncation, and closing never waits.
            tls = await TLSStream.wrap(
                tcp,
                hostname=self.origin.host,
                ssl_context=self._ssl_context,
                standard_compatible=False,
            )
            established = True
        except ssl.SSLCertVerificationError as exc:
            raise TransportError(
                f"TLS certificate of {self._where} was rejected: {exc.verify_message or exc}",
                request_sent=False,
            ) from exc
        except (*_STREAM_ERRORS, anyio.EndOfStream) as exc:
            raise TransportError(
                f"TLS handshake with {self._where} failed: {failure_reason(exc)}",
                request_sent=False,
            ) from exc
        finally:
            if not established:
                await anyio.aclose_forcefully(tcp)
        return tls

    # --- one exchange ---

    async def _use(
        self, conn: _Connection, request: HttpRequest, progress: SendProgress
    ) -> HttpResponse:
        try:
            payload = conn.http.send_request(request)
        except LocalProtocolError:
            await self._checkin(conn)  # nothing was written: the connection is still good
            raise
        try:
            response = await self._exchange(conn, payload, progress)
        except BaseException:
            await self._discard(conn)
            raise
        await self._checkin(conn)
        return response

    async def _exchange(
        self, conn: _Connection, payload: bytes, progress: SendProgress
    ) -> HttpResponse:
        reused = conn.requests > 0
        conn.requests += 1
        with anyio.move_on_after(self._read_timeout):
            progress.request_sent = True
            self._requests_sent += 1
            try:
                await conn.stream.send(payload)
            except _STREAM_ERRORS as exc:
                raise TransportError(
                    f"writing the request to {self._where} failed: {failure_reason(exc)}",
                    request_sent=True,
                ) from exc
            return await self._read_response(conn, reused)
        raise ReadTimeout(
            f"no complete response from {self._where} within {self._read_timeout:g} s",
            request_sent=True,
        )

    async def _read_response(self, conn: _Connection, reused: bool) -> HttpResponse:
        received = 0
        while True:
            try:
                data = await conn.stream.receive(READ_SIZE)
            except anyio.EndOfStream:
                data = b""
            except _STREAM_ERRORS as exc:
                raise connection_lost(
                    self._where, reused=reused, received=received, error=exc
                ) from exc
            if not data and not received:
                raise connection_lost(self._where, reused=reused, received=received, error=None)
            received += len(data)
            response = conn.http.receive_data(data)
            if response is not None:
                return response
            if not data:  # pragma: no cover - the core always decides at the end of file
                raise connection_lost(self._where, reused=reused, received=received, error=None)
