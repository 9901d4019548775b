"""A sans-IO WebSocket connection, client or server, built on wsproto.

Bytes read from the transport go in through ``receive_data`` (``b""`` at end of file) and come out
as events. Messages, pings and closes go into an outbound buffer that the runtime drains with
``data_to_send()``; the buffer also carries the replies the connection makes on its own (Pong to a
Ping, Close to a Close), so drain it after every ``receive_data``. Messages are always delivered
whole and never larger than ``max_message_size``. No extension (permessage-deflate) is negotiated.

Lifecycle: CONNECTING until the upgrade is accepted (OPEN) or refused (REJECTED). ``close()`` moves
OPEN to CLOSING. ``ConnectionClosed`` is emitted exactly once, and from then on the state is CLOSED:
the runtime writes what ``data_to_send()`` still holds and closes the transport; later bytes are
ignored.
"""

from __future__ import annotations

import contextlib
import enum
import re
from collections.abc import Mapping, Sequence
from typing import Final, TypeAlias
from urllib.parse import parse_qsl, quote, unquote_plus, urlencode, urlsplit

import attrs
import h11
from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    Pong,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.handshake import H11Handshake
from wsproto.utilities import LocalProtocolError as _WsLocalProtocolError
from wsproto.utilities import RemoteProtocolError as _WsRemoteProtocolError

from .core.errors import LocalProtocolError, RemoteProtocolError
from .core.operations import Headers

__all__ = [
    "Accepted",
    "BytesReceived",
    "ConnectionClosed",
    "PingReceived",
    "PongReceived",
    "Rejected",
    "TextReceived",
    "UpgradeRequested",
    "WebSocketClient",
    "WebSocketServer",
    "WebSocketState",
    "WsEndpoint",
    "WsEvent",
    "ws_endpoint",
]

_MASK: Final = "********"
_SECRET_PARAMS: Final = frozenset({"access_token"})
_SECRET_HEADERS: Final = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
_DEFAULT_MAX_MESSAGE_SIZE: Final = 4 * 1024 * 1024
# Data a client may pipeline behind its upgrade request before the server decides, beyond one
# full message: room for frame headers and control frames.
_EARLY_DATA_SLACK: Final = 64 * 1024
_MAX_CONTROL_PAYLOAD: Final = 125  # RFC 6455, 5.5
_MAX_CLOSE_REASON: Final = _MAX_CONTROL_PAYLOAD - 2  # the code takes two bytes
_KNOWN_OPCODES: Final = frozenset({0, 1, 2, 8, 9, 10})  # continuation, text, binary, controls
# The end of an HTTP header block, as h11 finds it.
_HEAD_END: Final = re.compile(rb"\n\r?\n")
_TOKEN: Final = re.compile(r"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")
_TARGET: Final = re.compile(r"/[\x21-\x7e]*")
_HOST: Final = re.compile(r"[^\s/?#@\\]+")
# Scheme -> (uses TLS, default port).
_SCHEMES: Final = {"ws": (False, 80), "http": (False, 80), "wss": (True, 443), "https": (True, 443)}
# Characters left as they are when a URL's path or query is made safe for a request target.
_URL_SAFE: Final = "/?:@!$&'()*+,;=%"


class WebSocketState(enum.Enum):
    """Where a WebSocket connection stands."""

    CONNECTING = "connecting"  # the opening handshake is under way
    OPEN = "open"  # messages flow both ways
    CLOSING = "closing"  # we sent Close and wait for the peer's
    CLOSED = "closed"  # over: flush data_to_send(), then close the transport
    REJECTED = "rejected"  # the upgrade was refused with an HTTP response


_S = WebSocketState
_TRANSITIONS: Final[Mapping[WebSocketState, frozenset[WebSocketState]]] = {
    _S.CONNECTING: frozenset({_S.OPEN, _S.REJECTED, _S.CLOSED}),
    _S.OPEN: frozenset({_S.CLOSING, _S.CLOSED}),
    _S.CLOSING: frozenset({_S.CLOSED}),
    _S.CLOSED: frozenset(),
    _S.REJECTED: frozenset(),
}


def _mask_target(target: str) -> str:
    """``target`` with the value of every secret query parameter replaced by a mask."""
    path, sep, query = target.partition("?")
    if not sep:
        return target
    params = []
    for param in query.split("&"):
        name, eq, _ = param.partition("=")
        params.append(f"{name}={_MASK}" if eq and unquote_plus(name) in _SECRET_PARAMS else param)
    return f"{path}?{'&'.join(params)}"


def _masked_query(query: tuple[tuple[str, str], ...]) -> str:
    return repr(tuple((k, _MASK if k in _SECRET_PARAMS else v) for k, v in query))


def _masked_headers(headers: Headers) -> str:
    return repr(tuple((k, _MASK if k.lower() in _SECRET_HEADERS else v) for k, v in headers))


def _encode_headers(headers: Headers) -> list[tuple[bytes, bytes]]:
    return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]


def _decode_headers(headers: Sequence[tuple[bytes, bytes]]) -> Headers:
    return tuple(
        (name.decode("latin-1").lower(), value.decode("latin-1")) for name, value in headers
    )


def _sendable_close_code(code: int) -> bool:
    """True for the codes an endpoint may put in a Close frame (RFC 6455, 7.4)."""
    return 1000 <= code <= 1003 or 1007 <= code <= 1013 or 3000 <= code <= 4999


# ---------------------------------------------------------------------------------------------
# Events


@attrs.frozen
class Accepted:
    """Client: the server accepted the upgrade; messages may flow."""

    subprotocol: str | None
    headers: Headers = attrs.field(repr=_masked_headers)


@attrs.frozen
class Rejected:
    """Client: the server answered the upgrade with an HTTP error (401 for a bad token, say)."""

    status: int
    headers: Headers = attrs.field(repr=_masked_headers)
    body: bytes  # at most max_message_size bytes of the response body


@attrs.frozen
class UpgradeRequested:
    """Server: a client asks to upgrade; answer with ``accept()`` or ``reject()``.

    ``query`` is the URL-decoded query string; ``headers`` includes ``host``.
    """

    path: str
    query: tuple[tuple[str, str], ...] = attrs.field(repr=_masked_query)
    headers: Headers = attrs.field(repr=_masked_headers)
    subprotocols: tuple[str, ...]


@attrs.frozen
class TextReceived:
    """A text message; with ``text_pieces`` on, also each piece of one still arriving.

    ``final`` is False for a piece that more of the same message follows.
    """

    data: str
    final: bool = True


@attrs.frozen
class BytesReceived:
    """One complete binary message."""

    data: bytes


@attrs.frozen
class PingReceived:
    """The peer pinged us; the Pong is already queued in the outbound buffer."""

    payload: bytes


@attrs.frozen
class PongReceived:
    """The peer answered a ping (or sent an unsolicited pong)."""

    payload: bytes


@attrs.frozen
class ConnectionClosed:
    """The connection is over; the state is CLOSED.

    ``by_peer`` says who ended it. True: the peer sent Close (``code`` and ``reason`` are its own;
    our reply is queued) or vanished without one (code 1006). False: we did, by ``close()`` (our
    code, once the peer acknowledged) or because the peer broke the protocol (1002, 1007) or sent
    a message over ``max_message_size`` (1009); in those cases our Close frame is queued.
    """

    code: int
    reason: str
    by_peer: bool


WsEvent: TypeAlias = (
    Accepted
    | Rejected
    | UpgradeRequested
    | TextReceived
    | BytesReceived
    | PingReceived
    | PongReceived
    | ConnectionClosed
)


# ---------------------------------------------------------------------------------------------
# Connections


class _WebSocketConnection:
    """What both roles share: messages, pings, the closing handshake and the outbound buffer."""

    def __init__(
        self, role: ConnectionType, max_message_size: int, text_pieces: bool = False
    ) -> None:
        if max_message_size < 1:
            raise LocalProtocolError("max_message_size must be at least 1")
        self._max_message_size = max_message_size
        self._text_pieces = text_pieces
        self._handshake = H11Handshake(role)
        self._conn: Connection | None = None
        self._state = WebSocketState.CONNECTING
        self._out: list[bytes] = []
        # Pieces of a message still arriving, and their size in bytes so far.
        self._text_parts: list[str] = []
        self._bytes_parts: list[bytes] = []
        self._partial_size = 0
        self._local_close = (1000, "")
        # The frame splitter in front of wsproto (see _split_frames): only a client reads
        # server frames, which are never masked.
        self._split = role is ConnectionType.CLIENT
        self._head = b""  # the start of a frame whose header is not complete yet
        self._owed = 0  # bytes of a frame handed to wsproto that wsproto still has to get
        self._fragmented = False  # a message in fragments is under way (wsproto assembles it)

    @property
    def state(self) -> WebSocketState:
        """The connection's current state."""
        return self._state

    def _move(self, state: WebSocketState) -> None:
        assert state in _TRANSITIONS[self._state], f"{self._state.name} -> {state.name}"
        self._state = state

    # -- sending --------------------------------------------------------------------------------

    def data_to_send(self) -> bytes:
        """Everything queued for the peer since the last call (``b""`` when nothing is)."""
        data = b"".join(self._out)
        self._out.clear()
        return data

    def _open_connection(self, action: str) -> Connection:
        if self._state is not WebSocketState.OPEN:
            raise LocalProtocolError(f"cannot {action} while the connection is {self._state.name}")
        conn = self._conn
        assert conn is not None
        return conn

    def send_text(self, text: str) -> None:
        """Queue one text message."""
        conn = self._open_connection("send a message")
        try:
            self._out.append(conn.send(TextMessage(data=text)))
        except UnicodeEncodeError as exc:
            raise LocalProtocolError(f"text cannot be encoded as UTF-8: {exc.reason}") from exc

    def send_bytes(self, data: bytes) -> None:
        """Queue one binary message."""
        conn = self._open_connection("send a message")
        self._out.append(conn.send(BytesMessage(data=data)))

    def ping(self, payload: bytes = b"") -> None:
        """Queue a Ping; the peer's Pong arrives as ``PongReceived``."""
        if len(payload) > _MAX_CONTROL_PAYLOAD:
            raise LocalProtocolError(f"a ping payload holds at most {_MAX_CONTROL_PAYLOAD} bytes")
        conn = self._open_connection("ping")
        self._out.append(conn.send(Ping(payload=payload)))

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake; ``ConnectionClosed`` follows once the peer answers.

        A no-op when already closing, closed or rejected. Before the handshake has completed there
        is nothing to say on the wire: the connection is abandoned (CLOSED) and the runtime simply
        drops the transport.
        """
        if not _sendable_close_code(code):
            raise LocalProtocolError(f"close code {code} may not be sent")
        try:
            encoded = reason.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise LocalProtocolError(f"close reason cannot be encoded: {exc.reason}") from exc
        if len(encoded) > _MAX_CLOSE_REASON:
            raise LocalProtocolError(f"a close reason holds at most {_MAX_CLOSE_REASON} bytes")
        if self._state is WebSocketState.OPEN:
            conn = self._conn
            assert conn is not None
            self._out.append(conn.send(CloseConnection(code=code, reason=reason)))
            self._local_close = (code, reason)
            self._move(WebSocketState.CLOSING)
        elif self._state is WebSocketState.CONNECTING:
            self._move(WebSocketState.CLOSED)

    # -- receiving ------------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[WsEvent]:
        """Feed bytes read from the peer (``b""`` at end of file); returns the events they complete.

        Drain ``data_to_send()`` afterwards: receiving may queue replies. Raises
        ``RemoteProtocolError`` (state CLOSED) when the opening handshake fails; once open, a peer
        that breaks the protocol gets ``ConnectionClosed`` instead. Bytes after CLOSED are ignored.
        """
        state = self._state
        if state is WebSocketState.OPEN or state is WebSocketState.CLOSING:
            if not data:
                self._move(WebSocketState.CLOSED)
                return [ConnectionClosed(1006, "connection lost", by_peer=True)]
            conn = self._conn
            assert conn is not None
            if self._split and state is WebSocketState.OPEN:
                return self._split_frames(conn, self._head + data if self._head else data)
            if self._head:  # closing: wsproto takes everything from here on
                data, self._head = self._head + data, b""
            conn.receive_data(data)
            return self._receive_frames(conn, [])
        if state is WebSocketState.CONNECTING:
            return self._receive_handshake(data)
        return []

    def _receive_handshake(self, data: bytes) -> list[WsEvent]:
        raise NotImplementedError

    def _split_frames(self, conn: Connection, data: bytes) -> list[WsEvent]:
        """Cut ``data`` at frame boundaries: each complete, final, unmasked text frame outside a
        fragmented message is decoded here; every other frame (control, fragment, binary,
        masked, reserved bits, invalid UTF-8, one not complete yet) goes to wsproto whole, or
        its start with the rest owed, so that wsproto never holds part of a frame read here.

        The fast case is what a hub sends all day; wsproto keeps every rule for the others.
        """
        out: list[WsEvent] = []
        end = len(data)
        at = 0
        if self._owed:
            at = min(self._owed, end)
            self._owed -= at
            conn.receive_data(data[:at])
            self._receive_frames(conn, out)
            if self._state is not WebSocketState.OPEN:
                return out
        view = memoryview(data)
        limit = self._max_message_size
        while at + 2 <= end:
            if data[at + 1] & 0x80 or data[at] & 0x70 or data[at] & 0x0F not in _KNOWN_OPCODES:
                # Masked, reserved bits or opcode: wsproto refuses it as soon as it can, and reads
                # everything that follows.
                self._split = False
                conn.receive_data(data[at:])
                return self._receive_frames(conn, out)
            extent = _frame_extent(data, at, end)
            if extent is None:
                break
            first, minimal, start, length = extent
            stop = start + length
            if (
                first == 0x81  # FIN, text
                and minimal
                and stop <= end
                and length <= limit
                and not self._fragmented
            ):
                try:
                    text = str(view[start:stop], "utf-8")
                except UnicodeDecodeError:
                    pass  # wsproto closes with 1007
                else:
                    out.append(TextReceived(text))
                    at = stop
                    continue
            taken = min(stop, end)
            self._owed = stop - taken
            opcode = first & 0x0F
            if opcode in (1, 2):  # the first frame of a message: more follow unless FIN
                self._fragmented = not first & 0x80
            elif opcode == 0 and first & 0x80:  # the last fragment
                self._fragmented = False
            conn.receive_data(data[at:taken])
            at = taken
            self._receive_frames(conn, out)
            if self._state is not WebSocketState.OPEN:
                return out
        self._head = data[at:] if at < end else b""
        return out

    def _start(self) -> Connection:
        """Switch to OPEN on the connection wsproto created when the handshake completed."""
        conn = self._handshake.connection
        assert conn is not None
        self._conn = conn
        self._move(WebSocketState.OPEN)
        return conn

    def _fail(self, message: str) -> RemoteProtocolError:
        self._move(WebSocketState.CLOSED)
        return RemoteProtocolError(message)

    def _receive_frames(self, conn: Connection, out: list[WsEvent]) -> list[WsEvent]:
        for event in conn.events():
            if isinstance(event, TextMessage):
                if not self._on_text(event, out):
                    break
            elif isinstance(event, BytesMessage):
                if not self._on_bytes(event, out):
                    break
            elif isinstance(event, Ping):
                if self._state is WebSocketState.OPEN:
                    self._out.append(conn.send(event.response()))
                out.append(PingReceived(bytes(event.payload)))
            elif isinstance(event, Pong):
                out.append(PongReceived(bytes(event.payload)))
            else:
                assert isinstance(event, CloseConnection)
                self._on_close(conn, event, out)
                break
        return out

    def _on_text(self, event: TextMessage, out: list[WsEvent]) -> bool:
        data = event.data
        size = self._partial_size + (len(data) if data.isascii() else len(data.encode("utf-8")))
        if size > self._max_message_size:
            self._abort(1009, f"message over {self._max_message_size} bytes", out)
            return False
        if self._text_pieces:
            # Pieces go on as they arrive; only the message's size is remembered.
            self._partial_size = 0 if event.message_finished else size
            if data or event.message_finished:
                out.append(TextReceived(data, event.message_finished))
            return True
        parts = self._text_parts
        if not event.message_finished:
            parts.append(data)
            self._partial_size = size
            return True
        if parts:
            parts.append(data)
            data = "".join(parts)
            parts.clear()
            self._partial_size = 0
        out.append(TextReceived(data))
        return True

    def _on_bytes(self, event: BytesMessage, out: list[WsEvent]) -> bool:
        data = bytes(event.data)  # wsproto hands out bytes already; this does not copy them
        size = self._partial_size + len(data)
        if size > self._max_message_size:
            self._abort(1009, f"message over {self._max_message_size} bytes", out)
            return False
        parts = self._bytes_parts
        if not event.message_finished:
            parts.append(data)
            self._partial_size = size
            return True
        if parts:
            parts.append(data)
            data = b"".join(parts)
            parts.clear()
            self._partial_size = 0
        out.append(BytesReceived(data))
        return True

    def _on_close(self, conn: Connection, event: CloseConnection, out: list[WsEvent]) -> None:
        # wsproto reports a Close frame and a framing violation with the same event; only its
        # state tells them apart.
        reason = event.reason or ""
        if conn.state is ConnectionState.REMOTE_CLOSING:  # the peer starts the closing handshake
            self._out.append(conn.send(event.response()))
            closed = ConnectionClosed(int(event.code), reason, by_peer=True)
        elif conn.state is ConnectionState.CLOSED:  # the peer acknowledged our Close
            code, our_reason = self._local_close
            closed = ConnectionClosed(code, our_reason, by_peer=False)
        else:  # the peer broke the framing protocol
            self._abort(int(event.code), reason, out)
            return
        self._move(WebSocketState.CLOSED)
        out.append(closed)

    def _abort(self, code: int, reason: str, out: list[WsEvent]) -> None:
        """End the connection on our side: queue a Close unless one is already out."""
        if self._state is WebSocketState.OPEN:
            conn = self._conn
            assert conn is not None
            self._out.append(conn.send(CloseConnection(code=code, reason=reason)))
        self._move(WebSocketState.CLOSED)
        out.append(ConnectionClosed(code, reason, by_peer=False))


class WebSocketClient(_WebSocketConnection):
    """The client side of one WebSocket connection; the upgrade request is queued at once.

    ``host`` is the Host header (with the port when it is not the default one), ``target`` the
    path plus query, such as ``"/hubs/user?access_token=..."``. The repr masks the token.
    ``text_pieces`` hands on each piece of a text message as it arrives, for a reader that finds
    its own record boundaries (SignalR) and can start on the first records of a long message.
    """

    def __init__(
        self,
        host: str,
        target: str,
        *,
        headers: Headers = (),
        subprotocols: Sequence[str] = (),
        max_message_size: int = _DEFAULT_MAX_MESSAGE_SIZE,
        text_pieces: bool = False,
    ) -> None:
        super().__init__(ConnectionType.CLIENT, max_message_size, text_pieces)
        if not _HOST.fullmatch(host):
            raise LocalProtocolError(f"invalid host {host!r}")
        if not _TARGET.fullmatch(target):
            raise LocalProtocolError("target must be a path with an optional query, in ASCII")
        for subprotocol in subprotocols:
            if not _TOKEN.fullmatch(subprotocol):
                raise LocalProtocolError(f"invalid subprotocol {subprotocol!r}")
        self._host = host
        self._target = target
        self._headers = tuple(headers)
        # The refusal being read: status and headers, then the body's pieces and size.
        self._rejection: tuple[int, Headers] | None = None
        self._rejection_body: list[bytes] = []
        self._rejection_size = 0
        self._head_tail = b""  # the last bytes of the response head fed so far
        try:
            request = Request(
                host=host,
                target=target,
                extra_headers=_encode_headers(self._headers),
                subprotocols=list(subprotocols),
            )
            self._out.append(self._handshake.send(request))
        except (h11.LocalProtocolError, UnicodeError):
            # h11's message would quote the offending value, which may be a credential.
            raise LocalProtocolError(
                "invalid upgrade request: a host or header is not valid HTTP"
            ) from None

    def __repr__(self) -> str:
        return (
            f"WebSocketClient(host={self._host!r}, target={_mask_target(self._target)!r}, "
            f"headers={_masked_headers(self._headers)}, state={self._state.name})"
        )

    def _receive_handshake(self, data: bytes) -> list[WsEvent]:
        if not data:
            if self._rejection is None:
                raise self._fail("the server closed the connection before accepting the upgrade")
            return [self._rejected()]
        head, rest = data, b""
        if self._rejection is None and self._split:
            # Frames right behind a 101 go to the frame splitter, not into wsproto's buffer.
            window = self._head_tail + data
            match = _HEAD_END.search(window)
            if match is None:
                self._head_tail = window[-2:]
            else:
                cut = match.end() - len(self._head_tail)
                head, rest = data[:cut], data[cut:]
        out: list[WsEvent] = []
        conn = self._handshake_events(head, out)
        if conn is not None:
            if self._split:
                return out + self._split_frames(conn, rest)
            return self._receive_frames(conn, out)
        if rest and self._state is WebSocketState.CONNECTING:
            self._split = False  # an interim response came first: wsproto reads the rest
            conn = self._handshake_events(rest, out)
            if conn is not None:
                self._receive_frames(conn, out)
        return out

    def _handshake_events(self, data: bytes, out: list[WsEvent]) -> Connection | None:
        """Feed the upgrade response; the connection once accepted (its frames not yet read)."""
        try:
            self._handshake.receive_data(data)
        except (_WsRemoteProtocolError, UnicodeError) as exc:
            raise self._fail(f"invalid upgrade response: {_describe(exc)}") from None
        for event in self._handshake.events():
            if isinstance(event, AcceptConnection):
                out.append(Accepted(event.subprotocol, _decode_headers(event.extra_headers)))
                return self._start()
            if isinstance(event, RejectConnection):
                if event.status_code >= 200:  # interim (1xx) responses are skipped
                    self._rejection = (event.status_code, _decode_headers(event.headers))
                continue
            assert isinstance(event, RejectData)
            self._rejection_body.append(event.data)
            self._rejection_size += len(event.data)
            if event.body_finished or self._rejection_size > self._max_message_size:
                out.append(self._rejected())
                break
        return None

    def _rejected(self) -> Rejected:
        assert self._rejection is not None
        status, headers = self._rejection
        body = b"".join(self._rejection_body)[: self._max_message_size]
        self._rejection_body.clear()
        self._move(WebSocketState.REJECTED)
        return Rejected(status, headers, body)


def _frame_extent(data: bytes, at: int, end: int) -> tuple[int, bool, int, int] | None:
    """The unmasked frame starting at ``at``: its first byte, whether its length is minimally
    encoded, where its payload starts and its length; None while its header is incomplete."""
    first, length = data[at], data[at + 1]
    start = at + 2
    minimal = True
    if length == 126:
        start += 2
        length = int.from_bytes(data[at + 2 : start])
        minimal = length >= 126
    elif length == 127:
        start += 8
        length = int.from_bytes(data[at + 2 : start])
        minimal = 65_536 <= length < 1 << 63
    if start > end:
        return None
    return first, minimal, start, length


def _describe(exc: Exception) -> str:
    """An error's text, plus the HTTP parser's reason behind wsproto's 'Bad HTTP message'."""
    cause = exc.__context__
    if isinstance(cause, h11.RemoteProtocolError):
        return f"{exc} ({cause})"
    return str(exc)


class WebSocketServer(_WebSocketConnection):
    """The server side of one WebSocket connection: read the upgrade request, then answer it.

    ``receive_data`` first yields ``UpgradeRequested``; call ``accept()`` or ``reject()``. Bytes
    the client sends right behind its request are kept and processed by ``accept()``.
    """

    def __init__(self, *, max_message_size: int = _DEFAULT_MAX_MESSAGE_SIZE) -> None:
        super().__init__(ConnectionType.SERVER, max_message_size)
        self._subprotocols: tuple[str, ...] | None = None  # set once the request has arrived
        self._head_tail = b""  # the last bytes of the request head fed so far
        # Bytes that arrived after the request head, held until accept().
        self._early: list[bytes] = []
        self._early_size = 0

    def __repr__(self) -> str:
        return f"WebSocketServer(state={self._state.name})"

    def _receive_handshake(self, data: bytes) -> list[WsEvent]:
        if not data:
            raise self._fail("the client closed the connection during the opening handshake")
        if self._subprotocols is not None:
            self._hold(data)
            return []
        # wsproto would keep what follows the request head inside its HTTP parser and drop it on
        # accept, so only the head is fed to it; the rest waits for accept().
        window = self._head_tail + data
        match = _HEAD_END.search(window)
        if match is None:
            head, rest = data, b""
            self._head_tail = window[-2:]
        else:
            cut = match.end() - len(self._head_tail)
            head, rest = data[:cut], data[cut:]
        try:
            self._handshake.receive_data(head)
        except _WsRemoteProtocolError as exc:
            raise self._refuse(f"invalid upgrade request: {exc}", exc.event_hint) from None
        except UnicodeError as exc:
            raise self._refuse(f"invalid upgrade request: {exc}", None) from None
        out: list[WsEvent] = []
        for event in self._handshake.events():
            assert isinstance(event, Request)
            out.append(self._upgrade_requested(event))
        self._hold(rest)
        return out

    def _upgrade_requested(self, request: Request) -> UpgradeRequested:
        headers = _decode_headers(request.extra_headers)
        if any(
            name == "transfer-encoding" or (name == "content-length" and value.strip() != "0")
            for name, value in headers
        ):
            raise self._refuse("invalid upgrade request: it carries a body", None)
        path, _, query = request.target.partition("?")
        subprotocols = tuple(p for p in request.subprotocols if p)
        self._subprotocols = subprotocols
        return UpgradeRequested(
            path,
            tuple(parse_qsl(query, keep_blank_values=True)),
            (("host", request.host), *headers),
            subprotocols,
        )

    def _hold(self, data: bytes) -> None:
        self._early.append(data)
        self._early_size += len(data)
        if self._early_size > self._max_message_size + _EARLY_DATA_SLACK:
            raise self._fail("the client sent too much data before the upgrade was answered")

    def _refuse(self, message: str, hint: Event | None) -> RemoteProtocolError:
        """Fail the handshake, queueing an HTTP error response (400 unless wsproto suggests one)."""
        with contextlib.suppress(_WsLocalProtocolError, h11.LocalProtocolError):
            self._out.append(self._handshake.send(hint or RejectConnection(status_code=400)))
        return self._fail(message)

    def _check_pending(self, action: str) -> tuple[str, ...]:
        if self._state is not WebSocketState.CONNECTING or self._subprotocols is None:
            raise LocalProtocolError(
                f"cannot {action}: no upgrade request is pending ({self._state.name})"
            )
        return self._subprotocols

    def accept(self, subprotocol: str | None = None, headers: Headers = ()) -> list[WsEvent]:
        """Accept the pending upgrade (101); the state becomes OPEN.

        Returns the events carried by any bytes the client sent right behind its request: handle
        them like those of ``receive_data``.
        """
        offered = self._check_pending("accept")
        if subprotocol is not None and subprotocol not in offered:
            raise LocalProtocolError(f"subprotocol {subprotocol!r} was not offered by the client")
        try:
            event = AcceptConnection(
                subprotocol=subprotocol, extra_headers=_encode_headers(headers)
            )
            data = self._handshake.send(event)
        except (h11.LocalProtocolError, UnicodeError):
            raise LocalProtocolError("invalid response header for the upgrade") from None
        self._out.append(data)
        conn = self._start()
        conn.receive_data(b"".join(self._early))
        self._early.clear()
        return self._receive_frames(conn, [])

    def reject(self, status: int, headers: Headers = (), body: bytes = b"") -> None:
        """Refuse the pending upgrade with an HTTP response (401: bad token, 404: no such hub).

        The state becomes REJECTED; the runtime writes ``data_to_send()`` and closes the transport.
        """
        self._check_pending("reject")
        if not 300 <= status <= 599 or status == 304:
            raise LocalProtocolError(
                f"a rejection needs a 3xx (not 304), 4xx or 5xx status: {status}"
            )
        kept = [
            (k, v) for k, v in headers if k.lower() not in ("content-length", "transfer-encoding")
        ]
        kept.append(("content-length", str(len(body))))
        try:
            event = RejectConnection(
                status_code=status, headers=_encode_headers(tuple(kept)), has_body=True
            )
            data = self._handshake.send(event)
        except (h11.LocalProtocolError, UnicodeError):
            raise LocalProtocolError("invalid response header for the rejection") from None
        self._out.append(data + self._handshake.send(RejectData(data=body)))
        self._move(WebSocketState.REJECTED)


# ---------------------------------------------------------------------------------------------
# Endpoints


@attrs.frozen(repr=False)
class WsEndpoint:
    """Where to connect: ``host`` and ``port`` for the socket, ``tls``, and the request target.

    The repr masks the access token carried in ``target``.
    """

    host: str
    port: int
    tls: bool
    target: str

    @property
    def host_header(self) -> str:
        """The Host header value: the host, with the port only when it is not the default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.tls else 80
        return host if self.port == default else f"{host}:{self.port}"

    def __repr__(self) -> str:
        return (
            f"WsEndpoint(host={self.host!r}, port={self.port!r}, tls={self.tls!r}, "
            f"target={_mask_target(self.target)!r})"
        )


def ws_endpoint(
    url: str, *, access_token: str | None = None, query: Mapping[str, str] | None = None
) -> WsEndpoint:
    """Parse an http(s) or ws(s) URL into a ``WsEndpoint``, appending ``query`` and the token.

    The path and any query already in the URL are kept; the fragment is dropped. Raises
    ``LocalProtocolError`` for another scheme, a missing host, a bad port or credentials in the URL.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise LocalProtocolError(f"invalid URL: {exc}") from None
    scheme = _SCHEMES.get(parts.scheme.lower())
    if scheme is None:
        raise LocalProtocolError(
            f"unsupported URL scheme {parts.scheme!r}: use ws, wss, http or https"
        )
    if not parts.hostname:
        raise LocalProtocolError("the URL has no host")
    if "@" in parts.netloc:
        raise LocalProtocolError("credentials in the URL are not supported; pass access_token")
    tls, default_port = scheme
    if port == 0:
        raise LocalProtocolError("port 0 cannot be connected to")
    params = list((query or {}).items())
    if access_token is not None:
        params.append(("access_token", access_token))
    queries = [quote(parts.query, safe=_URL_SAFE), urlencode(params, quote_via=quote)]
    full_query = "&".join(q for q in queries if q)
    path = quote(parts.path, safe=_URL_SAFE) or "/"
    target = f"{path}?{full_query}" if full_query else path
    return WsEndpoint(parts.hostname, default_port if port is None else port, tls, target)
