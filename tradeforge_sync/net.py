"""Sockets for the blocking runtime: a pool of keep-alive HTTP/1.1 connections to one origin.

HTTP itself is the core's ``HttpClientConnection``; this module only connects (TCP, then TLS with
the system trust store), writes the bytes the core produced, reads until the core has a response,
and turns socket failures into ``TransportError`` saying whether the request may have left. The
pool is thread-safe: any number of threads may call ``send`` at once.
"""

from __future__ import annotations

import contextlib
import errno
import math
import select
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Final, Self

import attrs

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


def default_ssl_context() -> ssl.SSLContext:
    """A client TLS context trusting the system's certificate store (truststore when present)."""
    try:
        import truststore
    except ImportError:  # pragma: no cover - truststore is a dependency
        return ssl.create_default_context()
    return truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def wait_readable(sockets: Sequence[socket.socket], timeout: float) -> list[socket.socket]:
    """The sockets among ``sockets`` with something to read, waiting at most ``timeout`` s."""
    if sys.platform == "win32":
        readable, _, _ = select.select(list(sockets), [], [], max(0.0, timeout))
        return list(readable)
    poller = select.poll()
    by_fd = {sock.fileno(): sock for sock in sockets}
    for fd in by_fd:
        poller.register(fd, select.POLLIN)
    ready = poller.poll(max(0, math.ceil(timeout * 1000)))
    return [by_fd[fd] for fd, _ in ready]


def _failed_connect(code: int, host: str, port: int) -> OSError:
    return OSError(code, f"connecting to {host}:{port} failed: {errno.errorcode.get(code, code)}")


def connect_unless(
    host: str,
    port: int,
    tls: ssl.SSLContext | None,
    *,
    timeout: float,
    wake: socket.socket,
    unwanted: Callable[[], bool],
) -> socket.socket | None:
    """A connected socket (TLS with ``tls``), or None once ``unwanted()``, checked on each wake.

    Whoever no longer wants the connection writes a byte to ``wake``'s peer, so closing never
    waits for a slow connect. TimeoutError past ``timeout``, OSError when it fails.
    """
    deadline = time.monotonic() + timeout
    error: OSError = OSError(f"{host}:{port} did not resolve")
    for family, kind, proto, _, address in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            code = sock.connect_ex(address)
            if code not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK):
                raise _failed_connect(code, host, port)
            if not _ready(sock, True, deadline, wake, unwanted):
                _close(sock)
                return None
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                raise _failed_connect(code, host, port)
            if tls is not None:
                sock = tls.wrap_socket(sock, server_hostname=host, do_handshake_on_connect=False)
                if not _handshake(sock, deadline, wake, unwanted):
                    _close(sock)
                    return None
            sock.setblocking(True)
            return sock
        except OSError as exc:
            _close(sock)
            error = exc
    raise error


def _handshake(
    sock: ssl.SSLSocket, deadline: float, wake: socket.socket, unwanted: Callable[[], bool]
) -> bool:
    while True:
        try:
            sock.do_handshake()
            return True
        except ssl.SSLWantReadError:
            writing = False
        except ssl.SSLWantWriteError:
            writing = True
        if not _ready(sock, writing, deadline, wake, unwanted):
            return False


def _ready(
    sock: socket.socket,
    writing: bool,
    deadline: float,
    wake: socket.socket,
    unwanted: Callable[[], bool],
) -> bool:
    """Wait until ``sock`` is ready; False once unwanted, TimeoutError past ``deadline``."""
    while not unwanted():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("connecting took longer than the handshake timeout")
        readers = [wake] if writing else [wake, sock]
        readable, writable, _ = select.select(readers, [sock] if writing else [], [], remaining)
        if wake in readable:
            with contextlib.suppress(OSError):
                wake.recv(READ_SIZE)
        if sock in readable or sock in writable:
            return True
    return False


def _stale(sock: socket.socket) -> bool:
    """True when an idle connection has something to read: the server closed it or misbehaves."""
    try:
        return bool(wait_readable([sock], 0))
    except (OSError, ValueError):
        return True


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.close()


@attrs.define(eq=False)
class _Connection:
    sock: socket.socket
    http: HttpClientConnection
    requests: int = 0  # requests written on this connection so far


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
        self._slots = threading.BoundedSemaphore(max_connections)
        self._lock = threading.Lock()  # guards everything below
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

    def send(self, request: HttpRequest, *, progress: SendProgress | None = None) -> HttpResponse:
        """Send ``request`` on an idle or new connection and return the whole response.

        Raises ``TransportError`` (``ConnectTimeout``, ``ReadTimeout``) when the transport fails and
        ``RemoteProtocolError`` when the server breaks HTTP. When interrupted, the connection is
        dropped and ``progress.request_sent`` says whether writing the request began.
        """
        progress = SendProgress() if progress is None else progress
        progress.request_sent = False
        self._check_open()
        with self._slots:
            self._check_open()
            conn = self._checkout()
            return self._use(conn, request, progress)

    def close(self) -> None:
        """Close the idle connections; connections in use close when their request ends."""
        with self._lock:
            self._closed = True
            idle = self._idle.clear()
        for conn in idle:
            self._discard(conn)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- connections ---

    def _check_open(self) -> None:
        if self._closed:
            raise LocalProtocolError(f"the connection pool for {self._where} is closed")

    def _discard(self, conn: _Connection) -> None:
        with self._lock:
            self._open -= 1
        conn.http.close()
        _close(conn.sock)

    def _checkout(self) -> _Connection:
        now = time.monotonic()
        while True:
            with self._lock:
                conn, expired = self._idle.take(now)
            for old in expired:
                self._discard(old)
            if conn is None:
                return self._connect()
            if not _stale(conn.sock):
                return conn
            self._discard(conn)

    def _checkin(self, conn: _Connection) -> None:
        surplus: list[_Connection] = []
        with self._lock:
            keep = not self._closed and conn.http.reusable
            if keep:
                surplus = self._idle.put(conn, time.monotonic())
        if not keep:
            surplus.append(conn)
        for extra in surplus:
            self._discard(extra)

    def _connect(self) -> _Connection:
        sock = self._open_socket(time.monotonic() + self._connect_timeout)
        with self._lock:
            self._connections_opened += 1
            self._open += 1
        http = HttpClientConnection(
            self.origin.host_header, max_response_size=self._max_response_size
        )
        return _Connection(sock, http)

    def _connect_timed_out(self) -> ConnectTimeout:
        return ConnectTimeout(
            f"connecting to {self._where} took longer than {self._connect_timeout:g} s",
            request_sent=False,
        )

    def _open_socket(self, deadline: float) -> socket.socket:
        try:
            tcp = socket.create_connection(
                (self.origin.host, self.origin.port), timeout=self._connect_timeout
            )
        except TimeoutError as exc:
            raise self._connect_timed_out() from exc
        except OSError as exc:
            raise TransportError(
                f"could not connect to {self._where}: {failure_reason(exc)}", request_sent=False
            ) from exc
        if self._ssl_context is None:
            return tcp
        established = False
        try:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._connect_timed_out()
            tcp.settimeout(remaining)
            tls = self._ssl_context.wrap_socket(tcp, server_hostname=self.origin.host)
            established = True
        except ssl.SSLCertVerificationError as exc:
            raise TransportError(
                f"TLS certificate of {self._where} was rejected: {exc.verify_message or exc}",
                request_sent=False,
            ) from exc
        except TimeoutError as exc:
            raise self._connect_timed_out() from exc
        except OSError as exc:
            raise TransportError(
                f"TLS handshake with {self._where} failed: {failure_reason(exc)}",
                request_sent=False,
            ) from exc
        finally:
            if not established:
                _close(tcp)
        return tls

    # --- one exchange ---

    def _use(self, conn: _Connection, request: HttpRequest, progress: SendProgress) -> HttpResponse:
        try:
            payload = conn.http.send_request(request)
        except LocalProtocolError:
            self._checkin(conn)  # nothing was written: the connection is still good
            raise
        try:
            response = self._exchange(conn, payload, progress)
        except BaseException:
            self._discard(conn)
            raise
        self._checkin(conn)
        return response

    def _exchange(self, conn: _Connection, payload: bytes, progress: SendProgress) -> HttpResponse:
        reused = conn.requests > 0
        conn.requests += 1
        deadline = time.monotonic() + self._read_timeout
        try:
            progress.request_sent = True
            with self._lock:
                self._requests_sent += 1
            try:
                conn.sock.settimeout(self._read_timeout)
                conn.sock.sendall(payload)
            except TimeoutError:
                raise
            except OSError as exc:
                raise TransportError(
                    f"writing the request to {self._where} failed: {failure_reason(exc)}",
                    request_sent=True,
                ) from exc
            return self._read_response(conn, reused, deadline)
        except TimeoutError as exc:
            raise ReadTimeout(
                f"no complete response from {self._where} within {self._read_timeout:g} s",
                request_sent=True,
            ) from exc

    def _read_response(self, conn: _Connection, reused: bool, deadline: float) -> HttpResponse:
        received = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            try:
                conn.sock.settimeout(remaining)
                data = conn.sock.recv(READ_SIZE)
            except TimeoutError:
                raise
            except OSError as exc:
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
