"""HttpServerConnection paired in memory with HttpClientConnection, plus hand-written wire bytes."""

from __future__ import annotations

import h11
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto import ConnectionType, WSConnection
from wsproto.events import Request as WebSocketRequest

from tradeforge_proto.core.errors import LocalProtocolError, RemoteProtocolError
from tradeforge_proto.core.operations import Headers, HttpRequest, HttpResponse
from tradeforge_proto.http import (
    HttpClientConnection,
    HttpServerConnection,
    HttpServerState,
    RejectedRequest,
    is_upgrade,
)

HOST = "api.topstepx.com"
JSON = b'{"success":true,"errorCode":0,"errorMessage":null,"accounts":[]}'
JSON_TYPE: Headers = (("Content-Type", "application/json"),)
SEARCH = HttpRequest("POST", "/api/Account/search", JSON_TYPE, b'{"onlyActiveAccounts":true}')
GET = HttpRequest("GET", "/api/Status/ping?verbose=1")
SIMPLE = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"


def sent_by_client(request: HttpRequest) -> HttpRequest:
    """``request`` as the server sees it: with the headers the client adds."""
    headers: list[tuple[str, str]] = [
        ("Host", HOST),
        ("User-Agent", "tradeforge"),
        *request.headers,
    ]
    if request.method == "POST":
        headers.append(("Content-Length", str(len(request.body))))
    return HttpRequest(request.method, request.path, tuple(headers), request.body)


class Pair:
    """A client and a server connection wired back to back in memory."""

    def __init__(self, **limits: int) -> None:
        self.client = HttpClientConnection(HOST)
        self.server = HttpServerConnection(**limits)

    def request(self, request: HttpRequest) -> HttpRequest:
        received = self.server.receive_data(self.client.send_request(request))
        assert received is not None
        return received

    def respond(self, status: int, headers: Headers = (), body: bytes = b"") -> HttpResponse:
        response = self.client.receive_data(self.server.send_response(status, headers, body))
        assert response is not None
        return response


def responding(raw: bytes = SIMPLE, **limits: int) -> HttpServerConnection:
    server = HttpServerConnection(**limits)
    assert server.receive_data(raw) is not None
    assert server.state is HttpServerState.RESPONDING
    return server


def rejected(server: HttpServerConnection, *chunks: bytes) -> RejectedRequest:
    *first, last = chunks
    for chunk in first:
        assert server.receive_data(chunk) is None
    with pytest.raises(RejectedRequest) as info:
        server.receive_data(last)
    assert server.state is HttpServerState.ERROR
    return info.value


def parsed_by_client(data: bytes, request: HttpRequest = GET) -> HttpResponse:
    client = HttpClientConnection(HOST)
    client.send_request(request)
    response = client.receive_data(data)
    assert response is not None
    return response


# --- request/response cycles -----------------------------------------------------------------


def test_round_trip_with_the_client() -> None:
    pair = Pair()
    assert pair.request(SEARCH) == sent_by_client(SEARCH)
    out = pair.server.send_response(200, JSON_TYPE, JSON)
    assert out == (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(JSON)).encode() + b"\r\n\r\n" + JSON
    )
    response = pair.client.receive_data(out)
    assert response == HttpResponse(
        200, (("content-type", "application/json"), ("content-length", str(len(JSON)))), JSON
    )
    assert pair.server.state is HttpServerState.IDLE
    assert pair.server.next_request() is None


def test_three_keep_alive_cycles_on_one_connection() -> None:
    pair = Pair()
    for index, request in enumerate((SEARCH, GET, SEARCH)):
        assert pair.request(request) == sent_by_client(request)
        body = b'{"cycle":%d}' % index
        assert pair.respond(200, JSON_TYPE, body).body == body
        assert pair.server.state is HttpServerState.IDLE
        assert pair.client.reusable


def test_request_fed_byte_by_byte() -> None:
    raw = HttpClientConnection(HOST).send_request(SEARCH)
    server = HttpServerConnection()
    results = [server.receive_data(raw[i : i + 1]) for i in range(len(raw))]
    assert results[:-1] == [None] * (len(raw) - 1)
    assert results[-1] == sent_by_client(SEARCH)


def test_request_split_at_every_index() -> None:
    raw = HttpClientConnection(HOST).send_request(SEARCH)
    for cut in range(len(raw) + 1):
        server = HttpServerConnection()
        results = [server.receive_data(part) for part in (raw[:cut], raw[cut:]) if part]
        assert results[-1] == sent_by_client(SEARCH), cut
        assert results[:-1] == [None] * (len(results) - 1)


def test_chunked_request_body_is_reassembled() -> None:
    raw = (
        b"POST /api/Order/place HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'7\r\n{"size"\r\n'
        b"3\r\n:1}\r\n"
        b"0\r\nX-Checksum: abc\r\n\r\n"
    )
    request = HttpServerConnection().receive_data(raw)
    assert request == HttpRequest(
        "POST",
        "/api/Order/place",
        (("Host", "x"), ("Transfer-Encoding", "chunked")),
        b'{"size":1}',
    )


def test_header_names_keep_their_case_and_values_their_bytes() -> None:
    raw = b"GET / HTTP/1.1\r\nhOsT: x\r\nX-Name: caf\xe9\r\n\r\n"
    request = HttpServerConnection().receive_data(raw)
    assert request is not None
    assert request.headers == (("hOsT", "x"), ("X-Name", "caf\xe9"))


def test_pipelined_requests_are_served_one_after_the_other() -> None:
    client = HttpClientConnection(HOST)
    first = client.send_request(SEARCH)
    client = HttpClientConnection(HOST)
    second = client.send_request(GET)
    server = HttpServerConnection()
    assert server.receive_data(first + second) == sent_by_client(SEARCH)
    with pytest.raises(LocalProtocolError, match="respond"):
        server.next_request()
    server.send_response(200, body=b"1")
    assert server.state is HttpServerState.IDLE
    assert server.next_request() == sent_by_client(GET)
    server.send_response(200, body=b"2")
    assert server.next_request() is None
    assert server.state is HttpServerState.IDLE


def test_bytes_read_while_responding_wait_for_the_next_cycle() -> None:
    server = responding()
    assert server.receive_data(SIMPLE[:10]) is None
    assert server.receive_data(SIMPLE[10:]) is None
    server.send_response(200)
    assert server.next_request() == HttpRequest("GET", "/a", (("Host", "x"),))


def test_each_pipelined_header_block_is_measured_on_its_own() -> None:
    head = b"GET /a HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * 40 + b"\r\n\r\n"
    server = HttpServerConnection(max_header_size=len(head))
    assert server.receive_data(head + head) is not None
    server.send_response(200)
    assert server.next_request() is not None


def test_queued_bytes_while_responding_are_bounded() -> None:
    server = responding(max_request_size=10, max_header_size=100)
    assert server.receive_data(b"x" * 110) is None
    assert rejected(server, b"x").status_hint == 413


# --- closing -----------------------------------------------------------------------------------


def test_connection_close_request_closes_after_the_response() -> None:
    pair = Pair()
    pair.request(GET.with_header("Connection", "close"))
    response = pair.respond(200, body=b"bye")
    assert response.header("connection") == "close"
    assert pair.server.state is HttpServerState.CLOSED
    assert pair.server.receive_data(SIMPLE) is None  # no request is served after the close
    assert pair.server.receive_data(b"") is None
    assert pair.server.next_request() is None
    assert pair.server.error_response(500) == b""
    with pytest.raises(LocalProtocolError):
        pair.server.send_response(200)


def test_response_with_connection_close_closes() -> None:
    server = responding()
    out = server.send_response(200, (("Connection", "close"),))
    assert out.count(b"Connection: close") == 1
    assert server.state is HttpServerState.CLOSED


def test_http_1_0_request_is_answered_then_closed() -> None:
    server = responding(b"GET /x HTTP/1.0\r\n\r\n")
    out = server.send_response(200, body=b"hi")
    assert out == b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi"
    assert server.state is HttpServerState.CLOSED


def test_eof_at_idle_is_a_clean_close() -> None:
    server = HttpServerConnection()
    assert server.receive_data(b"") is None
    assert server.state is HttpServerState.CLOSED
    pair = Pair()
    pair.request(GET)
    pair.respond(200)
    assert pair.server.receive_data(b"") is None
    assert pair.server.state is HttpServerState.CLOSED


def test_eof_after_the_request_closes_after_its_response() -> None:
    server = responding()
    assert server.receive_data(b"") is None
    out = server.send_response(200, (("connection", "close"),))
    assert out.lower().count(b"connection: close") == 1
    assert server.state is HttpServerState.CLOSED
    server = responding()
    server.receive_data(b"")
    assert b"Connection: close" in server.send_response(204)
    assert server.state is HttpServerState.CLOSED


def test_pipelined_requests_then_eof_are_all_answered() -> None:
    server = responding(SIMPLE + SIMPLE)
    server.receive_data(b"")
    assert b"Connection" not in server.send_response(200)
    assert server.next_request() is not None
    assert b"Connection: close" in server.send_response(200)
    assert server.state is HttpServerState.CLOSED


def test_bytes_after_eof_are_refused() -> None:
    server = responding()
    server.receive_data(b"")
    with pytest.raises(LocalProtocolError, match="end of file"):
        server.receive_data(b"x")


def test_eof_mid_request_is_an_error() -> None:
    raw = HttpClientConnection(HOST).send_request(SEARCH)
    error = rejected(HttpServerConnection(), raw[:-5], b"")
    assert error.status_hint == 400
    assert isinstance(error, RemoteProtocolError)
    assert rejected(HttpServerConnection(), b"GET / HTTP/1.1\r\nHo", b"").status_hint == 400


# --- malformed and oversized requests --------------------------------------------------------


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 8 + b"\r\n\r\n",
        b"NOT HTTP AT ALL\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",  # no Host
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
)
def test_garbage_is_rejected_with_a_400(garbage: bytes) -> None:
    server = HttpServerConnection()
    assert rejected(server, garbage).status_hint == 400
    out = server.error_response(400)
    response = parsed_by_client(out)
    assert response.status == 400
    assert response.header("connection") == "close"
    assert response.body == b""
    assert server.state is HttpServerState.ERROR


def test_error_state_refuses_further_use() -> None:
    server = HttpServerConnection()
    rejected(server, b"NOT HTTP\r\n\r\n")
    with pytest.raises(LocalProtocolError, match="failed earlier"):
        server.receive_data(SIMPLE)
    with pytest.raises(LocalProtocolError, match="failed earlier"):
        server.next_request()
    with pytest.raises(LocalProtocolError, match="ERROR"):
        server.send_response(200)


def test_error_response_carries_a_text_body() -> None:
    server = HttpServerConnection()
    rejected(server, b"NOT HTTP\r\n\r\n")
    response = parsed_by_client(server.error_response(400, b"bad request line"))
    assert response == HttpResponse(
        400,
        (
            ("content-type", "text/plain; charset=utf-8"),
            ("content-length", "16"),
            ("connection", "close"),
        ),
        b"bad request line",
    )


def test_declared_body_over_the_limit_is_a_413() -> None:
    server = HttpServerConnection(max_request_size=26)
    raw = HttpClientConnection(HOST).send_request(SEARCH)
    error = rejected(server, raw[: raw.index(b"\r\n\r\n") + 4])
    assert error.status_hint == 413
    assert "27-byte body" in str(error)
    assert parsed_by_client(server.error_response(413), SEARCH).status == 413


def test_body_at_the_limit_is_accepted() -> None:
    server = HttpServerConnection(max_request_size=27)
    assert server.receive_data(HttpClientConnection(HOST).send_request(SEARCH)) is not None


def test_chunked_body_over_the_limit_is_a_413() -> None:
    head = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    server = HttpServerConnection(max_request_size=10)
    error = rejected(server, head, b"6\r\nabcdef\r\n", b"6\r\nabcde")
    assert error.status_hint == 413
    assert "max_request_size (10)" in str(error)


def test_header_block_over_the_limit_is_a_431() -> None:
    head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * 100 + b"\r\n\r\n"
    whole = rejected(HttpServerConnection(max_header_size=100), head)
    assert whole.status_hint == 431
    assert "max_header_size (100)" in str(whole)
    growing = rejected(HttpServerConnection(max_header_size=100), head[:60], head[60:110])
    assert growing.status_hint == 431
    assert "max_header_size (100)" in str(growing)


def test_chunk_framing_over_the_header_limit_is_a_431() -> None:
    head = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    error = rejected(HttpServerConnection(max_header_size=100), head, b"1;" + b"x" * 120)
    assert error.status_hint == 431
    assert "chunk framing or trailers" in str(error)


def test_unsupported_transfer_coding_keeps_the_hint() -> None:
    raw = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"
    assert rejected(HttpServerConnection(), raw).status_hint == 501


# --- responses ---------------------------------------------------------------------------------


def test_send_response_outside_responding_is_refused() -> None:
    server = HttpServerConnection()
    with pytest.raises(LocalProtocolError, match="IDLE"):
        server.send_response(200)
    assert server.state is HttpServerState.IDLE


def test_head_response_declares_the_length_but_sends_no_body() -> None:
    pair = Pair()
    pair.request(HttpRequest("HEAD", "/api/Status/ping"))
    out = pair.server.send_response(200, JSON_TYPE, JSON)
    assert out.endswith(b"Content-Length: %d\r\n\r\n" % len(JSON))
    response = pair.client.receive_data(out)
    assert response is not None
    assert response.body == b""
    assert response.header("content-length") == str(len(JSON))
    assert pair.server.state is HttpServerState.IDLE


def test_no_content_and_not_modified_have_no_body() -> None:
    server = responding()
    with pytest.raises(LocalProtocolError, match="204"):
        server.send_response(204, body=b"x")
    assert server.state is HttpServerState.RESPONDING
    assert server.send_response(204) == b"HTTP/1.1 204 No Content\r\n\r\n"
    server = responding()
    out = server.send_response(304, (("Content-Length", "10"),))
    assert out == b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n"
    assert server.state is HttpServerState.IDLE


def test_callers_framing_is_kept() -> None:
    server = responding()
    out = server.send_response(200, (("content-length", "2"),), b"{}")
    assert out == b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"
    pair = Pair()
    pair.request(GET)
    response = pair.respond(200, (("Transfer-Encoding", "chunked"),), JSON)
    assert response.body == JSON
    assert response.header("transfer-encoding") == "chunked"
    assert pair.server.state is HttpServerState.IDLE


def test_reason_phrases() -> None:
    assert responding().send_response(200, reason="Fine").startswith(b"HTTP/1.1 200 Fine\r\n")
    assert responding().send_response(299).startswith(b"HTTP/1.1 299 \r\n")
    assert responding().send_response(404).startswith(b"HTTP/1.1 404 Not Found\r\n")


@pytest.mark.parametrize(
    ("status", "headers", "body", "reason"),
    [
        (200, (("X-Bad", "a\r\nInjected: 1"),), b"", None),
        (200, (("X-Name", "caf\u00e9"),), b"", None),
        (200, (("Bad Name", "x"),), b"", None),
        (200, (("Transfer-Encoding", "gzip"),), b"", None),
        (200, (("Content-Length", "5"),), b"{}", None),
        (200, (), b"", "OK\r\nInjected: 1"),
        (200, (), b"", "d\u00e9j\u00e0"),
        (101, (), b"", None),
        (1000, (), b"", None),
    ],
)
def test_invalid_responses_are_refused_and_the_request_stays_open(
    status: int, headers: Headers, body: bytes, reason: str | None
) -> None:
    server = responding()
    with pytest.raises(LocalProtocolError):
        server.send_response(status, headers, body, reason=reason)
    assert server.state is HttpServerState.RESPONDING
    assert server.send_response(500).startswith(b"HTTP/1.1 500 Internal Server Error\r\n")


def test_connect_cannot_switch_protocols() -> None:
    server = responding(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
    with pytest.raises(LocalProtocolError, match="CONNECT"):
        server.send_response(200)
    assert server.send_response(405).startswith(b"HTTP/1.1 405 ")
    assert server.state is HttpServerState.IDLE


def test_a_failed_write_breaks_the_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    server = responding()
    machine = server._h11

    def broken(event: h11.Event) -> bytes:
        machine.send_failed()
        raise h11.LocalProtocolError("write failed")

    monkeypatch.setattr(machine, "send", broken)
    with pytest.raises(LocalProtocolError, match="could not send"):
        server.send_response(200)
    assert server.state is HttpServerState.ERROR
    assert server.error_response(500) == b""


def test_error_response_while_idle_times_the_client_out() -> None:
    server = HttpServerConnection()
    out = server.error_response(408)
    assert out == (
        b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    assert server.state is HttpServerState.CLOSED
    assert server.error_response(408) == b""
    partial = HttpServerConnection()
    assert partial.receive_data(SIMPLE[:-2]) is None
    assert partial.error_response(408).startswith(b"HTTP/1.1 408 ")
    assert partial.state is HttpServerState.CLOSED


def test_error_response_while_responding_ends_the_connection() -> None:
    server = responding()
    assert parsed_by_client(server.error_response(503, b"busy")).body == b"busy"
    assert server.state is HttpServerState.CLOSED
    with pytest.raises(LocalProtocolError):
        server.send_response(200)
    head = responding(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert head.error_response(503, b"busy").endswith(b"Connection: close\r\n\r\n")


# --- WebSocket upgrades ------------------------------------------------------------------------


def test_websocket_handshake_is_an_upgrade() -> None:
    raw = WSConnection(ConnectionType.CLIENT).send(
        WebSocketRequest(host="localhost", target="/hubs/user?access_token=x")
    )
    server = HttpServerConnection()
    request = server.receive_data(raw)
    assert request is not None
    assert request.path == "/hubs/user?access_token=x"
    assert is_upgrade(request)
    # This connection does not switch: a plain refusal ends the cycle normally.
    server.send_response(426, (("Upgrade", "websocket"),))
    assert server.state is HttpServerState.IDLE


@pytest.mark.parametrize(
    ("method", "headers", "expected"),
    [
        ("GET", (("Upgrade", "websocket"), ("Connection", "Upgrade")), True),
        ("GET", (("upgrade", "h2c, WebSocket"), ("connection", "keep-alive, upgrade")), True),
        ("GET", (("Upgrade", "websocket"), ("Connection", "x"), ("Connection", "Upgrade")), True),
        ("GET", (("Upgrade", "websocket"),), False),
        ("GET", (("Upgrade", "h2c"), ("Connection", "Upgrade")), False),
        ("GET", (("Connection", "Upgrade"),), False),
        ("POST", (("Upgrade", "websocket"), ("Connection", "Upgrade")), False),
        ("GET", (("Host", "x"),), False),
    ],
)
def test_is_upgrade(method: str, headers: Headers, expected: bool) -> None:
    assert is_upgrade(HttpRequest(method, "/hubs/market", headers)) is expected


def test_ordinary_requests_are_not_upgrades() -> None:
    assert not is_upgrade(Pair().request(SEARCH))
    assert not is_upgrade(Pair().request(GET))


# --- properties --------------------------------------------------------------------------------

FRAGMENTS = [
    b"GET / HTTP/1.1\r\n",
    b"POST /api/Order/place HTTP/1.1\r\n",
    b"HEAD / HTTP/1.0\r\n",
    b"Host: x\r\n",
    b"Content-Length: 3\r\n",
    b"Content-Length: 99\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Connection: close\r\n",
    b"Upgrade: websocket\r\nConnection: Upgrade\r\n",
    b"\r\n",
    b"abc",
    b"3\r\nabc\r\n",
    b"0\r\n\r\n",
]


REQUESTS = st.builds(
    HttpRequest,
    method=st.sampled_from(["GET", "POST", "DELETE", "HEAD"]),
    path=st.sampled_from(["/", "/api/Order/place", "/api/History/retrieveBars?x=1"]),
    headers=st.sampled_from([(), (("X-Id", "1"),), (("Transfer-Encoding", "chunked"),)]),
    body=st.binary(max_size=40),
)


def split(raw: bytes, cuts: list[int]) -> list[bytes]:
    """``raw`` cut at each of ``cuts`` (taken modulo its length), without empty pieces."""
    points = sorted({cut % (len(raw) + 1) for cut in cuts})
    return [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)], strict=True) if b > a]


def wire(requests: list[HttpRequest]) -> bytes:
    return b"".join(HttpClientConnection(HOST).send_request(request) for request in requests)


@st.composite
def damaged_streams(draw: st.DrawFn) -> list[bytes]:
    """Valid pipelined requests with a few bytes overwritten, cut into arbitrary pieces."""
    raw = bytearray(wire(draw(st.lists(REQUESTS, min_size=1, max_size=3))))
    for _ in range(draw(st.integers(0, 3))):
        raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
    return split(bytes(raw), draw(st.lists(st.integers(0, len(raw)), max_size=6)))


@settings(max_examples=200, deadline=None)
@given(requests=st.lists(REQUESTS, min_size=1, max_size=4), cuts=st.lists(st.integers()))
def test_pipelined_requests_in_arbitrary_pieces(
    requests: list[HttpRequest], cuts: list[int]
) -> None:
    server = HttpServerConnection()
    served: list[HttpRequest] = []
    for piece in split(wire(requests), cuts):
        request = server.receive_data(piece)
        while request is not None:
            served.append(request)
            server.send_response(200, body=b"ok")
            request = server.next_request()
    assert [(r.method, r.path, r.body) for r in served] == [
        (r.method, r.path, r.body) for r in requests
    ]
    assert server.state is HttpServerState.IDLE


@settings(max_examples=300, deadline=None)
@given(
    chunks=st.one_of(
        st.lists(
            st.one_of(st.binary(min_size=1, max_size=24), st.sampled_from(FRAGMENTS)), max_size=24
        ),
        damaged_streams(),
    ),
    eof=st.booleans(),
)
def test_arbitrary_bytes_only_raise_rejected_request(chunks: list[bytes], eof: bool) -> None:
    server = HttpServerConnection(max_request_size=64, max_header_size=128)
    error: RejectedRequest | None = None
    try:
        for chunk in [*chunks, b""] if eof else chunks:
            request = server.receive_data(chunk)
            while request is not None:
                assert isinstance(request, HttpRequest)
                assert server.state is HttpServerState.RESPONDING
                server.send_response(404, body=b"none")
                request = server.next_request()
    except RejectedRequest as exc:
        error = exc
    if error is None:
        assert server.state is not HttpServerState.ERROR
    else:
        assert server.state is HttpServerState.ERROR
        assert 400 <= error.status_hint < 600
        assert server.error_response(error.status_hint)[:10] in (b"HTTP/1.1 4", b"HTTP/1.1 5")


HEADER_NAMES = st.one_of(
    st.sampled_from(["Content-Type", "Connection", "Content-Length", "Transfer-Encoding"]),
    st.text(max_size=8),
)
HEADER_VALUES = st.one_of(
    st.sampled_from(["close", "chunked", "2", "0", "keep-alive", "application/json"]),
    st.text(max_size=8),
)


@settings(max_examples=300, deadline=None)
@given(
    status=st.integers(0, 1100),
    headers=st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=4),
    body=st.sampled_from([b"", b"{}", JSON]),
    reason=st.one_of(st.none(), st.text(max_size=6)),
)
def test_responses_are_refused_or_readable_by_the_client(
    status: int, headers: list[tuple[str, str]], body: bytes, reason: str | None
) -> None:
    pair = Pair()
    pair.request(GET)
    try:
        out = pair.server.send_response(status, tuple(headers), body, reason=reason)
    except LocalProtocolError:
        assert pair.server.state is HttpServerState.RESPONDING
        return
    response = pair.client.receive_data(out)
    assert response is not None
    assert response.status == status
    assert response.body == (b"" if status in (204, 304) else body)
    assert pair.server.state in (HttpServerState.IDLE, HttpServerState.CLOSED)
