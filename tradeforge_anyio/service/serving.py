"""The service on uvicorn, with the limits a desktop process next to a browser needs.

``build_server(app, host=..., port=..., limits=ServeLimits())`` is the uvicorn server ``tradeforge
serve`` runs: bounded request heads, keep-alive and shutdown times, a concurrency cap, and two
additions uvicorn lacks. A connection must complete each request head within ``header_timeout``
seconds (uvicorn only times out idle keep-alive connections), and a connection counts toward
``max_connections`` only while a request is in progress on it, so idle sockets, new or kept
alive, cannot lock callers out.
Repeated log records, such as the accept error the event loop logs many times a second while
descriptors are exhausted, are let through at most once a minute.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar, Final

import attrs
import h11
import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = [
    "REPEAT_INTERVAL",
    "HeadTimeoutProtocol",
    "RepeatLimit",
    "ServeLimits",
    "ServiceServer",
    "build_server",
]

REPEAT_INTERVAL: Final = 60.0
QUIETED_LOGGERS: Final = ("asyncio", "uvicorn.error")
MAX_KINDS: Final = 256


_POSITIVE: Final = attrs.validators.gt(0)


@attrs.frozen
class ServeLimits:
    """Connection limits of the served app; the defaults suit one desktop's callers."""

    header_timeout: float = attrs.field(default=10.0, validator=attrs.validators.gt(0.0))
    """Seconds a connection may take to send a request head (from connecting, or from the
    first byte of a next request on a kept-alive connection)."""
    keep_alive: int = attrs.field(default=75, validator=_POSITIVE)
    """Seconds an idle connection is kept after an answer. Longer than the callers' own pool
    timeout (httpx: 5 s), so a caller never sends on a connection the service is closing."""
    max_connections: int = attrs.field(default=200, validator=_POSITIVE)
    """Connections with a request sent, and requests in flight, before new requests get 503."""
    backlog: int = attrs.field(default=128, validator=_POSITIVE)
    """Connections the OS queues for accepting; also how often the event loop retries (and
    logs) a failed accept per attempt."""
    max_head: int = attrs.field(default=16 * 1024, validator=_POSITIVE)
    """Bytes of a request line and headers."""
    shutdown_grace: int = attrs.field(default=5, validator=attrs.validators.ge(0))
    """Seconds requests in flight may take to finish once a shutdown starts; then cancelled."""


class RepeatLimit(logging.Filter):
    """Lets a record through at most once per ``interval`` seconds for each first line of text,
    noting how many were held back meanwhile."""

    def __init__(self, interval: float = REPEAT_INTERVAL) -> None:
        super().__init__()
        self.interval = interval
        self._seen: dict[str, tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = f"{record.name}:{record.getMessage().partition(chr(10))[0]}"
        now = time.monotonic()
        if len(self._seen) > MAX_KINDS:
            self._forget(now)
        last, held = self._seen.get(key, (-self.interval, 0))
        if now - last < self.interval:
            self._seen[key] = (last, held + 1)
            return False
        self._seen[key] = (now, 0)
        if held:
            record.msg = f"{record.msg}\n({held} similar records held back)"
        return True

    def _forget(self, now: float) -> None:
        """Drop the kinds not seen for an interval, so varied texts cannot grow the table."""
        self._seen = {k: v for k, v in self._seen.items() if now - v[0] < self.interval}


@contextmanager
def _repeats_limited() -> Iterator[None]:
    """``RepeatLimit`` on the event loop's and uvicorn's loggers while the server runs."""
    limit = RepeatLimit()
    loggers = [logging.getLogger(name) for name in QUIETED_LOGGERS]
    for logger in loggers:
        logger.addFilter(limit)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(limit)


class HeadTimeoutProtocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline on each request head.

    Until a request head arrives, and again while it idles after an answer, a connection stays
    out of the server's connection set (which ``limit_concurrency`` counts), in the class's
    ``waiting`` set instead; uvicorn's keep-alive timer still closes an idle one.
    """

    header_timeout: ClassVar[float]
    waiting: ClassVar[set[HeadTimeoutProtocol]]
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.connections.discard(self)
        self.waiting.add(self)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self.waiting.discard(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is h11.IDLE:
            self._arm()  # a request head still incomplete
        else:
            self._disarm()
            self._engage()

    def on_response_complete(self) -> None:
        """Once answered, an idle kept-alive connection leaves the counted set again."""
        super().on_response_complete()
        idle = self.conn.their_state is h11.IDLE and self.conn.our_state is h11.IDLE
        if idle and not self.transport.is_closing() and self in self.connections:
            self.connections.discard(self)
            self.waiting.add(self)

    def _engage(self) -> None:
        """Join the server's connection set once a request arrived (not after an upgrade)."""
        if self in self.waiting:
            self.waiting.discard(self)
            if self.transport.get_protocol() is self and not self.transport.is_closing():
                self.connections.add(self)

    def _arm(self) -> None:
        if self._head_timer is None and not self.transport.is_closing():
            self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        self.close_waiting()

    def close_waiting(self) -> None:
        """Close a connection that has no request in progress."""
        if not self.transport.is_closing():
            self.transport.close()


def _protocol(header_timeout: float) -> type[HeadTimeoutProtocol]:
    """A protocol class of its own for one server: its timeout and its waiting connections."""
    attributes = {"header_timeout": header_timeout, "waiting": set()}
    return type("ServiceProtocol", (HeadTimeoutProtocol,), attributes)


class ServiceServer(uvicorn.Server):
    """uvicorn's server that also closes connections still waiting for a request on shutdown,
    and limits repeated log records while it runs."""

    def __init__(self, config: uvicorn.Config, protocol: type[HeadTimeoutProtocol]) -> None:
        super().__init__(config)
        self._protocol = protocol

    @property
    def waiting_connections(self) -> int:
        """Connections open but without a first request yet."""
        return len(self._protocol.waiting)

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        with _repeats_limited():
            await super().serve(sockets)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for connection in list(self._protocol.waiting):
            connection.close_waiting()
        await super().shutdown(sockets)


def build_server(
    app: ASGIApp,
    *,
    host: str,
    port: int,
    limits: ServeLimits | None = None,
    log_level: str = "warning",
) -> ServiceServer:
    """A uvicorn server for ``app`` on ``host:port`` within ``limits``."""
    limits = limits or ServeLimits()
    protocol = _protocol(limits.header_timeout)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        http=protocol,
        lifespan="on",
        # Deflating every small event message once per client costs more CPU than the bytes it
        # saves on a local or LAN link.
        ws_per_message_deflate=False,
        # The sans-IO implementation of websockets writes a message with the least work per send:
        # what one event costs times every client is most of a busy fan-out's CPU.
        ws="websockets-sansio",
        timeout_keep_alive=limits.keep_alive,
        timeout_graceful_shutdown=limits.shutdown_grace,
        limit_concurrency=limits.max_connections,
        backlog=limits.backlog,
        h11_max_incomplete_event_size=limits.max_head,
    )
    return ServiceServer(config, protocol)
