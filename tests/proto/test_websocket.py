"""WebSocketClient and WebSocketServer paired in memory: handshake, messages, close, limits."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, Ping, TextMessage

from tradeforge_proto.core.errors import LocalProtocolError, RemoteProtocolError
from tradeforge_proto.websocket import (
    Accepted,
    BytesReceived,
    ConnectionClosed,
    PingReceived,
    PongReceived,
    Rejected,
    TextReceived,
    UpgradeRequested,
    WebSocketClient,
    WebSocketServer,
    WebSocketState,
    WsEndpoint,
    WsEvent,
    ws_endpoint,
)

HOST = "rtc.example.test"
TARGET = "/hubs/market?access_token=tok%2Fx"
MIB = 1024 * 1024
EVENT_TYPES = (
    Accepted,
    Rejected,
    UpgradeRequested,
    TextReceived,
    BytesReceived,
    PingReceived,
    PongReceived,
    ConnectionClosed,
)

Peer = WebSocketClient | WebSocketServer


def pump(sender: Peer, receiver: Peer) -> list[WsEvent]:
    """Move everything ``sender`` queued into ``receiver``; the events it produced."""
    return receiver.receive_data(sender.data_to_send())


def chunked(data: bytes, sizes: list[int]) -> list[bytes]:
    """``data`` cut into pieces of the given sizes, cycled."""
    chunks = []
    pos = index = 0
    while pos < len(data):
        size = sizes[index % len(sizes)]
        chunks.append(data[pos : pos + size])
        pos += size
        index += 1
    return chunks


def trickle(data: bytes, receiver: Peer, sizes: list[int] | None = None) -> list[WsEvent]:
    """Feed ``data`` in chunks of the given sizes (cycled), one byte at a time by default."""
    return [
        event for chunk in chunked(data, sizes or [1]) for event in receiver.receive_data(chunk)
    ]


def request_for(client: WebSocketClient) -> tuple[WebSocketServer, UpgradeRequested]:
    server = WebSocketServer(max_message_size=client._max_message_size)
    [request] = pump(client, server)
    assert isinstance(request, UpgradeRequested)
    return server, request


def open_pair(
    target: str = TARGET, max_message_size: int = 4 * MIB, *, text_pieces: bool = False
) -> tuple[WebSocketClient, WebSocketServer]:
    client = WebSocketClient(
        HOST, target, max_message_size=max_message_size, text_pieces=text_pieces
    )
    server, _ = request_for(client)
    assert server.accept() == []
    assert pump(server, client) == [Accepted(None, ())]
    return client, server


def server_frames(*events: TextMessage | BytesMessage) -> bytes:
    """Frames as a server writes them (unmasked), built with wsproto's low-level connection."""
    conn = Connection(ConnectionType.SERVER)
    return b"".join(conn.send(event) for event in events)


def client_frames(*events: TextMessage | BytesMessage) -> bytes:
    """Frames as a client writes them (masked)."""
    conn = Connection(ConnectionType.CLIENT)
    return b"".join(conn.send(event) for event in events)


# -- handshake -----------------------------------------------------------------------------------


def test_handshake_delivers_path_decoded_query_headers_and_subprotocols():
    client = WebSocketClient(
        HOST,
        TARGET + "&empty=&x=a+b",
        headers=(("User-Agent", "tradeforge"),),
        subprotocols=("json", "messagepack"),
    )
    assert client.state is WebSocketState.CONNECTING
    server, request = request_for(client)
    assert request.path == "/hubs/market"
    assert request.query == (("access_token", "tok/x"), ("empty", ""), ("x", "a b"))
    assert request.subprotocols == ("json", "messagepack")
    headers = dict(request.headers)
    assert headers["host"] == HOST
    assert headers["user-agent"] == "tradeforge"
    assert headers["upgrade"] == "websocket"
    assert server.state is WebSocketState.CONNECTING

    assert server.accept("json", headers=(("X-Served-By", "sim"),)) == []
    assert server.state is WebSocketState.OPEN
    [accepted] = pump(server, client)
    assert accepted == Accepted("json", (("x-served-by", "sim"),))
    assert client.state is WebSocketState.OPEN


def test_request_target_is_sent_verbatim():
    client = WebSocketClient("localhost:8080", "/hubs/user?access_token=a%2Bb")
    head = client.data_to_send()
    assert head.startswith(b"GET /hubs/user?access_token=a%2Bb HTTP/1.1\r\n")
    assert b"Host: localhost:8080\r\n" in head
    assert client.data_to_send() == b""


def test_empty_subprotocol_offers_are_dropped():
    server = WebSocketServer()
    request = (
        b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Protocol: json,,\r\n\r\n"
    )
    [event] = server.receive_data(request)
    assert isinstance(event, UpgradeRequested)
    assert event.subprotocols == ("json",)
    assert event.query == ()


def test_handshake_survives_byte_by_byte_delivery_both_ways():
    client = WebSocketClient(HOST, TARGET)
    server = WebSocketServer()
    [request] = trickle(client.data_to_send(), server)
    assert isinstance(request, UpgradeRequested)
    server.accept()
    assert trickle(server.data_to_send(), client) == [Accepted(None, ())]


def test_frames_behind_the_upgrade_request_are_kept_until_accept():
    client = WebSocketClient(HOST, TARGET)
    server = WebSocketServer()
    stream = client.data_to_send() + client_frames(TextMessage("early"), BytesMessage(b"bird"))
    [request] = server.receive_data(stream[:-3])
    assert isinstance(request, UpgradeRequested)
    assert server.receive_data(stream[-3:]) == []
    assert server.accept() == [TextReceived("early"), BytesReceived(b"bird")]


def test_request_head_end_split_across_reads_is_found():
    client = WebSocketClient(HOST, TARGET)
    server = WebSocketServer()
    stream = client.data_to_send() + client_frames(TextMessage("x"))
    head_end = stream.index(b"\r\n\r\n") + 4
    for cut in (head_end - 3, head_end - 2, head_end - 1):
        server = WebSocketServer()
        assert server.receive_data(stream[:cut]) == []
        [request] = server.receive_data(stream[cut:])
        assert isinstance(request, UpgradeRequested)
        assert server.accept() == [TextReceived("x")]


def test_frames_behind_the_101_are_delivered_with_accepted():
    client = WebSocketClient(HOST, TARGET)
    server, _ = request_for(client)
    server.accept()
    server.send_text("hello")
    server.ping(b"p")
    events = pump(server, client)
    assert events == [Accepted(None, ()), TextReceived("hello"), PingReceived(b"p")]
    assert pump(client, server) == [PongReceived(b"p")]


def test_interim_responses_before_101_are_skipped():
    client = WebSocketClient(HOST, TARGET)
    server, _ = request_for(client)
    server.accept()
    response = b"HTTP/1.1 100 Continue\r\n\r\n" + server.data_to_send()
    assert client.receive_data(response) == [Accepted(None, ())]


# -- messages ------------------------------------------------------------------------------------

PAYLOADS = [
    "",
    "hello",
    "prix: 5 €, 日本, 🚀",
    "x" * MIB,
    b"",
    b"\x00\xff\x80",
    bytes(range(256)) * 4096,
]


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: f"{type(p).__name__}-{len(p)}")
@pytest.mark.parametrize("from_client", [True, False], ids=["client->server", "server->client"])
def test_messages_arrive_unchanged(payload: str | bytes, from_client: bool):
    client, server = open_pair()
    sender, receiver = (client, server) if from_client else (server, client)
    if isinstance(payload, str):
        sender.send_text(payload)
        expected: WsEvent = TextReceived(payload)
    else:
        sender.send_bytes(payload)
        expected = BytesReceived(payload)
    assert pump(sender, receiver) == [expected]


def test_several_messages_in_one_read_keep_their_order():
    client, server = open_pair()
    for i in range(5):
        server.send_text(f"m{i}")
        server.send_bytes(bytes([i]))
    events = pump(server, client)
    assert events == [
        e for i in range(5) for e in (TextReceived(f"m{i}"), BytesReceived(bytes([i])))
    ]


def test_message_fed_one_byte_at_a_time():
    client, server = open_pair()
    client.send_text("é" * 200)
    assert trickle(client.data_to_send(), server) == [TextReceived("é" * 200)]
    server.send_bytes(b"\x01" * 70_000)  # an 8-byte payload length
    assert trickle(server.data_to_send(), client, [1, 7, 4096]) == [BytesReceived(b"\x01" * 70_000)]


def test_fragmented_messages_are_reassembled():
    client, _ = open_pair()
    frames = server_frames(
        TextMessage("hél", message_finished=False),
        TextMessage("lo ", message_finished=False),
        TextMessage("wörld", message_finished=True),
        BytesMessage(b"ab", message_finished=False),
        BytesMessage(b"cd", message_finished=True),
    )
    assert client.receive_data(frames) == [TextReceived("héllo wörld"), BytesReceived(b"abcd")]
    # The same frames split at every byte give the same messages.
    assert trickle(frames, open_pair()[0]) == [TextReceived("héllo wörld"), BytesReceived(b"abcd")]


def test_text_pieces_go_on_as_they_arrive():
    client, server = open_pair(text_pieces=True)
    text = "record é\x1e" * 5000
    server.send_text(text)
    data = server.data_to_send()
    first = client.receive_data(data[: len(data) // 2])
    assert first, "the first half of a message is handed on before the rest arrives"
    assert all(isinstance(e, TextReceived) and not e.final for e in first)
    rest = trickle(data[len(data) // 2 :], client, [1, 333, 4096])
    pieces = [*first, *rest]
    assert "".join(p.data for p in pieces) == text
    assert [p.final for p in pieces] == [False] * (len(pieces) - 1) + [True]
    # Binary messages are still whole, and a short text comes as one final piece.
    server.send_bytes(b"\x00" * 3)
    server.send_text("ok")
    assert pump(server, client) == [BytesReceived(b"\x00" * 3), TextReceived("ok")]


def test_text_pieces_of_fragments_and_an_empty_final_frame():
    client, _ = open_pair(text_pieces=True)
    frames = server_frames(
        TextMessage("hél", message_finished=False),
        TextMessage("", message_finished=False),
        TextMessage("lo", message_finished=False),
        TextMessage("", message_finished=True),
    )
    assert client.receive_data(frames) == [
        TextReceived("hél", final=False),
        TextReceived("lo", final=False),
        TextReceived("", final=True),
    ]


def test_text_pieces_still_count_against_the_message_limit():
    client, _ = open_pair(max_message_size=10, text_pieces=True)
    frames = server_frames(
        TextMessage("abcd", message_finished=False),
        TextMessage("abcd", message_finished=True),  # 8 bytes: within the limit
        TextMessage("abcd", message_finished=False),  # the count starts again
        TextMessage("abcd", message_finished=False),
        TextMessage("abcd", message_finished=False),  # 12 bytes
    )
    assert client.receive_data(frames) == [
        TextReceived("abcd", final=False),
        TextReceived("abcd", final=True),
        TextReceived("abcd", final=False),
        TextReceived("abcd", final=False),
        ConnectionClosed(1009, "message over 10 bytes", by_peer=False),
    ]


def test_fragmented_message_from_the_client_with_a_ping_in_between():
    client, server = open_pair()
    conn = Connection(ConnectionType.CLIENT)
    frames = conn.send(BytesMessage(b"12", message_finished=False))
    frames += conn.send(Ping(b"p"))
    frames += conn.send(BytesMessage(b"34", message_finished=True))
    assert server.receive_data(frames) == [PingReceived(b"p"), BytesReceived(b"1234")]
    assert pump(server, client) == [PongReceived(b"p")]


@pytest.mark.parametrize("pinger", ["client", "server"])
def test_ping_is_answered_automatically(pinger: str):
    client, server = open_pair()
    a, b = (client, server) if pinger == "client" else (server, client)
    a.ping(b"hb-1")
    assert pump(a, b) == [PingReceived(b"hb-1")]
    assert pump(b, a) == [PongReceived(b"hb-1")]
    a.ping()
    assert pump(a, b) == [PingReceived(b"")]


# -- closing -------------------------------------------------------------------------------------


def test_close_from_client():
    client, server = open_pair()
    client.close()
    assert client.state is WebSocketState.CLOSING
    client.close(4001, "again")  # already closing: nothing happens
    assert pump(client, server) == [ConnectionClosed(1000, "", by_peer=True)]
    assert server.state is WebSocketState.CLOSED
    assert pump(server, client) == [ConnectionClosed(1000, "", by_peer=False)]
    assert client.state is WebSocketState.CLOSED
    assert client.receive_data(b"\x81\x01a") == []
    assert client.receive_data(b"") == []
    client.close()
    assert client.data_to_send() == b""


def test_close_from_server_with_code_and_reason():
    client, server = open_pair()
    server.close(4000, "bye")
    assert pump(server, client) == [ConnectionClosed(4000, "bye", by_peer=True)]
    assert pump(client, server) == [ConnectionClosed(4000, "bye", by_peer=False)]


def test_messages_sent_before_the_peer_saw_our_close_are_still_delivered():
    client, server = open_pair()
    server.send_text("last quote")
    client.close(1001)
    server.ping(b"x")  # a ping while the client is CLOSING: no pong can follow a Close
    assert pump(server, client) == [TextReceived("last quote"), PingReceived(b"x")]
    assert pump(client, server) == [ConnectionClosed(1001, "", by_peer=True)]
    assert pump(server, client) == [ConnectionClosed(1001, "", by_peer=False)]


def test_close_without_status_code():
    client, _ = open_pair()
    assert client.receive_data(b"\x88\x00") == [ConnectionClosed(1005, "", by_peer=True)]
    reply = client.data_to_send()
    assert (reply[:2], len(reply)) == (b"\x88\x80", 6)  # an empty masked Close


def test_end_of_file_is_an_abnormal_closure():
    client, server = open_pair()
    assert client.receive_data(b"") == [ConnectionClosed(1006, "connection lost", by_peer=True)]
    assert client.state is WebSocketState.CLOSED
    server.close()
    assert server.receive_data(b"") == [ConnectionClosed(1006, "connection lost", by_peer=True)]


def test_close_before_the_handshake_abandons_the_connection():
    client = WebSocketClient(HOST, TARGET)
    client.data_to_send()
    client.close()
    assert client.state is WebSocketState.CLOSED
    assert client.data_to_send() == b""


# -- rejection -----------------------------------------------------------------------------------


def test_rejection_is_reported_with_status_headers_and_body():
    client = WebSocketClient(HOST, TARGET)
    server, _ = request_for(client)
    server.reject(401, headers=(("WWW-Authenticate", "Bearer"),), body=b"unauthorized")
    assert server.state is WebSocketState.REJECTED
    response = server.data_to_send()
    [rejected] = client.receive_data(response)
    assert rejected == Rejected(
        401, (("www-authenticate", "Bearer"), ("content-length", "12")), b"unauthorized"
    )
    assert client.state is WebSocketState.REJECTED
    assert client.receive_data(b"junk") == []

    again = WebSocketClient(HOST, TARGET)
    again.data_to_send()
    assert trickle(response, again) == [rejected]


def test_rejection_without_body_and_with_a_caller_content_length():
    client = WebSocketClient(HOST, TARGET)
    server, _ = request_for(client)
    server.reject(404, headers=(("Content-Length", "99"),))
    assert pump(server, client) == [Rejected(404, (("content-length", "0"),), b"")]


def test_rejection_body_is_bounded_by_max_message_size():
    client = WebSocketClient(HOST, TARGET, max_message_size=8)
    server, _ = request_for(client)
    server.reject(403, body=b"0123456789abcdef")
    [rejected] = pump(server, client)
    assert isinstance(rejected, Rejected)
    assert rejected.body == b"01234567"


def test_rejection_body_ends_at_end_of_file():
    client = WebSocketClient(HOST, TARGET)
    client.data_to_send()
    assert client.receive_data(b"HTTP/1.1 503 Unavailable\r\n\r\nbusy") == []
    assert client.receive_data(b", retry") == []
    assert client.receive_data(b"") == [Rejected(503, (), b"busy, retry")]

    truncated = WebSocketClient(HOST, TARGET)
    truncated.data_to_send()
    truncated.receive_data(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 50\r\n\r\nno")
    assert truncated.receive_data(b"") == [Rejected(401, (("content-length", "50"),), b"no")]


# -- max_message_size ----------------------------------------------------------------------------


@pytest.mark.parametrize("from_client", [True, False])
def test_message_over_the_limit_closes_with_1009(from_client: bool):
    client, server = open_pair(max_message_size=100)
    sender, receiver = (client, server) if from_client else (server, client)
    sender.send_bytes(b"x" * 100)
    sender.send_text("y" * 100)
    assert pump(sender, receiver) == [BytesReceived(b"x" * 100), TextReceived("y" * 100)]
    sender.send_bytes(b"x" * 101)
    sender.send_text("after")
    [closed] = pump(sender, receiver)
    assert closed == ConnectionClosed(1009, "message over 100 bytes", by_peer=False)
    assert receiver.state is WebSocketState.CLOSED
    assert pump(receiver, sender) == [ConnectionClosed(1009, "message over 100 bytes", True)]


def test_text_limit_counts_utf8_bytes():
    client, server = open_pair(max_message_size=10)
    server.send_text("é" * 5)  # 10 bytes
    assert pump(server, client) == [TextReceived("é" * 5)]
    server.send_text("é" * 6)  # 12 bytes
    [closed] = pump(server, client)
    assert isinstance(closed, ConnectionClosed)
    assert closed.code == 1009


@pytest.mark.parametrize("kind", [TextMessage, BytesMessage])
def test_fragmented_message_over_the_limit_is_stopped_early(kind: type[TextMessage | BytesMessage]):
    client, _ = open_pair(max_message_size=10)
    piece = "abcd" if kind is TextMessage else b"abcd"
    frames = server_frames(*(kind(piece, message_finished=False) for _ in range(3)))  # type: ignore[arg-type]
    events = client.receive_data(frames)
    assert [type(e) for e in events] == [ConnectionClosed]
    assert events[0] == ConnectionClosed(1009, "message over 10 bytes", by_peer=False)


def test_limit_hit_while_closing_queues_no_second_close():
    client, server = open_pair(max_message_size=4)
    client.close()
    client.data_to_send()
    server.send_bytes(b"12345")
    assert pump(server, client) == [ConnectionClosed(1009, "message over 4 bytes", by_peer=False)]
    assert client.data_to_send() == b""


# -- malformed input -----------------------------------------------------------------------------


def test_garbage_instead_of_the_upgrade_response():
    client = WebSocketClient(HOST, TARGET)
    client.data_to_send()
    with pytest.raises(RemoteProtocolError, match="invalid upgrade response: Bad HTTP message"):
        client.receive_data(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
    assert client.state is WebSocketState.CLOSED
    assert client.receive_data(b"more") == []


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: d3Jvbmc=\r\n\r\n",
            "Bad accept token",
        ),
        (b"HTTP/1.1 101 Switching Protocols\r\nConnection: \xff\r\n\r\n", "codec can't decode"),
        (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", "Connection: Upgrade"),
    ],
)
def test_invalid_101_is_a_remote_protocol_error(response: bytes, message: str):
    client = WebSocketClient(HOST, TARGET)
    client.data_to_send()
    with pytest.raises(RemoteProtocolError, match=message):
        client.receive_data(response)
    assert client.state is WebSocketState.CLOSED


def test_end_of_file_before_the_response():
    client = WebSocketClient(HOST, TARGET)
    with pytest.raises(RemoteProtocolError, match="before accepting the upgrade"):
        client.receive_data(b"")
    assert client.state is WebSocketState.CLOSED


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (b"\xc1\x00", 1002),  # RSV1 set without an extension
        (b"\x83\x00", 1002),  # reserved opcode
        (b"\x89\x7e\x00\x7e", 1002),  # control frame over 125 bytes
        (b"\x81\x82abcd\x00\x00", 1002),  # a masked frame sent to a client
        (b"\x81\x01\xff", 1007),  # text that is not UTF-8
        (b"\x80\x01a", 1002),  # continuation without a message
    ],
)
def test_frame_violations_close_the_connection(frame: bytes, code: int):
    client, server = open_pair()
    [closed] = client.receive_data(frame)
    assert isinstance(closed, ConnectionClosed)
    assert (closed.code, closed.by_peer) == (code, False)
    assert client.state is WebSocketState.CLOSED
    assert pump(client, server) == [ConnectionClosed(code, closed.reason, by_peer=True)]


def test_unmasked_frame_to_the_server_closes_with_1002():
    client, server = open_pair()
    [closed] = server.receive_data(b"\x81\x02hi")
    assert closed == ConnectionClosed(1002, "server received unexpected unmasked frame", False)
    assert pump(server, client) == [ConnectionClosed(1002, closed.reason, by_peer=True)]


def test_violation_while_closing_queues_nothing_more():
    client, _ = open_pair()
    client.close()
    client.data_to_send()
    [closed] = client.receive_data(b"\xc1\x00")
    assert isinstance(closed, ConnectionClosed)
    assert closed.code == 1002
    assert client.data_to_send() == b""


REQUEST = (
    b"GET /hubs/user HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
)


@pytest.mark.parametrize(
    ("request_bytes", "status", "message"),
    [
        (b"garbage\r\n\r\n", b"400", "Bad HTTP message"),
        (REQUEST.replace(b"Upgrade: websocket\r\n", b"") + b"\r\n", b"400", "Upgrade: websocket"),
        (REQUEST.replace(b": 13", b": 8") + b"\r\n", b"426", "Sec-WebSocket-Version"),
        (REQUEST.replace(b"Host: h", b"Host: \xff") + b"\r\n", b"400", "codec can't decode"),
        (REQUEST.replace(b"GET", b"POST") + b"\r\n", b"400", "must be GET"),
        (REQUEST + b"Content-Length: 3\r\n\r\nabc", b"400", "carries a body"),
        (REQUEST + b"Transfer-Encoding: chunked\r\n\r\n", b"400", "carries a body"),
    ],
)
def test_invalid_upgrade_request_is_refused(request_bytes: bytes, status: bytes, message: str):
    server = WebSocketServer()
    with pytest.raises(RemoteProtocolError, match=message):
        server.receive_data(request_bytes)
    assert server.state is WebSocketState.CLOSED
    assert server.data_to_send().startswith(b"HTTP/1.1 " + status)
    assert server.receive_data(b"more") == []


def test_request_with_an_empty_body_declared_is_fine():
    server = WebSocketServer()
    [event] = server.receive_data(REQUEST + b"Content-Length: 0\r\n\r\n")
    assert isinstance(event, UpgradeRequested)


def test_end_of_file_during_the_server_handshake():
    server = WebSocketServer()
    with pytest.raises(RemoteProtocolError, match="during the opening handshake"):
        server.receive_data(b"")
    pending = WebSocketServer()
    pending.receive_data(REQUEST + b"\r\n")
    with pytest.raises(RemoteProtocolError):
        pending.receive_data(b"")
    assert pending.state is WebSocketState.CLOSED


def test_too_much_data_before_the_answer():
    server = WebSocketServer(max_message_size=10)
    server.receive_data(REQUEST + b"\r\n")
    server.receive_data(b"x" * 60_000)
    with pytest.raises(RemoteProtocolError, match="too much data"):
        server.receive_data(b"x" * 10_000)


# -- misuse --------------------------------------------------------------------------------------


def test_sending_before_the_handshake_is_a_local_error():
    client = WebSocketClient(HOST, TARGET)
    with pytest.raises(LocalProtocolError, match="while the connection is CONNECTING"):
        client.send_text("early")
    with pytest.raises(LocalProtocolError):
        client.send_bytes(b"early")
    with pytest.raises(LocalProtocolError):
        client.ping()


def test_sending_after_close_is_a_local_error():
    client, _ = open_pair()
    client.close()
    with pytest.raises(LocalProtocolError, match="CLOSING"):
        client.send_text("late")


def test_server_answer_misuse():
    server = WebSocketServer()
    with pytest.raises(LocalProtocolError, match="no upgrade request is pending"):
        server.accept()
    with pytest.raises(LocalProtocolError):
        server.reject(401)
    server.receive_data(REQUEST + b"Sec-WebSocket-Protocol: json\r\n\r\n")
    with pytest.raises(LocalProtocolError, match="not offered"):
        server.accept("msgpack")
    with pytest.raises(LocalProtocolError, match="invalid response header"):
        server.accept(headers=(("Bad Name", "x"),))
    with pytest.raises(LocalProtocolError, match="invalid response header"):
        server.reject(401, headers=(("X", "line\r\nbreak"),))
    for status in (101, 200, 304, 600):
        with pytest.raises(LocalProtocolError, match="status"):
            server.reject(status)
    assert server.data_to_send() == b""
    server.accept("json")
    with pytest.raises(LocalProtocolError):
        server.accept()
    with pytest.raises(LocalProtocolError):
        server.reject(401)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: c.ping(b"x" * 126), "at most 125 bytes"),
        (lambda c: c.send_text("\ud800"), "UTF-8"),
        (lambda c: c.close(1006), "may not be sent"),
        (lambda c: c.close(1004), "may not be sent"),
        (lambda c: c.close(5000), "may not be sent"),
        (lambda c: c.close(1000, "r" * 124), "at most 123 bytes"),
        (lambda c: c.close(1000, "\udc80"), "cannot be encoded"),
    ],
)
def test_invalid_sends_are_local_errors(call, message: str):
    client, _ = open_pair()
    with pytest.raises(LocalProtocolError, match=message):
        call(client)
    assert client.state is WebSocketState.OPEN
    client.send_text("still usable")
    client.close(1000, "r" * 123)


@pytest.mark.parametrize(
    ("host", "target", "kwargs", "message"),
    [
        ("", "/", {}, "invalid host"),
        ("a b", "/", {}, "invalid host"),
        (HOST, "hubs", {}, "target must be"),
        (HOST, "/a b", {}, "target must be"),
        (HOST, "/é", {}, "target must be"),
        (HOST, "/", {"subprotocols": ["a,b"]}, "invalid subprotocol"),
        (HOST, "/", {"headers": (("Authorization", "Bearer s3cret\n"),)}, "not valid HTTP"),
        (HOST, "/", {"headers": (("X", "€"),)}, "not valid HTTP"),
        ("a" * 64 + ".test", "/", {}, "not valid HTTP"),
        (HOST, "/", {"max_message_size": 0}, "max_message_size"),
    ],
)
def test_invalid_client_arguments(host: str, target: str, kwargs: dict[str, Any], message: str):
    with pytest.raises(LocalProtocolError, match=message) as info:
        WebSocketClient(host, target, **kwargs)
    assert "s3cret" not in str(info.value)
    assert info.value.__cause__ is None


# -- endpoints and reprs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected", "host_header"),
    [
        (
            "https://rtc.topstepx.com/hubs/user",
            WsEndpoint("rtc.topstepx.com", 443, True, "/hubs/user"),
            "rtc.topstepx.com",
        ),
        (
            "wss://RTC.example:8443/hubs",
            WsEndpoint("rtc.example", 8443, True, "/hubs"),
            "rtc.example:8443",
        ),
        (
            "http://127.0.0.1:8000/hubs/market",
            WsEndpoint("127.0.0.1", 8000, False, "/hubs/market"),
            "127.0.0.1:8000",
        ),
        ("ws://localhost", WsEndpoint("localhost", 80, False, "/"), "localhost"),
        ("ws://[::1]:9000/x#frag", WsEndpoint("::1", 9000, False, "/x"), "[::1]:9000"),
        ("ws://[::1]/x", WsEndpoint("::1", 80, False, "/x"), "[::1]"),
        ("wss://h:443/p a/é?q=1 2", WsEndpoint("h", 443, True, "/p%20a/%C3%A9?q=1%202"), "h"),
    ],
)
def test_ws_endpoint_parses_urls(url: str, expected: WsEndpoint, host_header: str):
    endpoint = ws_endpoint(url)
    assert endpoint == expected
    assert endpoint.host_header == host_header


def test_ws_endpoint_appends_query_and_encoded_token():
    endpoint = ws_endpoint(
        "https://rtc.example/hubs/user?negotiateVersion=1",
        access_token="ab/c+d=",
        query={"id": "conn 1"},
    )
    assert endpoint.target == "/hubs/user?negotiateVersion=1&id=conn%201&access_token=ab%2Fc%2Bd%3D"
    assert "ab%2F" not in repr(endpoint)
    assert repr(endpoint) == (
        "WsEndpoint(host='rtc.example', port=443, tls=True, "
        "target='/hubs/user?negotiateVersion=1&id=conn%201&access_token=********')"
    )
    assert ws_endpoint("ws://h", access_token="").target == "/?access_token="


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://h/x", "unsupported URL scheme"),
        ("rtc.example/hubs", "unsupported URL scheme"),
        ("wss:///hubs", "no host"),
        ("wss://h:99999/", "invalid URL"),
        ("wss://h:0/", "port 0"),
        ("wss://[::1/", "invalid URL"),
        ("wss://user:pw@h/", "credentials"),
    ],
)
def test_ws_endpoint_rejects_bad_urls(url: str, message: str):
    with pytest.raises(LocalProtocolError, match=message):
        ws_endpoint(url)


def test_reprs_never_show_credentials():
    client = WebSocketClient(
        HOST,
        "/hubs/user?x=1&access_token=SECRET&access_token&a%63cess_token=SECRET",
        headers=(("Authorization", "Bearer SECRET"), ("X-Trace", "t1")),
    )
    text = repr(client)
    assert "SECRET" not in text
    assert "x=1" in text
    assert "t1" in text
    assert "state=CONNECTING" in text
    assert repr(WebSocketClient(HOST, "/plain")).startswith("WebSocketClient(host=")

    server, request = request_for(
        WebSocketClient(HOST, "/h?access_token=SECRET", headers=(("authorization", "SECRET"),))
    )
    assert "SECRET" not in repr(request)
    assert ("access_token", "SECRET") in request.query
    assert repr(server) == "WebSocketServer(state=CONNECTING)"
    assert "SECRET" not in repr(Accepted(None, (("Set-Cookie", "SECRET"),)))
    assert "SECRET" not in repr(Rejected(401, (("set-cookie", "SECRET"),), b""))


# -- properties ----------------------------------------------------------------------------------

messages = st.lists(st.one_of(st.text(max_size=300), st.binary(max_size=300)), max_size=8)
chunk_sizes = st.lists(st.integers(min_value=1, max_value=200), min_size=1, max_size=8)


@settings(max_examples=150, deadline=None)
@given(messages, chunk_sizes, st.booleans())
def test_any_messages_arrive_in_order_for_any_chunking(
    payloads: list[str | bytes], sizes: list[int], from_client: bool
):
    client, server = open_pair()
    sender, receiver = (client, server) if from_client else (server, client)
    expected: list[WsEvent] = []
    for payload in payloads:
        if isinstance(payload, str):
            sender.send_text(payload)
            expected.append(TextReceived(payload))
        else:
            sender.send_bytes(payload)
            expected.append(BytesReceived(payload))
    assert trickle(sender.data_to_send(), receiver, sizes) == expected


def feed_everything(peer: Peer, data: bytes, sizes: list[int]) -> None:
    """Feed ``data`` in chunks, then EOF: only our events or RemoteProtocolError may come out."""
    for chunk in [*chunked(data, sizes), b""]:
        try:
            events = peer.receive_data(chunk)
        except RemoteProtocolError:
            assert peer.state is WebSocketState.CLOSED
            continue
        for event in events:
            assert isinstance(event, EVENT_TYPES)
            if isinstance(event, UpgradeRequested):
                events += peer.accept()  # type: ignore[union-attr]
        peer.data_to_send()
    assert peer.state in (WebSocketState.CLOSED, WebSocketState.REJECTED)


def _valid_response() -> tuple[WebSocketClient, bytes]:
    client = WebSocketClient(HOST, TARGET)
    server, _ = request_for(client)
    server.accept()
    server.send_text("hi")
    return client, server.data_to_send()


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400), st.integers(0, 300), chunk_sizes)
def test_arbitrary_bytes_to_a_client_awaiting_its_response(junk: bytes, cut: int, sizes: list[int]):
    client, response = _valid_response()
    feed_everything(client, response[:cut] + junk, sizes)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400), st.integers(0, 300), chunk_sizes)
def test_arbitrary_bytes_to_a_server(junk: bytes, cut: int, sizes: list[int]):
    client = WebSocketClient(HOST, TARGET)
    stream = client.data_to_send() + client_frames(TextMessage("hi"))
    feed_everything(WebSocketServer(max_message_size=100), stream[:cut] + junk, sizes)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400), chunk_sizes)
def test_arbitrary_frames_to_an_open_client(junk: bytes, sizes: list[int]):
    client, _ = open_pair(max_message_size=100)
    feed_everything(client, junk, sizes)
