"""What both runtimes' transports share: where requests go, how sending fails, how far it got.

Pure values and exceptions: the runtimes open the sockets, and report a failure as a
``TransportError`` whose ``request_sent`` tells the core whether the server may have acted.
"""

from __future__ import annotations

from typing import Final, Generic, TypeVar
from urllib.parse import urlsplit

import attrs

from .core.errors import LocalProtocolError, TradeForgeError

__all__ = [
    "DEFAULT_PORTS",
    "ConnectTimeout",
    "IdleConnections",
    "Origin",
    "ReadTimeout",
    "SendProgress",
    "TransportError",
    "address_of",
    "connection_lost",
    "failure_reason",
]

DEFAULT_PORTS: Final = {"http": 80, "https": 443}


class TransportError(TradeForgeError):
    """Connecting, the TLS handshake, writing or reading failed or timed out.

    ``request_sent`` is True once writing the request began: the server may then have acted on it.
    """

    def __init__(self, message: str, *, request_sent: bool) -> None:
        super().__init__(message)
        self.request_sent = request_sent


class ConnectTimeout(TransportError):
    """Opening the connection (TCP and TLS) took longer than ``connect_timeout``."""


class ReadTimeout(TransportError):
    """The request was not written and wholly answered within ``read_timeout``."""


@attrs.frozen
class Origin:
    """Where requests go: scheme (``http`` or ``https``), host and port."""

    scheme: str
    host: str
    port: int

    @classmethod
    def from_url(cls, url: str) -> Origin:
        """The origin of ``url`` (its path and query are ignored); default ports are filled in."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS:
            raise LocalProtocolError(f"only http and https URLs are supported, got {scheme!r}")
        if parts.username is not None or parts.password is not None:
            raise LocalProtocolError("URLs with credentials in them are not supported")
        host = parts.hostname
        if not host:
            raise LocalProtocolError(f"the {scheme} URL has no host")
        try:
            port = parts.port
        except ValueError as exc:
            raise LocalProtocolError(f"the {scheme} URL for {host} has an invalid port") from exc
        if port == 0:
            raise LocalProtocolError(f"the {scheme} URL for {host} has port 0")
        return cls(scheme, host, DEFAULT_PORTS[scheme] if port is None else port)

    @property
    def host_header(self) -> str:
        """The ``Host`` header value: IPv6 addresses in brackets, the port unless the default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.port == DEFAULT_PORTS.get(self.scheme):
            return host
        return f"{host}:{self.port}"


@attrs.define
class SendProgress:
    """Filled in by ``ConnectionPool.send``; after a cancellation, says if the request left."""

    request_sent: bool = False


def failure_reason(error: BaseException) -> str:
    """What went wrong, preferring the OS error an exception wraps."""
    cause = error.__cause__ if error.__cause__ is not None else error
    return str(cause) or type(cause).__name__


def address_of(origin: Origin) -> str:
    """``host:port`` for messages, an IPv6 host in brackets."""
    host = f"[{origin.host}]" if ":" in origin.host else origin.host
    return f"{host}:{origin.port}"


def connection_lost(
    where: str, *, reused: bool, received: int, error: BaseException | None
) -> TransportError:
    """The error for a connection that ended before its answer was whole; the request had left.

    A reused keep-alive connection closed before any byte came back is the classic race with the
    server's idle timeout: the message says the request may still have been received.
    """
    detail = f": {failure_reason(error)}" if error is not None else ""
    if received:
        message = f"connection to {where} was lost while reading the response{detail}"
    elif reused:
        message = (
            f"{where} closed the reused keep-alive connection before answering{detail}; "
            "the request may have been received"
        )
    else:
        message = f"{where} closed the connection before answering{detail}"
    return TransportError(message, request_sent=True)


C = TypeVar("C")


class IdleConnections(Generic[C]):
    """The keep-alive policy of a connection pool: which idle connection a request reuses (the
    most recently used one that is still fresh) and which must be closed (expired, unusable, or
    past ``max_idle``). The runtime owns the sockets and says when each connection went idle."""

    def __init__(self, *, max_idle: int, expiry: float) -> None:
        if max_idle < 1 or not expiry > 0:
            raise ValueError(f"need max_idle >= 1 and expiry > 0, got {max_idle} and {expiry}")
        self._max_idle = max_idle
        self._expiry = expiry
        self._idle: list[tuple[C, float]] = []  # most recently used last

    def __len__(self) -> int:
        return len(self._idle)

    def take(self, now: float) -> tuple[C | None, list[C]]:
        """The freshest idle connection for the next request (or None), and those expired: the
        runtime closes them, and checks the one it gets before using it (``expired`` else)."""
        expired: list[C] = []
        while self._idle:
            conn, since = self._idle.pop()
            if now - since < self._expiry:
                return conn, expired
            expired.append(conn)
        return None, expired

    def put(self, conn: C, now: float) -> list[C]:
        """Keep ``conn`` idle from ``now``; the connections past ``max_idle`` to close."""
        self._idle.append((conn, now))
        surplus = []
        while len(self._idle) > self._max_idle:
            surplus.append(self._idle.pop(0)[0])
        return surplus

    def clear(self) -> list[C]:
        """Every idle connection, to close (the pool is closing)."""
        idle, self._idle = self._idle, []
        return [conn for conn, _ in idle]
