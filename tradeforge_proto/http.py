"""A sans-IO HTTP/1.1 client connection built on h11.

``HttpClientConnection`` turns an ``HttpRequest`` into bytes to write and bytes read back into an
``HttpResponse``. It never touches a socket or a clock: a runtime owns the transport, feeds what it
reads (``b""`` at end of file) and writes what it is given. One request is in flight at a time.
"""

from __future__ import annotations

import enum

import h11

from .core.errors import LocalProtocolError, RemoteProtocolError
from .core.operations import HttpRequest, HttpResponse, normalize_headers

__all__ = ["HttpClientConnection", "HttpClientState"]

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
