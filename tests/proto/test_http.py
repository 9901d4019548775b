"""HttpClientConnection against an in-memory h11 server: exact bytes, framing, reuse and limits."""

from __future__ import annotations

import h11
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeforge_proto.core.errors import LocalProtocolError, RemoteProtocolError
from tradeforge_proto.core.operations import HttpRequest, HttpResponse
from tradeforge_proto.http import HttpClientConnection, HttpClientState

HOST = "api.topstepx.com"
JSON = b'{"success":true,"errorCode":0,"errorMessage":null,"accounts":[]}'
SEARCH = HttpRequest(
    "POST",
    "/api/Account/search",
    headers=(("Content-Type", "application/json"),),
    body=b'{"onlyActiveAccounts":true}',
)
GET = HttpRequest("GET", "/api/Status/ping")


class Server:
    """An in-memory h11 server: parses what the client wrote and produces real response bytes."""

    def __init__(self) -> None:
        self.h11 = h11.Connection(h11.SERVER)

    def receive(self, data: bytes) -> list[h11.Event]:
        self.h11.receive_data(data)
        events: list[h11.Event] = []
        while True:
            event = self.h11.next_event()
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return events
            assert isinstance(event, h11.Event)
            events.append(event)

    def respond(
        self,
        status: int = 200,
        headers: list[tuple[str, str]] | None = None,
        chunks: tuple[bytes, ...] = (JSON,),
    ) -> bytes:
        out = self.h11.send(h11.Response(status_code=status, headers=headers or []))
        for chunk in chunks:
            out += self.h11.send(h11.Data(data=chunk))
        out += self.h11.send(h11.EndOfMessage())
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
            self.h11.start_next_cycle()
        return out


def content_length_response(body: bytes = JSON) -> bytes:
    server = Server()
    server.receive(HttpClientConnection(HOST).send_request(SEARCH))
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    return server.respond(headers=headers, chunks=(body,))


def chunked_response() -> bytes:
    server = Server()
    server.receive(HttpClientConnection(HOST).send_request(SEARCH))
    return server.respond(
        headers=[("Content-Type", "application/json")], chunks=(JSON[:20], JSON[20:])
    )


CLOSE_DELIMITED = [
    b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + JSON,
    b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: application/json\r\n\r\n" + JSON,
]


def awaiting(
    request: HttpRequest = SEARCH,
    *,
    max_response_size: int = 1 << 20,
    max_header_size: int = 1 << 16,
) -> HttpClientConnection:
    conn = HttpClientConnection(
        HOST, max_response_size=max_response_size, max_header_size=max_header_size
    )
    conn.send_request(request)
    return conn


# --- what goes on the wire -------------------------------------------------------------------


def test_post_with_json_body_exact_bytes() -> None:
    data = HttpClientConnection(HOST).send_request(SEARCH)
    assert data == (
        b"POST /api/Account/search HTTP/1.1\r\n"
        b"Host: api.topstepx.com\r\n"
        b"User-Agent: tradeforge\r\n"
        b"Content-Type: application/json\r\n"
        b"Content-Length: 27\r\n"
        b"\r\n"
        b'{"onlyActiveAccounts":true}'
    )
    events = Server().receive(data)
    assert isinstance(events[0], h11.Request)
    assert events[0].method == b"POST"
    assert events[0].target == b"/api/Account/search"
    assert list(events[0].headers) == [
        (b"host", b"api.topstepx.com"),
        (b"user-agent", b"tradeforge"),
        (b"content-type", b"application/json"),
        (b"content-length", b"27"),
    ]
    assert events[1] == h11.Data(data=b'{"onlyActiveAccounts":true}')
    assert isinstance(events[2], h11.EndOfMessage)


def test_get_has_no_content_length() -> None:
    data = HttpClientConnection("127.0.0.1:8123", user_agent="probe/1").send_request(GET)
    assert data == (
        b"GET /api/Status/ping HTTP/1.1\r\nHost: 127.0.0.1:8123\r\nUser-Agent: probe/1\r\n\r\n"
    )
    events = Server().receive(data)
    assert isinstance(events[0], h11.Request)
    assert isinstance(events[1], h11.EndOfMessage)


def test_post_with_empty_body_declares_zero_length() -> None:
    data = HttpClientConnection(HOST).send_request(HttpRequest("POST", "/api/Auth/validate"))
    assert data.endswith(b"Content-Length: 0\r\n\r\n")


def test_callers_host_user_agent_and_length_are_kept_not_duplicated() -> None:
    request = HttpRequest(
        "POST",
        "/x",
        headers=(("host", "other.example"), ("user-agent", "mine"), ("content-length", "2")),
        body=b"{}",
    )
    data = HttpClientConnection(HOST).send_request(request)
    assert data == (
        b"POST /x HTTP/1.1\r\nhost: other.example\r\nuser-agent: mine\r\n"
        b"content-length: 2\r\n\r\n{}"
    )


def test_callers_chunked_transfer_encoding_frames_the_body() -> None:
    request = HttpRequest("POST", "/x", headers=(("Transfer-Encoding", "chunked"),), body=b"{}")
    data = HttpClientConnection(HOST).send_request(request)
    assert b"Content-Length" not in data
    assert data.endswith(b"\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
    events = Server().receive(data)
    assert events[1] == h11.Data(data=b"{}", chunk_start=True, chunk_end=True)


@pytest.mark.parametrize(
    "request_",
    [
        HttpRequest("POST", "/x", headers=(("Content-Length", "5"),), body=b"{}"),
        HttpRequest("POST", "/x", headers=(("Content-Length", "1"),), body=b"{}"),
        HttpRequest("GET", "/has space"),
        HttpRequest("GET", "/x", headers=(("X-Name", "caf\u00e9"),)),
        HttpRequest("GET", "/caf\u00e9"),
    ],
    ids=["length-too-big", "length-too-small", "bad-target", "non-ascii-header", "non-ascii-path"],
)
def test_invalid_request_is_refused_and_connection_stays_usable(request_: HttpRequest) -> None:
    conn = HttpClientConnection(HOST)
    with pytest.raises(LocalProtocolError, match="invalid HTTP request"):
        conn.send_request(request_)
    assert conn.state is HttpClientState.IDLE
    server = Server()
    server.receive(conn.send_request(SEARCH))
    response = conn.receive_data(server.respond(headers=[("Content-Length", str(len(JSON)))]))
    assert response is not None
    assert response.body == JSON


# --- responses, whole and split ------------------------------------------------------------


def expected_json_response(response: HttpResponse | None) -> None:
    assert response is not None
    assert response.status == 200
    assert response.header("content-type") == "application/json"
    assert response.body == JSON
    assert all(name == name.lower() for name, _ in response.headers)


@pytest.mark.parametrize("make", [content_length_response, chunked_response])
def test_response_fed_whole(make: object) -> None:
    assert callable(make)
    conn = awaiting()
    response = conn.receive_data(make())
    expected_json_response(response)
    assert conn.state is HttpClientState.IDLE
    assert conn.reusable
    assert conn.their_http_version == "1.1"


@pytest.mark.parametrize("make", [content_length_response, chunked_response])
def test_response_fed_byte_by_byte(make: object) -> None:
    assert callable(make)
    raw: bytes = make()
    conn = awaiting()
    results = [conn.receive_data(raw[i : i + 1]) for i in range(len(raw))]
    assert results[:-1] == [None] * (len(raw) - 1)
    expected_json_response(results[-1])
    assert conn.reusable


@pytest.mark.parametrize("make", [content_length_response, chunked_response])
def test_response_split_at_every_point(make: object) -> None:
    assert callable(make)
    raw: bytes = make()
    for i in range(1, len(raw)):  # raw[:0] would be b"", which means end of file
        conn = awaiting()
        assert conn.receive_data(raw[:i]) is None, i
        expected_json_response(conn.receive_data(raw[i:]))
        assert conn.reusable


@pytest.mark.parametrize("raw", CLOSE_DELIMITED, ids=["http10", "connection-close"])
def test_read_until_close_body_at_every_split_point(raw: bytes) -> None:
    for i in range(1, len(raw)):
        conn = awaiting()
        assert conn.receive_data(raw[:i]) is None
        assert conn.receive_data(raw[i:]) is None
        response = conn.receive_data(b"")
        expected_json_response(response)
        assert conn.state is HttpClientState.CLOSED
        assert not conn.reusable


def test_read_until_close_body_byte_by_byte() -> None:
    raw = CLOSE_DELIMITED[0]
    conn = awaiting()
    assert all(conn.receive_data(raw[i : i + 1]) is None for i in range(len(raw)))
    expected_json_response(conn.receive_data(b""))
    assert conn.their_http_version == "1.0"
    assert conn.state is HttpClientState.CLOSED


def test_informational_response_is_skipped() -> None:
    raw = b"HTTP/1.1 100 Continue\r\n\r\n" + content_length_response()
    for i in range(1, len(raw)):
        conn = awaiting()
        assert conn.receive_data(raw[:i]) is None
        expected_json_response(conn.receive_data(raw[i:]))


def test_header_values_keep_non_ascii_bytes_as_latin1() -> None:
    conn = awaiting()
    response = conn.receive_data(b"HTTP/1.1 200 OK\r\nX-Note: caf\xe9\r\nContent-Length: 0\r\n\r\n")
    assert response == HttpResponse(200, (("x-note", "caf\u00e9"), ("content-length", "0")), b"")


# --- connection reuse -----------------------------------------------------------------------


def test_keep_alive_two_cycles_on_one_connection() -> None:
    conn = HttpClientConnection(HOST)
    server = Server()
    for body in (b'{"n":1}', b'{"n":22}'):
        request = conn.send_request(SEARCH)
        events = server.receive(request)
        assert isinstance(events[0], h11.Request)
        assert not conn.reusable
        response = conn.receive_data(
            server.respond(headers=[("Content-Length", str(len(body)))], chunks=(body,))
        )
        assert response is not None
        assert response.body == body
        assert conn.reusable


def test_connection_close_response_is_not_reusable() -> None:
    conn = HttpClientConnection(HOST)
    server = Server()
    server.receive(conn.send_request(SEARCH))
    headers = [
        ("Connection", "close"),
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(JSON))),
    ]
    raw = server.respond(headers=headers)
    expected_json_response(conn.receive_data(raw))
    assert conn.state is HttpClientState.CLOSED
    assert not conn.reusable
    with pytest.raises(LocalProtocolError, match="CLOSED"):
        conn.send_request(SEARCH)
    assert conn.receive_data(b"") is None  # the server's close that follows is expected
    assert conn.state is HttpClientState.CLOSED


def test_request_with_connection_close_is_not_reusable() -> None:
    request = SEARCH.with_header("Connection", "close")
    conn = awaiting(request)
    expected_json_response(conn.receive_data(content_length_response()))
    assert conn.state is HttpClientState.CLOSED


def test_second_request_while_awaiting_is_refused() -> None:
    conn = awaiting()
    with pytest.raises(LocalProtocolError, match="AWAITING_RESPONSE"):
        conn.send_request(SEARCH)
    expected_json_response(conn.receive_data(content_length_response()))


def test_server_closing_idle_connection_is_clean() -> None:
    conn = HttpClientConnection(HOST)
    assert conn.receive_data(b"") is None
    assert conn.state is HttpClientState.CLOSED
    with pytest.raises(LocalProtocolError):
        conn.send_request(GET)


def test_close_marks_connection_closed() -> None:
    conn = awaiting()
    conn.close()
    assert conn.state is HttpClientState.CLOSED
    assert not conn.reusable
    with pytest.raises(LocalProtocolError):
        conn.send_request(GET)


def test_head_and_not_modified_ignore_declared_length() -> None:
    conn = awaiting(HttpRequest("HEAD", "/big"), max_response_size=10)
    response = conn.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n")
    assert response is not None
    assert response.body == b""
    assert conn.reusable
    conn.send_request(GET)
    response = conn.receive_data(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 1000000\r\n\r\n")
    assert response is not None
    assert response.status == 304


# --- what the server can get wrong --------------------------------------------------------


def assert_failed(conn: HttpClientConnection, data: bytes, match: str) -> None:
    with pytest.raises(RemoteProtocolError, match=match):
        conn.receive_data(data)
    assert conn.state is HttpClientState.ERROR
    assert not conn.reusable
    with pytest.raises(LocalProtocolError):
        conn.send_request(GET)
    with pytest.raises(LocalProtocolError, match="failed earlier"):
        conn.receive_data(b"")


def feed_bytewise(conn: HttpClientConnection, raw: bytes) -> None:
    for i in range(len(raw)):
        assert conn.receive_data(raw[i : i + 1]) is None


def test_truncated_body_then_eof() -> None:
    conn = awaiting()
    assert conn.receive_data(content_length_response()[:-5]) is None
    assert_failed(conn, b"", "before the response was complete")


def test_truncated_chunked_body_then_eof() -> None:
    conn = awaiting()
    assert conn.receive_data(chunked_response()[:-7]) is None
    assert_failed(conn, b"", "before the response was complete")


@pytest.mark.parametrize("partial", [b"", b"HTTP/1.1 200", b"HTTP/1.1 100 Continue\r\n\r\n"])
def test_eof_before_any_response(partial: bytes) -> None:
    conn = awaiting()
    if partial:
        assert conn.receive_data(partial) is None
    assert_failed(conn, b"", "before sending a response")


@pytest.mark.parametrize(
    "garbage",
    [
        b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
)
def test_malformed_response(garbage: bytes) -> None:
    assert_failed(awaiting(), garbage, "malformed HTTP response")


def test_bytes_after_complete_response_in_same_read() -> None:
    raw = content_length_response()
    assert_failed(awaiting(), raw + b"HTTP/1.1 200 OK\r\n", "17 unexpected bytes")


def test_bytes_after_complete_response_in_later_read() -> None:
    conn = awaiting()
    expected_json_response(conn.receive_data(content_length_response()))
    assert_failed(conn, content_length_response(), "no request was outstanding")


def test_bytes_after_must_close_response() -> None:
    conn = awaiting()
    raw = b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"
    assert conn.receive_data(raw) is not None
    assert_failed(conn, b"x", "no request was outstanding")


def test_declared_body_over_limit() -> None:
    conn = awaiting(max_response_size=len(JSON) - 1)
    raw = content_length_response()
    head = raw[: raw.index(b"\r\n\r\n") + 4]
    assert_failed(conn, head, f"declares a {len(JSON)}-byte body")


def test_declared_body_at_limit_is_accepted() -> None:
    conn = awaiting(max_response_size=len(JSON))
    expected_json_response(conn.receive_data(content_length_response()))


@pytest.mark.parametrize("raw", [chunked_response(), CLOSE_DELIMITED[0]], ids=["chunked", "eof"])
def test_undeclared_body_over_limit(raw: bytes) -> None:
    conn = awaiting(max_response_size=len(JSON) - 1)
    with pytest.raises(RemoteProtocolError, match="exceeds max_response_size"):
        feed_bytewise(conn, raw)
    assert conn.state is HttpClientState.ERROR


def test_header_block_over_limit_in_one_read() -> None:
    raw = b"HTTP/1.1 200 OK\r\nX-Pad: " + b"a" * 200 + b"\r\nContent-Length: 0\r\n\r\n"
    assert_failed(awaiting(max_header_size=100), raw, "header block of 247 bytes")


def test_header_block_over_limit_trickled() -> None:
    conn = awaiting(max_header_size=100)
    assert conn.receive_data(b"HTTP/1.1 200 OK\r\nX-Pad: ") is None
    assert_failed(conn, b"a" * 200, "header block exceeds max_header_size")


def test_informational_headers_count_toward_limit() -> None:
    raw = b"HTTP/1.1 100 Continue\r\nX-Pad: " + b"a" * 200 + b"\r\n\r\n"
    assert_failed(awaiting(max_header_size=100), raw, "header block of")


def test_header_block_at_limit_is_accepted() -> None:
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"
    conn = awaiting(max_header_size=len(raw))
    response = conn.receive_data(raw + b"{}")
    assert response is not None
    assert response.body == b"{}"


def test_endless_chunk_header_over_limit() -> None:
    conn = awaiting(max_header_size=100)
    assert conn.receive_data(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n") is None
    assert_failed(conn, b"5;ext=" + b"a" * 200, "chunk framing or trailers")


def test_protocol_switch_is_refused() -> None:
    conn = awaiting(GET.with_header("Upgrade", "websocket"))
    raw = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    assert_failed(conn, raw, "switched protocols")


def test_unsolicited_switching_protocols_is_malformed() -> None:
    raw = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"
    assert_failed(awaiting(), raw, "malformed HTTP response")


# --- any bytes at all ---------------------------------------------------------------------

VALID = [content_length_response(), chunked_response(), *CLOSE_DELIMITED]


@st.composite
def server_bytes(draw: st.DrawFn) -> list[bytes]:
    if draw(st.booleans()):
        valid = draw(st.sampled_from(VALID))
        raw = valid[: draw(st.integers(0, len(valid)))] + draw(st.binary(max_size=40))
    else:
        raw = draw(st.binary(max_size=200))
    cuts = sorted(draw(st.lists(st.integers(0, len(raw)), max_size=8)))
    chunks = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
    chunks = [chunk for chunk in chunks if chunk]
    if draw(st.booleans()):
        chunks.append(b"")
    return chunks


@settings(max_examples=200, deadline=None)
@given(chunks=server_bytes(), method=st.sampled_from(["GET", "HEAD", "POST"]))
def test_any_bytes_give_a_response_none_or_remote_error(chunks: list[bytes], method: str) -> None:
    conn = awaiting(HttpRequest(method, "/x"), max_header_size=128, max_response_size=256)
    try:
        for chunk in chunks:
            result = conn.receive_data(chunk)
            assert result is None or isinstance(result, HttpResponse)
    except RemoteProtocolError:
        assert conn.state is HttpClientState.ERROR
