"""The ASP.NET Core SignalR JSON hub protocol, client and server roles, without I/O.

Three layers, all pure:

* ``encode`` / ``decode`` turn messages into RS-terminated JSON records and back, validating what
  arrives the way the official JavaScript client does (unknown message types are skipped);
* ``RecordBuffer`` reassembles records from WebSocket message payloads, since one payload may hold
  several records and a record may span payloads;
* ``HubConnection`` is the handshake-then-messages state machine for either role: feed it each
  WebSocket message with ``receive``, act on the events it returns, and write ``data_to_send()``.

The negotiate step (``negotiate_request``, ``parse_negotiate``, ``connect_url``) builds and reads
HTTP descriptions only. Nothing here keeps time: keep-alive and timeouts belong to whoever drives
the connection, which calls ``ping()`` when its own timer says so.
"""

from __future__ import annotations

import codecs
import collections.abc
import enum
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, Final, TypeAlias, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

import attrs

from .core.errors import LocalProtocolError, RemoteProtocolError
from .core.jsoncodec import JSONDecodeError, dumps, loads, raw_loads
from .core.operations import HttpRequest, HttpResponse
from .core.slots import slot_setters

__all__ = [
    "MAX_REDIRECTS",
    "RS",
    "Ack",
    "AckReceived",
    "CancelInvocation",
    "CancelReceived",
    "Close",
    "CloseReceived",
    "Completion",
    "CompletionReceived",
    "HandshakeCompleted",
    "HandshakeFailed",
    "HandshakeReceived",
    "HandshakeRequest",
    "HandshakeResponse",
    "HubConnection",
    "HubEvent",
    "HubMessage",
    "HubRole",
    "HubState",
    "Invocation",
    "InvocationReceived",
    "Message",
    "MessageType",
    "NegotiateRedirect",
    "Negotiation",
    "Ping",
    "PingReceived",
    "RecordBuffer",
    "Sequence",
    "SequenceReceived",
    "StreamInvocation",
    "StreamInvocationReceived",
    "StreamItem",
    "StreamItemReceived",
    "connect_url",
    "decode",
    "decode_handshake_request",
    "decode_handshake_response",
    "encode",
    "negotiate_request",
    "negotiate_response_body",
    "parse_negotiate",
]

RS: Final = "\x1e"
"""The record separator that ends every JSON record, the handshake included."""

MAX_REDIRECTS: Final = 100
"""How many negotiate redirects the official clients follow before giving up."""

_MASK: Final = "'********'"
_T = TypeVar("_T")


class MessageType(enum.IntEnum):
    """The ``type`` field of a hub message."""

    INVOCATION = 1
    STREAM_ITEM = 2
    COMPLETION = 3
    STREAM_INVOCATION = 4
    CANCEL_INVOCATION = 5
    PING = 6
    CLOSE = 7
    ACK = 8
    SEQUENCE = 9


# ---------------------------------------------------------------------------------------------
# Messages


@attrs.frozen
class HandshakeRequest:
    """The client's first record: which hub protocol and version it speaks."""

    protocol: str = "json"
    version: int = 1


@attrs.frozen
class HandshakeResponse:
    """The server's answer to the handshake; ``error`` set means refused."""

    error: str | None = None


@attrs.frozen
class Invocation:
    """Call ``target`` on the peer; without ``invocation_id`` the peer must not answer."""

    target: str
    arguments: tuple[Any, ...] = ()
    invocation_id: str | None = None
    headers: Mapping[str, str] | None = None
    stream_ids: tuple[str, ...] = ()


@attrs.frozen
class StreamItem:
    """One item of a stream: a streaming result, or an upload whose id is a stream id."""

    invocation_id: str
    item: Any


@attrs.frozen
class Completion:
    """The end of an invocation; ``has_result`` tells a null result from a void completion."""

    invocation_id: str
    result: Any = None
    error: str | None = None
    has_result: bool = False


@attrs.frozen
class StreamInvocation:
    """Start a streaming call; the callee answers with stream items and then a completion."""

    invocation_id: str
    target: str
    arguments: tuple[Any, ...] = ()
    stream_ids: tuple[str, ...] = ()


@attrs.frozen
class CancelInvocation:
    """Ask the callee to stop an invocation or stream (it still sends a completion)."""

    invocation_id: str


@attrs.frozen
class Ping:
    """Keep-alive; either side may send it at any time."""


@attrs.frozen
class Close:
    """The sender is closing; ``allow_reconnect`` says whether the client may come back."""

    error: str | None = None
    allow_reconnect: bool | None = None


@attrs.frozen
class Ack:
    """Stateful reconnect: the highest sequence id the sender has processed."""

    sequence_id: int


@attrs.frozen
class Sequence:
    """Stateful reconnect: the sequence id of the next message after a reconnect."""

    sequence_id: int


HubMessage: TypeAlias = (
    Invocation
    | StreamItem
    | Completion
    | StreamInvocation
    | CancelInvocation
    | Ping
    | Close
    | Ack
    | Sequence
)
Message: TypeAlias = HandshakeRequest | HandshakeResponse | HubMessage

_PING: Final = Ping()
_PING_RECORD: Final = '{"type":6}' + RS


# ---------------------------------------------------------------------------------------------
# Encoding


def _check_id(kind: str, value: str) -> str:
    if not value:
        raise LocalProtocolError(f"{kind} needs a non-empty invocation id")
    return value


def _check_target(kind: str, value: str) -> str:
    if not value:
        raise LocalProtocolError(f"{kind} needs a non-empty target")
    return value


def _encode_invocation(m: Invocation) -> dict[str, Any]:
    out: dict[str, Any] = {"type": 1}
    if m.headers is not None:
        out["headers"] = m.headers if isinstance(m.headers, dict) else dict(m.headers)
    if m.invocation_id is not None:
        out["invocationId"] = _check_id("Invocation", m.invocation_id)
    out["target"] = _check_target("Invocation", m.target)
    out["arguments"] = m.arguments
    if m.stream_ids:
        out["streamIds"] = m.stream_ids
    return out


def _encode_stream_item(m: StreamItem) -> dict[str, Any]:
    return {"type": 2, "invocationId": _check_id("StreamItem", m.invocation_id), "item": m.item}


def _encode_completion(m: Completion) -> dict[str, Any]:
    out: dict[str, Any] = {"type": 3, "invocationId": _check_id("Completion", m.invocation_id)}
    if m.error is not None:
        if m.has_result or m.result is not None:
            raise LocalProtocolError("a Completion cannot carry both a result and an error")
        out["error"] = m.error
    elif m.has_result:
        out["result"] = m.result
    elif m.result is not None:
        raise LocalProtocolError("a Completion with a result must set has_result=True")
    return out


def _encode_stream_invocation(m: StreamInvocation) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": 4,
        "invocationId": _check_id("StreamInvocation", m.invocation_id),
        "target": _check_target("StreamInvocation", m.target),
        "arguments": m.arguments,
    }
    if m.stream_ids:
        out["streamIds"] = m.stream_ids
    return out


def _encode_cancel(m: CancelInvocation) -> dict[str, Any]:
    return {"type": 5, "invocationId": _check_id("CancelInvocation", m.invocation_id)}


def _encode_close(m: Close) -> dict[str, Any]:
    out: dict[str, Any] = {"type": 7}
    if m.error is not None:
        out["error"] = m.error
    if m.allow_reconnect is not None:
        out["allowReconnect"] = m.allow_reconnect
    return out


def _encode_ack(m: Ack) -> dict[str, Any]:
    return {"type": 8, "sequenceId": m.sequence_id}


def _encode_sequence(m: Sequence) -> dict[str, Any]:
    return {"type": 9, "sequenceId": m.sequence_id}


def _encode_handshake_request(m: HandshakeRequest) -> dict[str, Any]:
    return {"protocol": m.protocol, "version": m.version}


def _encode_handshake_response(m: HandshakeResponse) -> dict[str, Any]:
    return {} if m.error is None else {"error": m.error}


_ENCODERS: Final[dict[type, Callable[[Any], dict[str, Any]]]] = {
    Invocation: _encode_invocation,
    StreamItem: _encode_stream_item,
    Completion: _encode_completion,
    StreamInvocation: _encode_stream_invocation,
    CancelInvocation: _encode_cancel,
    Close: _encode_close,
    Ack: _encode_ack,
    Sequence: _encode_sequence,
    HandshakeRequest: _encode_handshake_request,
    HandshakeResponse: _encode_handshake_response,
}


def encode(message: Message) -> str:
    """One record: compact JSON followed by RS; LocalProtocolError for an invalid message."""
    if type(message) is Ping:
        return _PING_RECORD
    encoder = _ENCODERS.get(type(message))
    if encoder is None:
        raise LocalProtocolError(f"cannot encode {type(message).__name__} as a SignalR record")
    return dumps(encoder(message)).decode() + RS


# ---------------------------------------------------------------------------------------------
# Decoding
#
# Each decoder validates one message type and hands its fields, in declaration order, to ``make``:
# the message class for ``decode``, the matching event class for ``HubConnection.receive``, so a
# received record becomes its event without an intermediate object.


def _bad(kind: str, problem: str) -> RemoteProtocolError:
    return RemoteProtocolError(f"invalid {kind} message: {problem}")


def _required_id(obj: dict[str, Any], kind: str) -> str:
    value = obj.get("invocationId")
    if type(value) is not str or not value:
        raise _bad(kind, "'invocationId' must be a non-empty string")
    return value


def _stream_ids(value: Any, kind: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if type(value) is not list or not all(type(v) is str for v in value):
        raise _bad(kind, "'streamIds' must be a list of strings")
    return tuple(value)


def _invocation(make: Callable[..., _T], obj: dict[str, Any]) -> _T:
    target = obj.get("target")
    arguments = obj.get("arguments")
    invocation_id = obj.get("invocationId")
    headers = obj.get("headers")
    if type(target) is not str or not target:
        raise _bad("Invocation", "'target' must be a non-empty string")
    if type(arguments) is not list:
        raise _bad("Invocation", "'arguments' must be a list")
    if invocation_id is not None and (type(invocation_id) is not str or not invocation_id):
        raise _bad("Invocation", "'invocationId' must be a non-empty string")
    if headers is not None and (
        type(headers) is not dict or not all(type(v) is str for v in headers.values())
    ):
        raise _bad("Invocation", "'headers' must map strings to strings")
    stream_ids = obj.get("streamIds")
    return make(
        target,
        tuple(arguments),
        invocation_id,
        headers,
        () if stream_ids is None else _stream_ids(stream_ids, "Invocation"),
    )


def _stream_item(make: Callable[..., _T], obj: dict[str, Any]) -> _T:
    invocation_id = _required_id(obj, "StreamItem")
    if "item" not in obj:
        raise _bad("StreamItem", "no 'item'")
    return make(invocation_id, obj["item"])


def _completion(make: Callable[..., _T], obj: dict[str, Any]) -> _T:
    invocation_id = _required_id(obj, "Completion")
    error = obj.get("error")
    has_result = "result" in obj
    if error is not None:
        if type(error) is not str:
            raise _bad("Completion", "'error' must be a string")
        if has_result:
            raise _bad("Completion", "it carries both a result and an error")
    return make(invocation_id, obj.get("result"), error, has_result)


def _stream_invocation(make: Callable[..., _T], obj: dict[str, Any]) -> _T:
    invocation_id = _required_id(obj, "StreamInvocation")
    target = obj.get("target")
    arguments = obj.get("arguments")
    if type(target) is not str or not target:
        raise _bad("StreamInvocation", "'target' must be a non-empty string")
    if type(arguments) is not list:
        raise _bad("StreamInvocation", "'arguments' must be a list")
    stream_ids = _stream_ids(obj.get("streamIds"), "StreamInvocation")
    return make(invocation_id, target, tuple(arguments), stream_ids)


def _cancel(make: Callable[..., _T], obj: dict[str, Any]) -> _T:
    return make(_required_id(obj, "CancelInvocation"))


def _close(make: Callable[..., _T], obj: dict[str, Any]) -> _T:
    error = obj.get("error")
    allow_reconnect = obj.get("allowReconnect")
    if error is not None and type(error) is not str:
        raise _bad("Close", "'error' must be a string")
    if allow_reconnect is not None and type(allow_reconnect) is not bool:
        raise _bad("Close", "'allowReconnect' must be a boolean")
    return make(error, allow_reconnect)


def _sequence_id(kind: str) -> Callable[[Callable[..., _T], dict[str, Any]], _T]:
    def parse(make: Callable[..., _T], obj: dict[str, Any]) -> _T:
        value = obj.get("sequenceId")
        if type(value) is not int:
            raise _bad(kind, "'sequenceId' must be an integer")
        return make(value)

    return parse


def _constant(value: _T) -> Callable[[dict[str, Any]], _T]:
    return lambda obj: value


def _decoders(
    *,
    invocation: Callable[..., _T],
    stream_item: Callable[..., _T],
    completion: Callable[..., _T],
    stream_invocation: Callable[..., _T],
    cancel: Callable[..., _T],
    ping: _T,
    close: Callable[..., _T],
    ack: Callable[..., _T],
    sequence: Callable[..., _T],
) -> dict[int, Callable[[dict[str, Any]], _T]]:
    """The decoder of each message type, building its result with the given constructors."""
    return {
        MessageType.INVOCATION: partial(_invocation, invocation),
        MessageType.STREAM_ITEM: partial(_stream_item, stream_item),
        MessageType.COMPLETION: partial(_completion, completion),
        MessageType.STREAM_INVOCATION: partial(_stream_invocation, stream_invocation),
        MessageType.CANCEL_INVOCATION: partial(_cancel, cancel),
        MessageType.PING: _constant(ping),
        MessageType.CLOSE: partial(_close, close),
        MessageType.ACK: partial(_sequence_id("Ack"), ack),
        MessageType.SEQUENCE: partial(_sequence_id("Sequence"), sequence),
    }


_MESSAGE_DECODERS: Final[dict[int, Callable[[dict[str, Any]], HubMessage]]] = _decoders(
    invocation=Invocation,
    stream_item=StreamItem,
    completion=Completion,
    stream_invocation=StreamInvocation,
    cancel=CancelInvocation,
    ping=_PING,
    close=Close,
    ack=Ack,
    sequence=Sequence,
)


def _invalid_json(what: str, exc: JSONDecodeError) -> RemoteProtocolError:
    return RemoteProtocolError(f"{what}: invalid JSON: {exc}")


def _load_object(record: str | bytes, what: str) -> dict[str, Any]:
    try:
        obj = raw_loads(record)
    except JSONDecodeError as exc:
        raise _invalid_json(what, exc) from None
    if type(obj) is not dict:
        raise RemoteProtocolError(f"{what} is not a JSON object")
    return obj


def _message_type(obj: dict[str, Any]) -> int:
    kind = obj.get("type")
    if type(kind) is not int:
        raise RemoteProtocolError("hub message has no integer 'type'")
    return kind


def decode(record: str) -> HubMessage | None:
    """One hub message from a record without its RS; None for a message type this code predates.

    Anything malformed raises RemoteProtocolError.
    """
    obj = _load_object(record, "hub message")
    decoder = _MESSAGE_DECODERS.get(_message_type(obj))
    # Newer protocol versions may add types; older peers skip them.
    return None if decoder is None else decoder(obj)


def decode_handshake_request(record: str) -> HandshakeRequest:
    """The client's handshake from a record without its RS; RemoteProtocolError if malformed."""
    obj = _load_object(record, "handshake request")
    if "type" in obj:
        raise RemoteProtocolError("expected a handshake request, received a hub message")
    protocol = obj.get("protocol")
    version = obj.get("version")
    if type(protocol) is not str or type(version) is not int:
        raise RemoteProtocolError("handshake request needs a string 'protocol' and int 'version'")
    return HandshakeRequest(protocol, version)


def decode_handshake_response(record: str) -> HandshakeResponse:
    """The server's handshake answer from a record without its RS; RemoteProtocolError if bad."""
    obj = _load_object(record, "handshake response")
    if "type" in obj:
        raise RemoteProtocolError("expected a handshake response, received a hub message")
    error = obj.get("error")
    if error is not None and type(error) is not str:
        raise RemoteProtocolError("handshake response 'error' must be a string")
    return HandshakeResponse(error)


# ---------------------------------------------------------------------------------------------
# Record framing


class RecordBuffer:
    """Splits WebSocket payloads into RS-terminated records, holding an incomplete tail.

    The tail is bounded by ``max_size`` characters; bytes are decoded as UTF-8 incrementally, so a
    character split across payloads is fine.
    """

    __slots__ = ("_decoder", "_max_size", "_mid_character", "_parts", "_size")

    def __init__(self, max_size: int = 4 * 1024 * 1024) -> None:
        self._max_size = max_size
        self._parts: list[str] = []
        self._size = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._mid_character = False  # bytes fed so far end inside a UTF-8 character

    @property
    def buffered(self) -> int:
        """Characters held in the incomplete tail."""
        return self._size

    def feed(self, data: str | bytes) -> list[str]:
        """The records completed by ``data``, without their RS; RemoteProtocolError on overflow."""
        if isinstance(data, str):
            if self._mid_character:
                raise RemoteProtocolError("text arrived in the middle of a UTF-8 character")
            text = data
        else:
            try:
                text = self._decoder.decode(data)
            except UnicodeDecodeError as exc:
                raise RemoteProtocolError(f"payload is not valid UTF-8: {exc.reason}") from None
            self._mid_character = bool(self._decoder.getstate()[0])
        if RS not in text:
            if text:
                self._hold(text)
            return []
        if self._parts:
            self._parts.append(text)
            text = "".join(self._parts)
            self._parts.clear()
            self._size = 0
        records = text.split(RS)
        tail = records.pop()
        if tail:
            self._hold(tail)
        return records

    def _hold(self, text: str) -> None:
        self._size += len(text)
        if self._size > self._max_size:
            raise RemoteProtocolError(
                f"incomplete record exceeds {self._max_size} characters without a separator"
            )
        self._parts.append(text)


# ---------------------------------------------------------------------------------------------
# Events


@attrs.frozen
class HandshakeCompleted:
    """The handshake succeeded; hub messages may flow both ways."""


@attrs.frozen
class HandshakeFailed:
    """Client side: the server refused the handshake; the connection is closed."""

    error: str


@attrs.frozen
class HandshakeReceived:
    """Server side: the client's handshake; answer with accept_handshake or reject_handshake."""

    protocol: str
    version: int


@attrs.frozen
class InvocationReceived:
    """The peer called ``target``; answer with ``complete`` when ``invocation_id`` is set."""

    target: str
    arguments: tuple[Any, ...]
    invocation_id: str | None
    headers: Mapping[str, str] | None = None
    stream_ids: tuple[str, ...] = ()


@attrs.frozen
class StreamInvocationReceived:
    """The peer started a streaming call."""

    invocation_id: str
    target: str
    arguments: tuple[Any, ...]
    stream_ids: tuple[str, ...] = ()


@attrs.frozen
class StreamItemReceived:
    """One item of a stream."""

    invocation_id: str
    item: Any


@attrs.frozen
class CompletionReceived:
    """An invocation finished; ``has_result`` tells a null result from a void one."""

    invocation_id: str
    result: Any
    error: str | None
    has_result: bool


@attrs.frozen
class CancelReceived:
    """The peer asked to cancel one of the invocations it made."""

    invocation_id: str


@attrs.frozen
class PingReceived:
    """The peer sent a keep-alive."""


@attrs.frozen
class CloseReceived:
    """The peer closed the connection; it is now CLOSED."""

    error: str | None
    allow_reconnect: bool


@attrs.frozen
class AckReceived:
    """Stateful reconnect: the peer processed everything up to ``sequence_id``."""

    sequence_id: int


@attrs.frozen
class SequenceReceived:
    """Stateful reconnect: the peer's next message carries ``sequence_id``."""

    sequence_id: int


HubEvent: TypeAlias = (
    HandshakeCompleted
    | HandshakeFailed
    | HandshakeReceived
    | InvocationReceived
    | StreamInvocationReceived
    | StreamItemReceived
    | CompletionReceived
    | CancelReceived
    | PingReceived
    | CloseReceived
    | AckReceived
    | SequenceReceived
)

_HANDSHAKE_COMPLETED: Final = HandshakeCompleted()

_SET_TARGET, _SET_ARGUMENTS, _SET_INVOCATION_ID, _SET_HEADERS, _SET_STREAM_IDS = slot_setters(
    InvocationReceived, "target", "arguments", "invocation_id", "headers", "stream_ids"
)


def _pushed_invocation(target: str, arguments: tuple[Any, ...]) -> InvocationReceived:
    """``InvocationReceived(target, arguments, None)``, filling the slots directly."""
    # attrs' frozen __init__ calls object.__setattr__ once per field; filling the slots of a bare
    # instance gives the same event for less, on the path every pushed market event takes.
    event = object.__new__(InvocationReceived)
    _SET_TARGET(event, target)
    _SET_ARGUMENTS(event, arguments)
    _SET_INVOCATION_ID(event, None)
    _SET_HEADERS(event, None)
    _SET_STREAM_IDS(event, ())
    return event


def _close_received(error: str | None, allow_reconnect: bool | None) -> CloseReceived:
    return CloseReceived(error, allow_reconnect is True)


_EVENT_DECODERS: Final[dict[int, Callable[[dict[str, Any]], HubEvent]]] = _decoders(
    invocation=InvocationReceived,
    stream_item=StreamItemReceived,
    completion=CompletionReceived,
    stream_invocation=StreamInvocationReceived,
    cancel=CancelReceived,
    ping=PingReceived(),
    close=_close_received,
    ack=AckReceived,
    sequence=SequenceReceived,
)


# ---------------------------------------------------------------------------------------------
# Connection


class HubRole(enum.Enum):
    """Which end of the hub connection this is."""

    CLIENT = "client"
    SERVER = "server"


class HubState(enum.Enum):
    """Where a hub connection stands."""

    HANDSHAKING = "handshaking"  # the handshake has not completed
    OPEN = "open"  # hub messages flow both ways
    CLOSED = "closed"  # closed by either side, refused, or broken by the peer


class HubConnection:
    """One SignalR hub connection over WebSocket message payloads, as client or server.

    A client queues its handshake at construction. A server reports ``HandshakeReceived`` and
    then answers with ``accept_handshake`` or ``reject_handshake``; records the client sends right
    after its handshake are reported as usual. Any peer violation raises RemoteProtocolError and
    leaves the connection CLOSED (events decoded earlier in the same call are dropped with it).
    """

    __slots__ = (
        "_awaiting_accept",
        "_buffer",
        "_next_id",
        "_outbox",
        "_pending",
        "_role",
        "_state",
    )

    def __init__(
        self,
        role: HubRole,
        *,
        protocol: str = "json",
        version: int = 1,
        max_buffer_size: int = 4 * 1024 * 1024,
    ) -> None:
        self._role = role
        self._state = HubState.HANDSHAKING
        self._buffer = RecordBuffer(max_buffer_size)
        self._outbox: list[str] = []
        self._pending: set[str] = set()
        self._next_id = 0
        self._awaiting_accept = False  # server: the handshake arrived, our answer has not
        if role is HubRole.CLIENT:
            self._outbox.append(encode(HandshakeRequest(protocol, version)))

    @property
    def role(self) -> HubRole:
        """Client or server."""
        return self._role

    @property
    def state(self) -> HubState:
        """The connection's current state."""
        return self._state

    @property
    def pending_invocations(self) -> frozenset[str]:
        """Ids of our invocations and streams still waiting for their completion."""
        return frozenset(self._pending)

    # -- inbound ---------------------------------------------------------------------------

    def receive(self, data: str | bytes) -> list[HubEvent]:
        """Feed one WebSocket message; returns the events it completes.

        Data after CLOSED is ignored. A completion for an id we are not waiting on is still
        reported: the caller decides whether it matters.
        """
        if self._state is HubState.CLOSED:
            return []
        try:
            records = self._buffer.feed(data)
            return self._receive_records(records) if records else []
        except RemoteProtocolError:
            self._state = HubState.CLOSED
            raise

    def _receive_records(self, records: list[str]) -> list[HubEvent]:
        events: list[HubEvent] = []
        if self._state is HubState.HANDSHAKING and not self._awaiting_accept:
            if not self._receive_handshake(records[0], events):
                return events
            del records[0]
        append, decoders = events.append, _EVENT_DECODERS
        for record in records:
            try:
                obj = raw_loads(record)
            except JSONDecodeError as exc:
                raise _invalid_json("hub message", exc) from None
            if type(obj) is not dict:
                raise RemoteProtocolError("hub message is not a JSON object")
            kind = obj.get("type")
            # Nearly all a hub pushes is an Invocation with a target, arguments and nothing else
            # (three keys: no id, headers or stream ids to check), so that one is built right here.
            if len(obj) == 3 and kind == 1 and type(kind) is int:
                target = obj.get("target")
                arguments = obj.get("arguments")
                if type(target) is str and target and type(arguments) is list:
                    append(_pushed_invocation(target, tuple(arguments)))
                    continue
            if type(kind) is not int:
                raise RemoteProtocolError("hub message has no integer 'type'")
            decoder = decoders.get(kind)
            if decoder is None:
                continue  # a message type newer than this code: skipped, as specified
            event = decoder(obj)
            append(event)
            if isinstance(event, CompletionReceived):
                self._pending.discard(event.invocation_id)
            elif isinstance(event, CloseReceived):
                self._state = HubState.CLOSED
                break  # nothing after a Close counts
        return events

    def _receive_handshake(self, record: str, events: list[HubEvent]) -> bool:
        if self._role is HubRole.SERVER:
            request = decode_handshake_request(record)
            self._awaiting_accept = True
            events.append(HandshakeReceived(request.protocol, request.version))
            return True
        response = decode_handshake_response(record)
        if response.error is not None:
            self._state = HubState.CLOSED
            events.append(HandshakeFailed(response.error))
            return False
        self._state = HubState.OPEN
        events.append(_HANDSHAKE_COMPLETED)
        return True

    # -- outbound --------------------------------------------------------------------------

    def data_to_send(self) -> str:
        """Everything queued, as one text payload (empty when nothing is); clears the queue."""
        if not self._outbox:
            return ""
        data = "".join(self._outbox)
        self._outbox.clear()
        return data

    def _require_open(self, action: str) -> None:
        if self._state is not HubState.OPEN:
            when = "after the connection closed"
            if self._state is HubState.HANDSHAKING:
                when = "before the handshake completed"
            raise LocalProtocolError(f"cannot {action} {when}")

    def _new_id(self) -> str:
        return str(self._next_id)

    def invoke(self, target: str, *arguments: Any) -> str:
        """Call ``target`` on the peer and expect a completion; returns the invocation id."""
        self._require_open("invoke")
        invocation_id = self._new_id()
        self._outbox.append(encode(Invocation(target, arguments, invocation_id)))
        self._next_id += 1
        self._pending.add(invocation_id)
        return invocation_id

    def stream(self, target: str, *arguments: Any) -> str:
        """Start a streaming call on the peer; returns the id its items and completion carry."""
        self._require_open("stream")
        invocation_id = self._new_id()
        self._outbox.append(encode(StreamInvocation(invocation_id, target, arguments)))
        self._next_id += 1
        self._pending.add(invocation_id)
        return invocation_id

    def send(self, target: str, *arguments: Any) -> None:
        """Call ``target`` on the peer without an invocation id: no answer is expected."""
        self._require_open("send")
        self._outbox.append(encode(Invocation(target, arguments)))

    def complete(
        self,
        invocation_id: str,
        result: Any = None,
        *,
        error: str | None = None,
        has_result: bool = True,
    ) -> None:
        """Answer the peer's invocation: a result, an ``error``, or nothing (has_result=False)."""
        self._require_open("complete an invocation")
        self._outbox.append(
            encode(Completion(invocation_id, result, error, has_result and error is None))
        )

    def stream_item(self, invocation_id: str, item: Any) -> None:
        """Send one item of a stream the peer asked for (or of an upload)."""
        self._require_open("send a stream item")
        self._outbox.append(encode(StreamItem(invocation_id, item)))

    def cancel(self, invocation_id: str) -> None:
        """Ask the peer to stop an invocation; its completion still arrives and clears it."""
        self._require_open("cancel an invocation")
        self._outbox.append(encode(CancelInvocation(invocation_id)))

    def ping(self) -> None:
        """Queue a keep-alive Ping."""
        self._require_open("ping")
        self._outbox.append(_PING_RECORD)

    def ack(self, sequence_id: int) -> None:
        """Stateful reconnect: acknowledge everything up to ``sequence_id``."""
        self._require_open("acknowledge")
        self._outbox.append(encode(Ack(sequence_id)))

    def sequence(self, sequence_id: int) -> None:
        """Stateful reconnect: announce the sequence id of our next message."""
        self._require_open("send a sequence")
        self._outbox.append(encode(Sequence(sequence_id)))

    def close(self, error: str | None = None, allow_reconnect: bool | None = None) -> None:
        """Queue a Close message and move to CLOSED.

        Before the handshake completed nothing is queued; when already CLOSED this does nothing.
        """
        if self._state is HubState.OPEN:
            self._outbox.append(encode(Close(error, allow_reconnect)))
        self._state = HubState.CLOSED

    def accept_handshake(self) -> None:
        """Server: accept the client's handshake; the connection is OPEN."""
        self._require_handshake("accept")
        self._outbox.append(encode(HandshakeResponse()))
        self._state = HubState.OPEN

    def reject_handshake(self, error: str) -> None:
        """Server: refuse the client's handshake with ``error``; the connection is CLOSED."""
        self._require_handshake("reject")
        self._outbox.append(encode(HandshakeResponse(error)))
        self._state = HubState.CLOSED

    def _require_handshake(self, action: str) -> None:
        if self._role is not HubRole.SERVER:
            raise LocalProtocolError(f"only a server can {action} a handshake")
        if not self._awaiting_accept or self._state is not HubState.HANDSHAKING:
            raise LocalProtocolError(f"no handshake is waiting to {action}")


# ---------------------------------------------------------------------------------------------
# Negotiate


def _mask(value: str | None) -> str:
    return "None" if value is None else _MASK


@attrs.frozen
class Negotiation:
    """A successful negotiate: ids, protocol version and the transports the server offers."""

    connection_id: str | None
    connection_token: str | None = attrs.field(repr=_mask)
    version: int
    transports: tuple[str, ...]
    use_stateful_reconnect: bool = False


@attrs.frozen
class NegotiateRedirect:
    """Negotiate again at ``url``, using ``access_token`` (when given) as the bearer from now on."""

    url: str
    access_token: str | None = attrs.field(repr=_mask)


def _split_url(url: str, schemes: frozenset[str], what: str) -> tuple[str, str, str, str]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in schemes:
        raise LocalProtocolError(f"{what} needs one of {sorted(schemes)} URLs, got {url!r}")
    return scheme, parts.netloc, parts.path, parts.query


def _check_token(access_token: str | None) -> None:
    if access_token is not None and not access_token:
        raise LocalProtocolError("access_token must not be empty (pass None for no token)")


def negotiate_request(
    hub_url: str,
    *,
    access_token: str | None = None,
    version: int = 1,
    use_stateful_reconnect: bool = False,
) -> HttpRequest:
    """The ``POST <hub>/negotiate?negotiateVersion=...`` request for ``hub_url``.

    ``hub_url`` is absolute (http or https; a ``Host`` header is added) or a bare path.
    """
    _, netloc, path, query = _split_url(hub_url, frozenset({"", "http", "https"}), "negotiate")
    _check_token(access_token)
    if not path.endswith("/"):
        path += "/"
    params = [query] if query else []
    if "negotiateVersion" not in query:
        params.append(f"negotiateVersion={version}")
    if use_stateful_reconnect and "useStatefulReconnect" not in query:
        params.append("useStatefulReconnect=true")
    request = HttpRequest("POST", f"{path}negotiate?{'&'.join(params)}")
    if netloc:
        request = request.with_header("Host", netloc.rpartition("@")[2])
    request = request.with_header("X-Requested-With", "XMLHttpRequest")
    if access_token is not None:
        request = request.with_header("Authorization", f"Bearer {access_token}")
    return request


def _negotiate_error(problem: str) -> RemoteProtocolError:
    return RemoteProtocolError(f"negotiate failed: {problem}")


def _transports(body: dict[str, Any]) -> tuple[tuple[str, ...], bool]:
    """Transport names on offer, and whether WebSockets carries text."""
    offered = body.get("availableTransports", [])
    if type(offered) is not list:
        raise _negotiate_error("'availableTransports' must be a list")
    names: list[str] = []
    websockets_text = False
    for entry in offered:
        name = entry.get("transport") if type(entry) is dict else None
        if type(name) is not str:
            raise _negotiate_error("each available transport needs a string 'transport'")
        names.append(name)
        formats = entry.get("transferFormats")
        if name == "WebSockets" and (type(formats) is not list or "Text" in formats):
            websockets_text = True
    return tuple(names), websockets_text


def parse_negotiate(response: HttpResponse) -> Negotiation | NegotiateRedirect:
    """Read a negotiate answer: a Negotiation, a redirect, or RemoteProtocolError.

    Version 0 answers carry no connection token; the connection id stands in for it.
    """
    if not 200 <= response.status < 300:
        raise _negotiate_error(f"HTTP {response.status}")
    body = _load_object_bytes(response.body)
    error = body.get("error")
    if error is not None:
        raise _negotiate_error(f"server said {str(error)!r}")
    if "ProtocolVersion" in body:
        raise _negotiate_error(
            "the server speaks classic ASP.NET SignalR, not ASP.NET Core SignalR"
        )
    url = body.get("url")
    if url is not None:
        token = body.get("accessToken")
        if type(url) is not str or not url or (token is not None and type(token) is not str):
            raise _negotiate_error("a redirect needs a string 'url' and 'accessToken'")
        return NegotiateRedirect(url, token)
    version = body.get("negotiateVersion", 0)
    connection_id = body.get("connectionId")
    token = body.get("connectionToken")
    stateful = body.get("useStatefulReconnect", False)
    if type(version) is not int or version < 0:
        raise _negotiate_error("'negotiateVersion' must be a non-negative integer")
    if connection_id is not None and type(connection_id) is not str:
        raise _negotiate_error("'connectionId' must be a string")
    if token is not None and type(token) is not str:
        raise _negotiate_error("'connectionToken' must be a string")
    if type(stateful) is not bool:
        raise _negotiate_error("'useStatefulReconnect' must be a boolean")
    transports, websockets_text = _transports(body)
    if not websockets_text:
        raise _negotiate_error(f"the server offers no text WebSockets transport ({transports})")
    if version < 1:
        token = connection_id
    return Negotiation(connection_id, token, version, transports, stateful)


def _load_object_bytes(body: bytes) -> dict[str, Any]:
    try:
        obj = loads(body)
    except RemoteProtocolError as exc:
        raise _negotiate_error(f"the answer is not valid JSON ({exc})") from None
    if type(obj) is not dict:
        raise _negotiate_error("the answer is not a JSON object")
    return obj


_TRANSFER_FORMATS: Final = {
    "WebSockets": ["Text", "Binary"],
    "ServerSentEvents": ["Text"],
    "LongPolling": ["Text", "Binary"],
}


def negotiate_response_body(
    connection_id: str,
    connection_token: str | None,
    *,
    version: int = 1,
    transports: collections.abc.Sequence[str] = ("WebSockets",),
) -> bytes:
    """Server side: the JSON body answering a negotiate (version 0 carries no token)."""
    body: dict[str, Any] = {"connectionId": connection_id}
    if version >= 1:
        if not connection_token:
            raise LocalProtocolError("negotiate version 1 and later needs a connection token")
        body["connectionToken"] = connection_token
    elif connection_token is not None:
        raise LocalProtocolError("negotiate version 0 has no connection token; pass None")
    body["negotiateVersion"] = version
    body["availableTransports"] = [
        {"transport": name, "transferFormats": _TRANSFER_FORMATS.get(name, ["Text"])}
        for name in transports
    ]
    return dumps(body)


_WS_SCHEMES: Final = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}


def connect_url(
    hub_url: str,
    *,
    negotiation: Negotiation | None = None,
    access_token: str | None = None,
) -> str:
    """The WebSocket URL for ``hub_url``: ``ws``/``wss``, plus ``id`` and ``access_token``.

    Without ``negotiation`` no ``id`` is added (negotiation skipped). The result may hold the
    token: do not log it.
    """
    scheme, netloc, path, query = _split_url(hub_url, frozenset(_WS_SCHEMES), "connect")
    _check_token(access_token)
    params = [query] if query else []
    if negotiation is not None and negotiation.connection_token:
        params.append(f"id={quote(negotiation.connection_token, safe='')}")
    if access_token is not None:
        params.append(f"access_token={quote(access_token, safe='')}")
    return urlunsplit((_WS_SCHEMES[scheme], netloc, path, "&".join(params), ""))
