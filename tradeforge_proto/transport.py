"""What both runtimes' transports share: where requests go, how sending fails, how far it got.

Pure values and exceptions: the runtimes open the sockets, and report a failure as a
``TransportError`` whose ``request_sent`` tells the core whether the server may have acted.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit

import attrs

from .core.errors import LocalProtocolError, TradeForgeError

__all__ = [
    "DEFAULT_PORTS",
    "ConnectTimeout",
    "Origin",
    "ReadTimeout",
    "SendProgress",
    "TransportError",
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
