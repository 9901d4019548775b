"""Sans-IO HTTP/1.1 client and server connections built on h11.

``HttpClientConnection`` turns an ``HttpRequest`` into bytes to write and bytes read back into an
``HttpResponse``. It never touches a socket or a clock: a runtime owns the transport, feeds what it
reads (``b""`` at end of file) and writes what it is given. One request is in flight at a time.

``HttpServerConnection`` is the other side, for the embedded gateway simulator: bytes read from a
client come out as whole ``HttpRequest`` objects, and each is answered by exactly one response.
"""

from __future__ import annotations

import enum
from http import HTTPStatus

import h11

from .core.errors import LocalProtocolError, RemoteProtocolError
from .core.operations import Headers, HttpRequest, HttpResponse, find_header, normalize_headers

__all__ = [
    "HttpClientConnection",
    "HttpClientState",
    "HttpServerConnection",
    "HttpServerState",
    "RejectedRequest",
    "is_upgrade",
]

# Methods whose requests carry no content unless the caller gives a body (RFC 9110, 8.6).
_BODYLESS_METHODS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS", "TRACE", "CONNECT"})
# Responses whose Content-Length describes a body that is never sent.
_NO_BODY_STATUSES = frozenset({204, 304})


class HttpClientState(enum.Enum):
    """Where a client connection stands between request/response cycles."""

    IDLE = "idle"  # ready for a request
    AWAITING_RESPONSE = "awaiting_response"  # a request was sent; its response is incomplete
    CLOSED = "closed"  # finished cleanly but not reusable: open a new connection
    ERROR = "error"  # the peer broke the protocol: discard the connection


class HttpClientConnection:
    """One HTTP/1.1 client connection: requests go out as bytes, responses come back whole.

    Responses are limited to ``max_response_size`` bytes of body and ``max_header_size`` bytes of
    header block, so a hostile or broken server cannot make the client buffer without bound.
    """

    def __init__(
        self,
        host: str,
        *,
        user_agent: str = "tradeforge",
        max_response_size: int = 16 * 1024 * 1024,
        max_header_size: int = 64 * 1024,
    ) -> None:
        self._host = host
        self._user_agent = user_agent
        self._max_response_size = max_response_size
        self._max_header_size = max_header_size
        self._h11 = self._new_h11()
        self._state = HttpClientState.IDLE
        self._their_http_version: str | None = None
        self._reset_cycle("")

    def _new_h11(self) -> h11.Connection:
        return h11.Connection(h11.CLIENT, max_incomplete_event_size=self._max_header_size)

    def _reset_cycle(self, method: str) -> None:
        self._method = method
        self._head: h11.Response | None = None
        self._body = bytearray()
        self._received = 0  # bytes fed to h11 during this cycle
        self._head_mark = 0  # where the last parsed header block ended, in those bytes
        self._eof = False

    @property
    def state(self) -> HttpClientState:
        """The connection's current state."""
        return self._state

    @property
    def reusable(self) -> bool:
        """True when another request may be sent on this connection."""
        return self._state is HttpClientState.IDLE

    @property
    def their_http_version(self) -> str | None:
        """The HTTP version of the server's last response (such as ``"1.1"``), or None."""
        return self._their_http_version

    def close(self) -> None:
        """Mark the connection as finished; the runtime has stopped using it."""
        self._state = HttpClientState.CLOSED

    def send_request(self, request: HttpRequest) -> bytes:
        """The bytes to write for ``request``: request line, headers and body.

        Adds ``Host``, ``User-Agent`` and ``Content-Length`` unless the request sets them. Raises
        ``LocalProtocolError`` while a request is in flight or when the request is not valid HTTP.
        """
        if self._state is not HttpClientState.IDLE:
            raise LocalProtocolError(
                f"cannot send a request while the connection is {self._state.name}"
            )
        headers: list[tuple[str, str]] = []
        if request.header("host") is None:
            headers.append(("Host", self._host))
        if request.header("user-agent") is None:
            headers.append(("User-Agent", self._user_agent))
        headers.extend(request.headers)
        framed = request.header("content-length") is not None
        framed = framed or request.header("transfer-encoding") is not None
        if not framed and (request.body or request.method not in _BODYLESS_METHODS):
            headers.append(("Content-Length", str(len(request.body))))
        try:
            out = self._h11.send(
                h11.Request(method=request.method, target=request.path, headers=headers)
            )
            if request.body:
                out += self._h11.send(h11.Data(data=request.body))
            out += self._h11.send(h11.EndOfMessage())
        except (h11.LocalProtocolError, UnicodeEncodeError) as exc:
            # Nothing reached the wire, so a fresh parser leaves the connection usable.
            self._h11 = self._new_h11()
            raise LocalProtocolError(f"invalid HTTP request: {exc}") from exc
        self._reset_cycle(request.method)
        self._state = HttpClientState.AWAITING_RESPONSE
        return out

    def receive_data(self, data: bytes) -> HttpResponse | None:
        """Feed bytes read from the server (``b""`` at end of file).

        Returns the response once it is complete, else None. Raises ``RemoteProtocolError``, and
        moves to ERROR, when the server sends something malformed, unsolicited or too large.
        """
        if self._state is HttpClientState.ERROR:
            raise LocalProtocolError("the connection failed earlier; open a new one")
        if self._state is not HttpClientState.AWAITING_RESPONSE:
            if data:
                raise self._fail(f"server sent {len(data)} bytes while no request was outstanding")
            self._state = HttpClientState.CLOSED  # the server closed a finished connection
            return None
        self._received += len(data)
        self._eof = not data
        try:
            self._h11.receive_data(data)
            return self._next_response()
        except h11.RemoteProtocolError as exc:
            raise self._fail(self._describe(exc)) from exc

    def _next_response(self) -> HttpResponse | None:
        while True:
            event = self._h11.next_event()
            if event is h11.NEED_DATA:
                return None
            if isinstance(event, h11.InformationalResponse):
                self._check_head_size()  # 1xx responses are skipped, but count toward the limit
            elif isinstance(event, h11.Response):
                self._check_head_size()
                self._start_body(event)
            elif isinstance(event, h11.Data):
                self._add_body(event.data)
            elif isinstance(event, h11.EndOfMessage):
                return self._finish()
            else:
                # Only a protocol switch (101, or 2xx to CONNECT) pauses h11 before the end.
                raise self._fail("server switched protocols, which this client does not support")

    def _check_head_size(self) -> None:
        head_end = self._received - len(self._h11.trailing_data[0])
        size = head_end - self._head_mark
        self._head_mark = head_end
        if size > self._max_header_size:
            raise self._fail(
                f"response header block of {size} bytes exceeds "
                f"max_header_size ({self._max_header_size})"
            )

    def _start_body(self, head: h11.Response) -> None:
        self._head = head
        self._their_http_version = head.http_version.decode("ascii")
        if self._method == "HEAD" or head.status_code in _NO_BODY_STATUSES:
            return
        for name, value in head.headers:
            if name == b"content-length" and int(value) > self._max_response_size:
                raise self._fail(
                    f"response declares a {int(value)}-byte body, over "
                    f"max_response_size ({self._max_response_size})"
                )

    def _add_body(self, chunk: bytes) -> None:
        self._body += chunk
        if len(self._body) > self._max_response_size:
            raise self._fail(f"response body exceeds max_response_size ({self._max_response_size})")

    def _finish(self) -> HttpResponse:
        head = self._head
        assert head is not None  # h11 always yields a Response before the end of its body
        leftover = len(self._h11.trailing_data[0])
        if leftover:
            raise self._fail(f"server sent {leftover} unexpected bytes after the response")
        response = HttpResponse(
            status=head.status_code,
            headers=normalize_headers(
                tuple(
                    (name.decode("latin-1"), value.decode("latin-1"))
                    for name, value in head.headers
                )
            ),
            body=bytes(self._body),
        )
        if self._h11.our_state is h11.DONE and self._h11.their_state is h11.DONE:
            self._h11.start_next_cycle()
            self._state = HttpClientState.IDLE
        else:
            self._state = HttpClientState.CLOSED
        self._reset_cycle("")
        return response

    def _describe(self, exc: h11.RemoteProtocolError) -> str:
        if self._eof:
            if self._head is None:
                return "server closed the connection before sending a response"
            return f"server closed the connection before the response was complete ({exc})"
        if exc.error_status_hint == 431:
            where = "header block" if self._head is None else "chunk framing or trailers"
            return f"response {where} exceeds max_header_size ({self._max_header_size})"
        return f"malformed HTTP response: {exc}"

    def _fail(self, message: str) -> RemoteProtocolError:
        self._state = HttpClientState.ERROR
        return RemoteProtocolError(message)


# --- the server role -------------------------------------------------------------------------

# A reason phrase may hold tabs, spaces and visible ASCII (RFC 9112, 4); h11 does not check it.
_REASON_CHARS = frozenset("\t" + "".join(chr(code) for code in range(0x20, 0x7F)))


def is_upgrade(request: HttpRequest) -> bool:
    """True when ``request`` is a ``GET`` asking to switch to WebSocket (``Upgrade: websocket``).

    ``HttpServerConnection`` cannot switch protocols: route such a request to the WebSocket layer.
    """
    if request.method != "GET":
        return False
    upgrade = _tokens(request.headers, "upgrade")
    return "websocket" in upgrade and "upgrade" in _tokens(request.headers, "connection")


def _tokens(headers: Headers, name: str) -> set[str]:
    """The comma-separated tokens of every header called ``name``, lower-cased."""
    lowered = name.lower()
    return {
        token.strip().lower()
        for key, value in headers
        if key.lower() == lowered
        for token in value.split(",")
    }


def _standard_reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


class HttpServerState(enum.Enum):
    """Where a server connection stands between request/response cycles."""

    IDLE = "idle"  # waiting for (the rest of) a request
    RESPONDING = "responding"  # a complete request was handed out: answer it before anything else
    CLOSED = "closed"  # finished: close the socket once the last response is written
    ERROR = "error"  # the client broke the protocol: write error_response(), then close


class RejectedRequest(RemoteProtocolError):
    """The client's request cannot be served; ``status_hint`` is the status to answer it with."""

    def __init__(self, message: str, status_hint: int) -> None:
        super().__init__(message)
        self.status_hint = status_hint


class HttpServerConnection:
    """One HTTP/1.1 server connection: each complete request is answered by exactly one response.

    Feed what the socket reads to ``receive_data``; answer each request it (or ``next_request``, for
    requests already buffered) returns with ``send_response``. Protocol switches are not supported:
    check the first request with ``is_upgrade`` and give its bytes to the WebSocket layer instead.
    """

    def __init__(
        self, *, max_request_size: int = 1 * 1024 * 1024, max_header_size: int = 64 * 1024
    ) -> None:
        self._max_request_size = max_request_size
        self._max_header_size = max_header_size
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=max_header_size)
        self._state = HttpServerState.IDLE
        self._fed = 0  # bytes given to h11 so far
        self._mark = 0  # where, in those bytes, the last parsed header block or request ended
        self._eof = False
        self._method = ""  # of the request being read or answered
        self._head: h11.Request | None = None
        self._body = bytearray()

    @property
    def state(self) -> HttpServerState:
        """The connection's current state."""
        return self._state

    @property
    def reading_body(self) -> bool:
        """True once a request's header block is in and until its body is complete."""
        return self._head is not None and self._state is HttpServerState.IDLE

    def receive_data(self, data: bytes) -> HttpRequest | None:
        """Feed bytes read from the client (``b""`` at end of file); returns a request or None.

        Raises ``RejectedRequest``, and moves to ERROR, when a request is malformed or too large.
        """
        if self._state is HttpServerState.CLOSED:
            return None  # no further request will be served, so the bytes are dropped
        self._check_usable()
        if data and self._eof:
            raise LocalProtocolError("bytes fed after the end of file")
        self._fed += len(data)
        self._eof = self._eof or not data
        self._h11.receive_data(data)
        if self._state is HttpServerState.RESPONDING:
            # Pipelined bytes wait for the response; bound how many a client may queue meanwhile.
            if self._fed - self._mark > self._max_header_size + self._max_request_size:
                raise self._reject("client queued too many bytes before the response", 413)
            return None
        return self._next_request()

    def next_request(self) -> HttpRequest | None:
        """The next request already buffered, once the previous one was answered, or None."""
        if self._state is HttpServerState.CLOSED:
            return None
        self._check_usable()
        if self._state is HttpServerState.RESPONDING:
            raise LocalProtocolError("respond to the current request first")
        return self._next_request()

    def send_response(
        self, status: int, headers: Headers = (), body: bytes = b"", *, reason: str | None = None
    ) -> bytes:
        """The bytes to write for the response to the current request.

        Adds ``Content-Length`` unless framing is given, and ``Connection: close`` when the
        connection cannot be reused. Raises ``LocalProtocolError`` unless it is RESPONDING.
        """
        if self._state is not HttpServerState.RESPONDING:
            raise LocalProtocolError(
                f"cannot send a response while the connection is {self._state.name}"
            )
        # A client that half-closed after its last request reads this response and nothing more.
        closing = self._eof and self._fed == self._mark
        out = self._respond(status, headers, body, reason, close=closing)
        if self._h11.our_state is h11.DONE and self._h11.their_state is h11.DONE:
            self._h11.start_next_cycle()
            self._method = ""
            self._state = HttpServerState.IDLE
        else:
            self._state = HttpServerState.CLOSED
        return out

    def error_response(self, status: int, body: bytes = b"") -> bytes:
        """Bytes of a final response with ``Connection: close`` (``body`` as plain text), or b"".

        Meant for ERROR (answer with the error's ``status_hint``), refusals and idle timeouts.
        """
        if self._state is HttpServerState.CLOSED or self._h11.our_state not in {
            h11.IDLE,
            h11.SEND_RESPONSE,
        }:
            return b""  # a response already went out, or the connection broke while sending one
        headers = (("Content-Type", "text/plain; charset=utf-8"),) if body else ()
        out = self._respond(status, headers, body, None, close=True)
        if self._state is not HttpServerState.ERROR:
            self._state = HttpServerState.CLOSED
        return out

    def _check_usable(self) -> None:
        if self._state is HttpServerState.ERROR:
            raise LocalProtocolError("the connection failed earlier; close it")

    def _next_request(self) -> HttpRequest | None:
        try:
            while True:
                event = self._h11.next_event()
                if isinstance(event, h11.Request):
                    self._start_body(event)
                elif isinstance(event, h11.Data):
                    self._add_body(event.data)
                elif isinstance(event, h11.EndOfMessage):
                    return self._finish()
                elif isinstance(event, h11.ConnectionClosed):
                    self._state = HttpServerState.CLOSED  # the client closed between requests
                    return None
                else:
                    # NEED_DATA; PAUSED cannot occur, as reading stops at the end of each request.
                    return None
        except h11.RemoteProtocolError as exc:
            if exc.error_status_hint == 431:
                where = "header block" if self._head is None else "chunk framing or trailers"
                message = f"request {where} exceeds max_header_size ({self._max_header_size})"
            else:
                message = f"malformed HTTP request: {exc}"
            raise self._reject(message, exc.error_status_hint) from exc

    def _consumed(self) -> int:
        return self._fed - len(self._h11.trailing_data[0])

    def _start_body(self, head: h11.Request) -> None:
        head_end = self._consumed()
        size = head_end - self._mark
        self._mark = head_end
        self._head = head
        self._method = head.method.decode("latin-1")
        self._body = bytearray()
        if size > self._max_header_size:
            raise self._reject(
                f"request header block of {size} bytes exceeds "
                f"max_header_size ({self._max_header_size})",
                431,
            )
        for name, value in head.headers:
            if name == b"content-length" and int(value) > self._max_request_size:
                raise self._reject(
                    f"request declares a {int(value)}-byte body, over "
                    f"max_request_size ({self._max_request_size})",
                    413,
                )

    def _add_body(self, chunk: bytes) -> None:
        self._body += chunk
        if len(self._body) > self._max_request_size:
            raise self._reject(
                f"request body exceeds max_request_size ({self._max_request_size})", 413
            )

    def _finish(self) -> HttpRequest:
        head = self._head
        assert head is not None  # h11 always yields a Request before the end of its body
        self._mark = self._consumed()
        request = HttpRequest(
            method=self._method,
            path=head.target.decode("latin-1"),
            headers=tuple(
                (name.decode("latin-1"), value.decode("latin-1"))
                for name, value in head.headers.raw_items()
            ),
            body=bytes(self._body),
        )
        self._head = None
        self._body = bytearray()
        self._state = HttpServerState.RESPONDING
        return request

    def _respond(
        self, status: int, headers: Headers, body: bytes, reason: str | None, *, close: bool
    ) -> bytes:
        if self._method == "CONNECT" and 200 <= status < 300:
            raise LocalProtocolError("a 2xx answer to CONNECT would switch protocols")
        if reason is None:
            reason = _standard_reason(status)
        elif not set(reason) <= _REASON_CHARS:
            raise LocalProtocolError(f"invalid reason phrase {reason!r}")
        bodiless_status = status in _NO_BODY_STATUSES
        if bodiless_status and body:
            raise LocalProtocolError(f"a {status} response cannot carry a body")
        fields = list(headers)
        framed = find_header(headers, "content-length") is not None
        framed = framed or find_header(headers, "transfer-encoding") is not None
        if not framed and not bodiless_status:
            fields.append(("Content-Length", str(len(body))))
        if close and "close" not in _tokens(headers, "connection"):
            fields.append(("Connection", "close"))
        try:
            head = h11.Response(status_code=status, headers=fields, reason=reason)
        except (h11.LocalProtocolError, UnicodeEncodeError) as exc:
            raise LocalProtocolError(f"invalid HTTP response: {exc}") from exc
        # Nothing follows the head of a HEAD, 204 or 304 response (h11 frames those as empty).
        sends_body = self._method != "HEAD" and not bodiless_status
        if sends_body:
            chunked = any(name == b"transfer-encoding" for name, _ in head.headers)
            declared = [int(value) for name, value in head.headers if name == b"content-length"]
            if declared and not chunked and declared[0] != len(body):
                raise LocalProtocolError(
                    f"Content-Length {declared[0]} does not match the {len(body)}-byte body"
                )
        try:
            out = self._h11.send(head)
            if sends_body and body:
                out += self._h11.send(h11.Data(data=body))
            out += self._h11.send(h11.EndOfMessage())
        except h11.LocalProtocolError as exc:
            self._state = HttpServerState.ERROR
            raise LocalProtocolError(f"could not send the response: {exc}") from exc
        return out

    def _reject(self, message: str, status_hint: int) -> RejectedRequest:
        self._state = HttpServerState.ERROR
        return RejectedRequest(message, status_hint)
