"""The server side of one SignalR hub connection, from the WebSocket upgrade to the close.

Pure and sans-IO, built on the server roles of ``websocket`` and ``signalr``. Bytes from the client
go in through ``receive_data(data, now)`` and come out as events; what the owner sends, and what the
connection answers by itself (the 101, the handshake answer, pongs, closes, keep-alive pings), waits
in one bounded outbox that the owner drains with ``data_to_send()`` and writes.

The owner (the simulator's hubs, a test harness) decides what the protocol leaves to the
application: whether to take the upgrade (``UpgradeRequested``: ``accept()`` or ``reject()``),
what each client invocation does (``InvocationReceived``: ``complete()``), what to push. The
machine keeps the rest, as ASP.NET Core does: the handshake policy (the ``json`` protocol only)
and its timeout, the server's keep-alive ping, and a bound on what a slow client may leave unread
(``max_outbox``).

Errors: misuse by the owner raises ``LocalProtocolError``. Nothing the client sends raises: a client
that breaks the protocol gets its answer queued (HTTP 400, a handshake error, a SignalR Close, a
WebSocket Close) and the connection ends with ``HubClosed``, like any other end. Whatever ends it,
one ``HubClosed`` says why: among the events of ``receive_data``, ``accept`` or ``handle_timer``,
and always in ``closed`` (the only place when a send passed the bound or the owner rejected). The
state is then CLOSED; the owner writes what ``data_to_send()`` still holds and closes the socket.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, Final, TypeAlias

import attrs

from ..core.errors import LocalProtocolError, RemoteProtocolError
from ..core.operations import Headers
from ..signalr import (
    RS,
    Close,
    CloseReceived,
    CompletionReceived,
    HandshakeReceived,
    HandshakeResponse,
    HubConnection,
    HubRole,
    InvocationReceived,
    PingReceived,
    StreamInvocationReceived,
    encode,
)
from ..websocket import (
    BytesReceived,
    ConnectionClosed,
    TextReceived,
    UpgradeRequested,
    WebSocketServer,
    WebSocketState,
    WsEvent,
)

__all__ = [
    "HANDSHAKE_TIMEOUT",
    "KEEPALIVE_INTERVAL",
    "MAX_OUTBOX",
    "SLOW_CLIENT_CODE",
    "SLOW_CLIENT_ERROR",
    "HubClosed",
    "HubOpened",
    "HubServerConnection",
    "HubServerEvent",
    "HubServerState",
]

KEEPALIVE_INTERVAL: Final = 15.0
"""Seconds without anything sent after which the server pings, as ASP.NET Core's default."""

HANDSHAKE_TIMEOUT: Final = 15.0
"""Seconds a client has, once its upgrade is accepted, to send its handshake (as ASP.NET Core)."""

MAX_OUTBOX: Final = 4 * 1024 * 1024
"""Default bound, in bytes, on what may wait for one client (queued plus reported unwritten)."""

SLOW_CLIENT_ERROR: Final = "Connection closed: the client is too slow to read what it is sent."
"""The error of the SignalR Close sent when a client's outbox would pass ``max_outbox``."""

SLOW_CLIENT_CODE: Final = 1013
"""The WebSocket close code sent then: Try Again Later (the client may reconnect)."""

_MAX_MESSAGE_SIZE: Final = 4 * 1024 * 1024
_JSON_VERSION: Final = 2  # the newest json protocol version ASP.NET Core speaks; older ones too
# ASP.NET Core's own texts for the Close after a client's protocol error and for a bad handshake.
_PROTOCOL_ERROR: Final = "Connection closed with an error."
_HANDSHAKE_ERROR: Final = "An unexpected error occurred during connection handshake."


class HubServerState(enum.Enum):
    """Where a hub server connection stands."""

    CONNECTING = "connecting"  # reading the client's upgrade request
    UPGRADE_PENDING = "upgrade_pending"  # the request is in; the owner accepts or rejects it
    HANDSHAKING = "handshaking"  # WebSocket open; waiting for the SignalR handshake
    OPEN = "open"  # hub messages flow both ways
    CLOSING = "closing"  # the owner closed; waiting for the client's WebSocket Close
    CLOSED = "closed"  # over: write data_to_send(), then close the socket


_S = HubServerState
_TRANSITIONS: Final[Mapping[HubServerState, frozenset[HubServerState]]] = {
    _S.CONNECTING: frozenset({_S.UPGRADE_PENDING, _S.CLOSED}),
    _S.UPGRADE_PENDING: frozenset({_S.HANDSHAKING, _S.CLOSED}),
    _S.HANDSHAKING: frozenset({_S.OPEN, _S.CLOSING, _S.CLOSED}),
    _S.OPEN: frozenset({_S.CLOSING, _S.CLOSED}),
    _S.CLOSING: frozenset({_S.CLOSED}),
    _S.CLOSED: frozenset(),
}
_LIVE: Final = frozenset({_S.HANDSHAKING, _S.OPEN})  # the WebSocket is open and may carry data
_OVER: Final = frozenset({_S.CLOSING, _S.CLOSED})


# ---------------------------------------------------------------------------------------------
# Events


@attrs.frozen
class HubOpened:
    """The client's handshake was accepted: invocations may arrive, pushes may be sent."""

    protocol: str
    version: int


@attrs.frozen
class HubClosed:
    """The connection is over (state CLOSED): write ``data_to_send()``, then close the socket.

    ``by_peer``: the client ended it (SignalR Close, WebSocket Close, end of file). Otherwise the
    server did: ``close()`` once the client acknowledged, ``reject()``, a refused handshake, a
    protocol violation by the client, or the outbox bound; ``reason`` says which. ``code`` is the
    WebSocket close code that ended it (the client's, ours, 1006 when the socket just ended), None
    when the connection never became a WebSocket.
    """

    reason: str
    by_peer: bool
    code: int | None = None


HubServerEvent: TypeAlias = (
    UpgradeRequested
    | HubOpened
    | InvocationReceived
    | CompletionReceived
    | PingReceived
    | HubClosed
)
"""What ``receive_data`` and ``accept`` report. Pings and completions are the client's own."""


def _handshake_refusal(protocol: str, version: int) -> str | None:
    """Why a handshake is refused, in ASP.NET Core's words; None when it is acceptable."""
    if protocol != "json":
        return f"Requested protocol '{protocol}' is not available."
    if version > _JSON_VERSION:
        return f"The server does not support version {version} of the 'json' protocol."
    return None


def _code_text(code: int, reason: str) -> str:
    return f"{code} {reason}" if reason else str(code)


# ---------------------------------------------------------------------------------------------
# The connection


class HubServerConnection:
    """One client of a hub, served: upgrade, handshake, invocations, pushes, keep-alive, close.

    ``keepalive_interval`` (None: never ping) is how long the server stays quiet before it pings;
    ``handshake_timeout`` (None: wait forever) how long the client has to send its handshake;
    ``max_outbox`` bounds the bytes waiting for the client; ``max_message_size`` bounds what the
    client may send in one message. Sends made without a clock are dated at the latest ``now``
    the machine was given (by ``receive_data`` or ``handle_timer``): call ``handle_timer(now)``
    before sending after a quiet spell, and keep-alive pings are never late.
    """

    __slots__ = (
        "_closed",
        "_closing_reason",
        "_handshake_by",
        "_handshake_error",
        "_handshake_timeout",
        "_hub",
        "_keepalive",
        "_last_sent",
        "_max_outbox",
        "_now",
        "_out",
        "_overflowed",
        "_pending",
        "_queued",
        "_state",
        "_unwritten",
        "_ws",
    )

    def __init__(
        self,
        *,
        keepalive_interval: float | None = KEEPALIVE_INTERVAL,
        handshake_timeout: float | None = HANDSHAKE_TIMEOUT,
        max_outbox: int = MAX_OUTBOX,
        max_message_size: int = _MAX_MESSAGE_SIZE,
    ) -> None:
        if keepalive_interval is not None and not keepalive_interval > 0:
            raise LocalProtocolError("keepalive_interval must be positive (or None for no pings)")
        if handshake_timeout is not None and not handshake_timeout > 0:
            raise LocalProtocolError("handshake_timeout must be positive (or None for no limit)")
        if max_outbox < 1:
            raise LocalProtocolError("max_outbox must be at least 1 byte")
        self._ws = WebSocketServer(max_message_size=max_message_size)
        self._hub = HubConnection(HubRole.SERVER, max_buffer_size=max_message_size)
        self._state = HubServerState.CONNECTING
        self._keepalive = keepalive_interval
        self._handshake_timeout = handshake_timeout
        self._handshake_by: float | None = None  # when the handshake is due
        self._max_outbox = max_outbox
        self._out: list[bytes] = []
        self._queued = 0  # bytes in _out
        self._unwritten = 0  # bytes the owner drained but reports as not yet written
        self._now = 0.0  # the latest time the owner gave
        self._last_sent = 0.0  # when the last SignalR message was queued
        self._pending: dict[str, int] = {}  # client invocation ids awaiting complete(), counted
        self._handshake_error: str | None = None
        self._closing_reason = ""
        self._closed: HubClosed | None = None
        self._overflowed = False

    def __repr__(self) -> str:
        return f"HubServerConnection(state={self._state.name}, outbox={self.outbox_size})"

    # -- state ----------------------------------------------------------------------------

    @property
    def state(self) -> HubServerState:
        """The connection's current state."""
        return self._state

    @property
    def closed(self) -> HubClosed | None:
        """How the connection ended, once it is CLOSED (also after a send hit the bound)."""
        return self._closed

    @property
    def overflowed(self) -> bool:
        """True once the outbox bound closed the connection: stop writing and close the socket."""
        return self._overflowed

    @property
    def outbox_size(self) -> int:
        """Bytes waiting for the client: queued here plus those reported unwritten."""
        return self._queued + self._unwritten

    @property
    def max_outbox(self) -> int:
        """The bound on ``outbox_size`` past which the client is closed as too slow."""
        return self._max_outbox

    @property
    def pending_invocations(self) -> frozenset[str]:
        """Ids of client invocations still waiting for ``complete()``."""
        return frozenset(self._pending)

    def _move(self, state: HubServerState) -> None:
        assert state in _TRANSITIONS[self._state], f"{self._state.name} -> {state.name}"
        self._state = state

    def _end(self, reason: str, *, by_peer: bool, code: int | None) -> HubClosed:
        """Move to CLOSED and remember (and return) the one ``HubClosed`` that says why."""
        self._move(HubServerState.CLOSED)
        self._pending.clear()
        closed = HubClosed(reason, by_peer, code)
        self._closed = closed
        return closed

    # -- receiving ------------------------------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> list[HubServerEvent]:
        """Feed bytes read from the client (``b""`` at end of file); returns what they complete.

        Never raises for what the client sends (see the module docstring). Drain
        ``data_to_send()`` afterwards: receiving may queue answers. Bytes after CLOSED are ignored.
        """
        self._now = now
        if self._state is HubServerState.CLOSED:
            return []
        out: list[HubServerEvent] = []
        try:
            events = self._ws.receive_data(data)
        except RemoteProtocolError as exc:
            # Only while the upgrade is read; the WebSocket layer queued its HTTP answer if any.
            self._pull()
            out.append(self._end(str(exc), by_peer=not data, code=None))
            return out
        self._on_ws_events(events, out)
        self._settle(out)
        return out

    def _on_ws_events(self, events: list[WsEvent], out: list[HubServerEvent]) -> None:
        for event in events:
            state = self._state
            if state is HubServerState.CLOSED:
                return
            if isinstance(event, UpgradeRequested):
                self._move(HubServerState.UPGRADE_PENDING)
                out.append(event)
            elif isinstance(event, (TextReceived, BytesReceived)):
                if state in _LIVE:
                    self._on_payload(event.data, out)
            elif isinstance(event, ConnectionClosed):
                out.append(self._ws_closed(event))
            # WebSocket pings are answered by the WebSocket layer; pongs need nothing.

    def _ws_closed(self, event: ConnectionClosed) -> HubClosed:
        text = _code_text(event.code, event.reason)
        if event.by_peer:
            reason = f"the client closed the WebSocket ({text})"
        elif self._state is HubServerState.CLOSING:
            reason = self._closing_reason
        else:
            reason = f"the client broke the WebSocket protocol ({text})"
        return self._end(reason, by_peer=event.by_peer, code=event.code)

    def _on_payload(self, data: str | bytes, out: list[HubServerEvent]) -> None:
        try:
            events = self._hub.receive(data)
        except RemoteProtocolError as exc:
            out.append(self._violation(str(exc)))
            return
        for event in events:
            if isinstance(event, HandshakeReceived):
                self._on_handshake(event, out)
                if self._state is not HubServerState.OPEN:
                    return
            elif isinstance(event, InvocationReceived):
                invocation_id = event.invocation_id
                if invocation_id is not None:
                    self._pending[invocation_id] = self._pending.get(invocation_id, 0) + 1
                out.append(event)
            elif isinstance(event, (CompletionReceived, PingReceived)):
                out.append(event)
            elif isinstance(event, StreamInvocationReceived):
                # A hub served by this machine has no streaming methods; the client gets its end.
                self._hub.complete(
                    event.invocation_id,
                    error=f"Failed to invoke '{event.target}': this hub has no streaming methods.",
                    has_result=False,
                )
                self._queue_text(self._hub.data_to_send())
            elif isinstance(event, CloseReceived):
                self._ws.close(1000)
                reason = "the client closed the hub" + (f": {event.error}" if event.error else "")
                out.append(self._end(reason, by_peer=True, code=1000))
                return
            # Stream items, cancellations, acks and sequences need no answer from such a hub.

    def _on_handshake(self, event: HandshakeReceived, out: list[HubServerEvent]) -> None:
        error = self._handshake_error or _handshake_refusal(event.protocol, event.version)
        if error is not None:
            self._hub.reject_handshake(error)
            self._queue_text(self._hub.data_to_send())
            self._ws.close(1000)
            out.append(self._end(f"handshake refused: {error}", by_peer=False, code=1000))
            return
        self._hub.accept_handshake()
        self._queue_text(self._hub.data_to_send())
        self._move(HubServerState.OPEN)
        out.append(HubOpened(event.protocol, event.version))

    def _violation(self, problem: str) -> HubClosed:
        """The client broke SignalR: tell it as ASP.NET Core does, close with 1002, report."""
        if self._state is HubServerState.OPEN:
            self._queue_text(encode(Close(_PROTOCOL_ERROR)))
        else:
            self._queue_text(encode(HandshakeResponse(_HANDSHAKE_ERROR)))
        self._ws.close(1002, "protocol error")
        return self._end(
            f"the client broke the SignalR protocol: {problem}", by_peer=False, code=1002
        )

    def _settle(self, out: list[HubServerEvent]) -> None:
        """Queue what the WebSocket layer answered by itself, and hold the bound on it too."""
        self._pull()
        if self._state in _LIVE and self.outbox_size > self._max_outbox:
            out.append(self._overflow())

    # -- the upgrade ----------------------------------------------------------------------

    def accept(
        self, *, headers: Headers = (), handshake_error: str | None = None
    ) -> list[HubServerEvent]:
        """Accept the pending upgrade (101); the client's SignalR handshake comes next.

        ``handshake_error`` set refuses that handshake with this text whatever its protocol (a hub
        that is draining, or a test of a client's refusal path). Returns the events of bytes the
        client sent right behind its request: handle them like those of ``receive_data``.
        """
        self._require_upgrade("accept")
        if handshake_error == "":
            raise LocalProtocolError("a handshake refusal needs a text (or None to accept)")
        events = self._ws.accept(headers=headers)
        self._handshake_error = handshake_error
        if self._handshake_timeout is not None:
            self._handshake_by = self._now + self._handshake_timeout
        self._move(HubServerState.HANDSHAKING)
        out: list[HubServerEvent] = []
        self._pull()
        self._on_ws_events(events, out)
        self._settle(out)
        return out

    def reject(self, status: int, *, body: bytes = b"", headers: Headers = ()) -> None:
        """Refuse the pending upgrade with an HTTP response (401: bad token, 503: hub down).

        The state becomes CLOSED; write ``data_to_send()`` and close the socket.
        """
        self._require_upgrade("reject")
        self._ws.reject(status, headers, body)
        self._pull()
        self._end(f"upgrade refused with HTTP {status}", by_peer=False, code=None)

    def _require_upgrade(self, action: str) -> None:
        if self._state is not HubServerState.UPGRADE_PENDING:
            raise LocalProtocolError(
                f"cannot {action}: no upgrade request is pending ({self._state.name})"
            )

    # -- sending --------------------------------------------------------------------------

    def _can_send(self, action: str) -> bool:
        """True when OPEN, False once closing or closed; LocalProtocolError before OPEN."""
        state = self._state
        if state is HubServerState.OPEN:
            return True
        if state in _OVER:
            return False
        raise LocalProtocolError(f"cannot {action} before the handshake completed ({state.name})")

    def send(self, target: str, *arguments: Any) -> bool:
        """Push one invocation of ``target`` (no answer expected), as one WebSocket message.

        True when queued. False when nothing was: the connection is closing or closed, by now or
        by this very send passing ``max_outbox`` (then ``closed`` and ``overflowed`` say so).
        """
        if not self._can_send("send"):
            return False
        self._hub.send(target, *arguments)
        return self._send_text(self._hub.data_to_send())

    def send_records(self, records: str) -> bool:
        """Send records encoded beforehand (RS-terminated, often once for many clients) as one
        WebSocket message, as they are; True when queued, False as for ``send``."""
        if not records.endswith(RS):
            raise LocalProtocolError("records must be SignalR records, each ending with RS")
        if not self._can_send("send records"):
            return False
        return self._send_text(records)

    def complete(self, invocation_id: str | None, error: str | None = None) -> bool:
        """Answer a client invocation: done, or failed with ``error``; True when queued.

        An invocation without an id expects no answer: None queues nothing (False). So does a
        connection that is closing or closed. An id the client did not send, or one already
        answered, is a LocalProtocolError.
        """
        if invocation_id is None or self._state in _OVER:
            return False
        count = self._pending.get(invocation_id)
        if count is None:
            raise LocalProtocolError(f"no client invocation {invocation_id!r} awaits a completion")
        if count == 1:
            del self._pending[invocation_id]
        else:
            self._pending[invocation_id] = count - 1
        self._hub.complete(invocation_id, error=error, has_result=False)
        return self._send_text(self._hub.data_to_send())

    def ping(self) -> bool:
        """Send a SignalR keep-alive Ping now; True when queued, False as for ``send``."""
        if not self._can_send("ping"):
            return False
        self._hub.ping()
        return self._send_text(self._hub.data_to_send())

    def ping_websocket(self, payload: bytes = b"") -> bool:
        """Send a WebSocket Ping (the client's layer answers it; SignalR never sees it).

        It does not count as activity for the keep-alive: browsers cannot see such pings.
        """
        if not self._can_send("ping"):
            return False
        self._ws.ping(payload)
        return self._append_bounded(self._ws.data_to_send())

    def close(self, error: str | None = None, allow_reconnect: bool = False) -> None:
        """Close the hub: a SignalR Close (with ``error``, and whether the client may come back),
        then a WebSocket Close 1000. The state becomes CLOSING; ``HubClosed`` follows when the
        client answers, or write ``data_to_send()`` and close the socket without waiting.

        Before the handshake there is no hub to close: only the WebSocket is closed. Before the
        upgrade was accepted nothing is said: the connection is CLOSED at once (drop the
        socket). Once closing or closed this does nothing.
        """
        if self._state is HubServerState.OPEN:
            self._queue_text(encode(Close(error, True if allow_reconnect else None)))
        self._start_close(1000, "", error or "closed by the server")

    def close_websocket(self, code: int = 1000, reason: str = "") -> None:
        """Close the WebSocket alone, with a code of one's own (1001 going away, 4000-4999), and
        no SignalR Close first; otherwise as ``close()``."""
        self._start_close(
            code, reason, f"the server closed the WebSocket ({_code_text(code, reason)})"
        )

    def _start_close(self, code: int, reason: str, why: str) -> None:
        state = self._state
        if state in _OVER:
            return
        self._ws.close(code, reason)
        if state in _LIVE:
            self._closing_reason = why
            self._pull()
            self._move(HubServerState.CLOSING)
        else:
            self._end(f"{why} before the upgrade was accepted", by_peer=False, code=None)

    # -- the outbox -----------------------------------------------------------------------

    def _pull(self) -> None:
        """Move what the WebSocket layer queued into the outbox, unchecked."""
        data = self._ws.data_to_send()
        if data:
            self._out.append(data)
            self._queued += len(data)

    def _queue_text(self, text: str) -> None:
        """Queue one SignalR payload the machine sends by itself; the bound is held afterwards.

        Nothing is queued when the WebSocket already ended further on in the same read: its
        close comes next among the events being handled, and ends the connection.
        """
        if self._ws.state is not WebSocketState.OPEN:
            return
        self._ws.send_text(text)
        self._pull()
        self._last_sent = self._now

    def _send_text(self, text: str) -> bool:
        """Queue one SignalR payload for the owner, within the bound."""
        self._ws.send_text(text)
        if not self._append_bounded(self._ws.data_to_send()):
            return False
        self._last_sent = self._now
        return True

    def _append_bounded(self, frame: bytes) -> bool:
        if self.outbox_size + len(frame) > self._max_outbox:
            self._overflow()
            return False
        self._out.append(frame)
        self._queued += len(frame)
        return True

    def _overflow(self) -> HubClosed:
        """The client is too slow: close it on purpose, rather than let its outbox grow.

        What is already queued stays (in order), with the Close behind it; the owner writes what
        it can within its own time bound and closes the socket.
        """
        self._overflowed = True
        if self._state is HubServerState.OPEN:
            self._queue_text(encode(Close(SLOW_CLIENT_ERROR, True)))
        self._ws.close(SLOW_CLIENT_CODE, "client too slow")
        self._pull()
        return self._end(
            f"outbox over {self._max_outbox} bytes: {SLOW_CLIENT_ERROR}",
            by_peer=False,
            code=SLOW_CLIENT_CODE,
        )

    def data_to_send(self) -> bytes:
        """Everything queued for the client since the last call (``b""`` when nothing is)."""
        if not self._out:
            return b""
        data = b"".join(self._out)
        self._out.clear()
        self._queued = 0
        return data

    def report_unwritten(self, nbytes: int) -> None:
        """Tell how many drained bytes are still not written to the socket (0 once they are).

        They count against ``max_outbox`` with what is queued: an owner whose writes block on a
        client that does not read reports them, and the bound then covers all it holds.
        """
        if nbytes < 0:
            raise LocalProtocolError("unwritten bytes cannot be negative")
        self._unwritten = nbytes

    # -- timers ---------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When ``handle_timer`` has something to do: the handshake's limit, or the next ping."""
        state = self._state
        if state is HubServerState.HANDSHAKING:
            return self._handshake_by
        if state is HubServerState.OPEN and self._keepalive is not None:
            return self._last_sent + self._keepalive
        return None

    def handle_timer(self, now: float) -> list[HubServerEvent]:
        """Tell the time: ping when nothing was sent for ``keepalive_interval``, close a client
        whose handshake is late. Returns ``[HubClosed]`` when that ended the connection (a late
        handshake, or a ping past the bound), else nothing; drain ``data_to_send()`` afterwards.
        """
        self._now = now
        deadline = self.next_deadline()
        if deadline is None or now < deadline:
            return []
        if self._state is HubServerState.HANDSHAKING:
            self._ws.close(1008, "handshake timed out")
            self._pull()
            reason = f"the client sent no handshake within {self._handshake_timeout} s"
            return [self._end(reason, by_peer=False, code=1008)]
        if self.ping():
            return []
        assert self._closed is not None
        return [self._closed]
