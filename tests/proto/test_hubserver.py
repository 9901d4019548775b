"""HubServerConnection against the core's client roles, in memory, with an injected clock."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeforge_proto.core.errors import LocalProtocolError
from tradeforge_proto.realtime.hubserver import (
    HANDSHAKE_TIMEOUT,
    KEEPALIVE_INTERVAL,
    MAX_OUTBOX,
    SLOW_CLIENT_CODE,
    SLOW_CLIENT_ERROR,
    HubClosed,
    HubOpened,
    HubServerConnection,
    HubServerState,
)
from tradeforge_proto.signalr import (
    RS,
    CloseReceived,
    CompletionReceived,
    HandshakeCompleted,
    HandshakeFailed,
    HubConnection,
    HubEvent,
    HubRole,
    Invocation,
    InvocationReceived,
    PingReceived,
    encode,
)
from tradeforge_proto.websocket import (
    Accepted,
    ConnectionClosed,
    Rejected,
    TextReceived,
    UpgradeRequested,
    WebSocketClient,
    WsEvent,
)
from tradeforge_proto.websocket import PingReceived as WsPingReceived

T0 = 1_700_000_000.0
TARGET = "/hubs/user?access_token=secret"
SERVER_EVENTS = (UpgradeRequested, HubOpened, InvocationReceived, CompletionReceived, PingReceived)
HANDSHAKE = '{"protocol":"json","version":1}' + RS
UNMASKED = b"\x81\x02hi"  # a client frame without a mask: a WebSocket protocol violation
QUOTE = {"symbol": "F.US.EP", "bestBid": 5000.25, "bestAsk": 5000.5}


class Client:
    """A hub client made of the core's client roles, recording what it reads."""

    def __init__(self, *, protocol: str = "json", version: int = 1) -> None:
        self.ws = WebSocketClient("rtc.example", TARGET)
        self.hub = HubConnection(HubRole.CLIENT, protocol=protocol, version=version)
        self.ws_events: list[WsEvent] = []
        self.hub_events: list[HubEvent] = []
        self.texts: list[str] = []

    def read(self, data: bytes) -> None:
        """Read what the server wrote (nothing written is not the end of the stream)."""
        if not data:
            return
        for event in self.ws.receive_data(data):
            self.ws_events.append(event)
            if isinstance(event, TextReceived):
                self.texts.append(event.data)
                self.hub_events.extend(self.hub.receive(event.data))

    def flush(self) -> None:
        """Queue what the hub connection holds (first its handshake) as one WebSocket message."""
        self.ws.send_text(self.hub.data_to_send())

    def closes(self) -> list[ConnectionClosed]:
        return [e for e in self.ws_events if isinstance(e, ConnectionClosed)]


def deliver(server: HubServerConnection, client: Client, now: float = T0) -> list[Any]:
    """What the client queued goes to the server and the server's answer back; server events."""
    events = server.receive_data(client.ws.data_to_send(), now)
    client.read(server.data_to_send())
    return events


def upgraded(client: Client | None = None, **options: Any) -> tuple[HubServerConnection, Client]:
    """A server whose WebSocket upgrade was accepted, and its client (no handshake yet)."""
    server = HubServerConnection(**options)
    client = client or Client()
    (request,) = server.receive_data(client.ws.data_to_send(), T0)
    assert isinstance(request, UpgradeRequested)
    assert server.accept() == []
    client.read(server.data_to_send())
    return server, client


def open_websocket() -> WebSocketClient:
    """A client WebSocket past its upgrade (with a throwaway server): it can build frames."""
    server = HubServerConnection()
    ws = WebSocketClient("rtc.example", TARGET)
    server.receive_data(ws.data_to_send(), T0)
    server.accept()
    ws.receive_data(server.data_to_send())
    return ws


def opened(**options: Any) -> tuple[HubServerConnection, Client]:
    """A server and client through the upgrade and the handshake."""
    server, client = upgraded(**options)
    client.flush()
    assert deliver(server, client) == [HubOpened("json", 1)]
    assert client.hub_events == [HandshakeCompleted()]
    client.hub_events.clear()
    client.texts.clear()
    return server, client


def test_the_upgrade_request_surfaces_and_accept_then_handshake_open_the_hub():
    server = HubServerConnection()
    assert server.state is HubServerState.CONNECTING
    assert server.next_deadline() is None
    client = Client()
    (request,) = server.receive_data(client.ws.data_to_send(), T0)
    assert isinstance(request, UpgradeRequested)
    assert request.path == "/hubs/user"
    assert ("access_token", "secret") in request.query
    assert ("host", "rtc.example") in request.headers
    assert server.state is HubServerState.UPGRADE_PENDING
    assert server.accept(headers=(("x-hub", "user"),)) == []
    assert server.state is HubServerState.HANDSHAKING
    client.read(server.data_to_send())
    (accepted,) = client.ws_events
    assert isinstance(accepted, Accepted)
    assert ("x-hub", "user") in accepted.headers
    client.flush()
    assert deliver(server, client, T0 + 1) == [HubOpened("json", 1)]
    assert server.state is HubServerState.OPEN
    assert client.hub_events == [HandshakeCompleted()]
    assert server.next_deadline() == T0 + 1 + KEEPALIVE_INTERVAL
    assert server.closed is None
    assert repr(server) == "HubServerConnection(state=OPEN, outbox=0)"
    assert server.max_outbox == MAX_OUTBOX


def test_reject_answers_the_upgrade_with_http_and_ends_the_connection():
    server = HubServerConnection()
    client = Client()
    server.receive_data(client.ws.data_to_send(), T0)
    server.reject(503, body=b"Service Unavailable", headers=(("retry-after", "1"),))
    assert server.state is HubServerState.CLOSED
    assert server.closed == HubClosed("upgrade refused with HTTP 503", by_peer=False, code=None)
    client.read(server.data_to_send())
    (rejected,) = client.ws_events
    assert isinstance(rejected, Rejected)
    assert (rejected.status, rejected.body) == (503, b"Service Unavailable")
    assert ("retry-after", "1") in rejected.headers
    assert server.receive_data(b"more", T0) == []  # bytes after CLOSED are ignored
    assert server.data_to_send() == b""


def test_the_owner_misusing_the_machine_gets_local_protocol_errors():
    for options in ({"keepalive_interval": 0.0}, {"handshake_timeout": -1.0}, {"max_outbox": 0}):
        with pytest.raises(LocalProtocolError):
            HubServerConnection(**options)
    server = HubServerConnection()
    with pytest.raises(LocalProtocolError, match="no upgrade request is pending"):
        server.accept()
    with pytest.raises(LocalProtocolError, match="before the handshake"):
        server.send("GatewayQuote")
    client = Client()
    server.receive_data(client.ws.data_to_send(), T0)
    with pytest.raises(LocalProtocolError, match="needs a text"):
        server.accept(handshake_error="")
    with pytest.raises(LocalProtocolError):
        server.reject(200)
    assert server.state is HubServerState.UPGRADE_PENDING  # still undecided
    server.accept()
    with pytest.raises(LocalProtocolError, match="no upgrade request is pending"):
        server.accept()
    with pytest.raises(LocalProtocolError, match="no upgrade request is pending"):
        server.reject(401)
    for call in (
        lambda: server.send("X"),
        lambda: server.send_records("{}" + RS),
        server.ping,
        server.ping_websocket,
    ):
        with pytest.raises(LocalProtocolError, match="before the handshake completed"):
            call()
    with pytest.raises(LocalProtocolError, match="awaits a completion"):
        server.complete("1")
    with pytest.raises(LocalProtocolError, match="negative"):
        server.report_unwritten(-1)
    server, _ = opened()
    with pytest.raises(LocalProtocolError, match="ending with RS"):
        server.send_records('{"type":6}')
    with pytest.raises(LocalProtocolError, match="ending with RS"):
        server.send_records("")
    with pytest.raises(LocalProtocolError):
        server.close_websocket(1005)  # a code that may not be sent


@pytest.mark.parametrize(
    ("protocol", "version", "error"),
    [
        ("messagepack", 1, "Requested protocol 'messagepack' is not available."),
        ("json", 3, "The server does not support version 3 of the 'json' protocol."),
    ],
)
def test_the_handshake_policy_refuses_what_aspnet_core_refuses(
    protocol: str, version: int, error: str
):
    server, client = upgraded(Client(protocol=protocol, version=version))
    client.flush()
    (closed,) = deliver(server, client)
    assert closed == HubClosed(f"handshake refused: {error}", by_peer=False, code=1000)
    assert server.state is HubServerState.CLOSED
    assert client.hub_events == [HandshakeFailed(error)]
    assert [c.code for c in client.closes()] == [1000]


def test_json_versions_up_to_two_are_accepted():
    server, client = upgraded(Client(version=2))
    client.flush()
    assert deliver(server, client) == [HubOpened("json", 2)]


def test_the_owner_may_refuse_every_handshake_and_records_behind_it_are_ignored():
    server = HubServerConnection()
    client = Client()
    server.receive_data(client.ws.data_to_send(), T0)
    assert server.accept(handshake_error="the hub is draining") == []
    client.read(server.data_to_send())
    client.hub.data_to_send()
    # The handshake and an invocation in one message: nothing after a refused handshake counts.
    client.ws.send_text(HANDSHAKE + encode(Invocation("Sub", (1,), "1")))
    (closed,) = deliver(server, client)
    assert closed.reason == "handshake refused: the hub is draining"
    assert client.texts == ['{"error":"the hub is draining"}' + RS]


def test_frames_the_client_sends_right_behind_its_upgrade_request_are_handled_by_accept():
    server = HubServerConnection()
    request = WebSocketClient("rtc.example", TARGET).data_to_send()
    frames = open_websocket()  # the same bytes as the client's, had it not waited for the 101
    frames.send_text(HANDSHAKE)
    frames.send_text(encode(Invocation("SubscribeOrders", (7,), "0")))
    events = server.receive_data(request + frames.data_to_send(), T0)
    assert [type(e) for e in events] == [UpgradeRequested]
    opened_events = server.accept()
    assert opened_events[0] == HubOpened("json", 1)
    assert isinstance(opened_events[1], InvocationReceived)
    assert opened_events[1].target == "SubscribeOrders"
    assert server.pending_invocations == frozenset({"0"})


def test_invocations_surface_and_only_those_with_an_id_are_completed():
    server, client = opened()
    first = client.hub.invoke("SubscribeOrders", 7)
    client.hub.send("Fire", "and forget")
    second = client.hub.invoke("SubscribeTrades", 7)
    client.flush()
    events = deliver(server, client)
    assert [(e.target, e.arguments, e.invocation_id) for e in events] == [
        ("SubscribeOrders", (7,), first),
        ("Fire", ("and forget",), None),
        ("SubscribeTrades", (7,), second),
    ]
    assert server.pending_invocations == {first, second}
    assert server.complete(None) is False  # no id: the client expects no answer
    assert server.complete(first) is True
    assert server.complete(second, "Method does not exist: SubscribeTrades") is True
    with pytest.raises(LocalProtocolError, match="awaits a completion"):
        server.complete(first)  # answered already
    client.read(server.data_to_send())
    assert client.hub_events == [
        CompletionReceived(first, None, None, False),
        CompletionReceived(second, None, "Method does not exist: SubscribeTrades", False),
    ]
    assert client.hub.pending_invocations == frozenset()


def test_a_repeated_invocation_id_needs_as_many_completions():
    server, client = opened()
    record = encode(Invocation("SubscribeOrders", (7,), "9"))
    client.ws.send_text(record + record)
    assert len(deliver(server, client)) == 2
    assert server.complete("9")
    assert server.complete("9")
    assert server.pending_invocations == frozenset()


def test_client_pings_and_completions_surface_and_binary_messages_count():
    server, client = opened()
    client.hub.ping()
    client.flush()
    assert deliver(server, client) == [PingReceived()]
    # A server-to-client call that asks for a result: the client answers with a completion.
    assert server.send_records(encode(Invocation("GatewayQuote", ("ES", QUOTE), "s1")))
    client.read(server.data_to_send())
    client.ws.send_bytes(b'{"type":3,"invocationId":"s1","error":"no results"}' + RS.encode())
    assert deliver(server, client) == [CompletionReceived("s1", None, "no results", False)]


def test_stream_invocations_are_refused_and_other_messages_need_no_answer():
    server, client = opened()
    stream_id = client.hub.stream("StreamBars", "ES")
    client.hub.cancel(stream_id)
    client.hub.stream_item("up1", 1)
    client.hub.ack(3)
    client.hub.sequence(4)
    client.flush()
    assert deliver(server, client) == []
    (completion,) = client.hub_events
    assert isinstance(completion, CompletionReceived)
    assert completion.invocation_id == stream_id
    assert completion.error == "Failed to invoke 'StreamBars': this hub has no streaming methods."


def test_send_and_pre_encoded_records_reach_the_client_as_one_message_each():
    server, client = opened()
    assert server.send("GatewayQuote", "ES", QUOTE) is True
    batch = encode(Invocation("GatewayTrade", ("ES", [1]))) + encode(Invocation("GatewayLogout"))
    assert server.send_records(batch) is True
    client.read(server.data_to_send())
    assert len(client.texts) == 2
    assert client.texts[1] == batch
    assert [(e.target, e.arguments) for e in client.hub_events] == [
        ("GatewayQuote", ("ES", QUOTE)),
        ("GatewayTrade", ("ES", [1])),
        ("GatewayLogout", ()),
    ]


def test_keepalive_pings_come_when_nothing_was_sent_for_the_interval():
    server, client = opened(keepalive_interval=10.0)
    assert server.next_deadline() == T0 + 10.0
    assert server.handle_timer(T0 + 9.9) == []
    assert server.data_to_send() == b""
    assert server.send("GatewayQuote", "ES", QUOTE)  # dated T0 + 9.9, the latest time known
    assert server.next_deadline() == T0 + 19.9
    assert server.ping_websocket(b"probe")  # a WebSocket ping is no SignalR activity
    assert server.next_deadline() == T0 + 19.9
    assert server.handle_timer(T0 + 19.9) == []
    client.read(server.data_to_send())
    assert client.hub_events[-1] == PingReceived()
    assert any(isinstance(e, WsPingReceived) and e.payload == b"probe" for e in client.ws_events)
    assert server.next_deadline() == T0 + 29.9
    # Client messages do not count: the server's keep-alive is about what it sends.
    client.hub.ping()
    client.flush()
    deliver(server, client, T0 + 25.0)
    assert server.next_deadline() == T0 + 29.9
    silent, _ = opened(keepalive_interval=None)
    assert silent.next_deadline() is None
    assert silent.handle_timer(T0 + 3600) == []
    assert silent.data_to_send() == b""


def test_a_client_that_sends_no_handshake_is_closed_after_the_timeout():
    server, client = upgraded()
    assert server.next_deadline() == T0 + HANDSHAKE_TIMEOUT
    assert server.handle_timer(T0 + 1) == []
    (closed,) = server.handle_timer(T0 + HANDSHAKE_TIMEOUT)
    assert closed == HubClosed(
        f"the client sent no handshake within {HANDSHAKE_TIMEOUT} s", by_peer=False, code=1008
    )
    assert server.closed == closed
    client.read(server.data_to_send())
    assert [(c.code, c.reason) for c in client.closes()] == [(1008, "handshake timed out")]
    patient, _ = upgraded(handshake_timeout=None)
    assert patient.next_deadline() is None


@pytest.mark.parametrize("allow_reconnect", [True, False])
def test_close_sends_a_signalr_close_then_a_websocket_close(allow_reconnect: bool):
    server, client = opened()
    server.close("maintenance", allow_reconnect)
    assert server.state is HubServerState.CLOSING
    assert server.closed is None
    assert server.next_deadline() is None
    assert server.send("GatewayQuote", "ES", QUOTE) is False  # closing: nothing more goes out
    assert server.send_records('{"type":6}' + RS) is False
    assert server.ping() is False
    assert server.ping_websocket() is False
    server.close("again")  # no-op once closing
    server.close_websocket(4000)
    # The client's invocation that crossed our Close is ignored.
    client.hub.invoke("SubscribeOrders", 7)
    client.flush()
    assert server.receive_data(client.ws.data_to_send(), T0) == []
    client.read(server.data_to_send())
    assert client.hub_events == [CloseReceived("maintenance", allow_reconnect)]
    assert ("allowReconnect" in client.texts[0]) is allow_reconnect  # as ASP.NET writes it
    assert [c.code for c in client.closes()] == [1000]
    # The client's Close reply ends it.
    assert deliver(server, client) == [HubClosed("maintenance", by_peer=False, code=1000)]
    assert server.state is HubServerState.CLOSED


def test_close_without_an_error_and_a_websocket_close_of_our_own():
    server, client = opened()
    client.hub.invoke("SubscribeOrders", 7)
    client.flush()
    (invocation,) = server.receive_data(client.ws.data_to_send(), T0)
    server.close()
    assert server.complete(invocation.invocation_id) is False  # the connection is closing
    client.read(server.data_to_send())
    assert client.hub_events == [CloseReceived(None, False)]
    assert deliver(server, client) == [HubClosed("closed by the server", False, 1000)]
    other, peer = opened()
    other.close_websocket(4000, "maintenance")
    peer.read(other.data_to_send())
    assert peer.hub_events == []
    assert [(c.code, c.reason) for c in peer.closes()] == [(4000, "maintenance")]
    (closed,) = deliver(other, peer)
    assert closed.reason == "the server closed the WebSocket (4000 maintenance)"


def test_close_before_the_handshake_or_the_upgrade():
    server, client = upgraded()
    server.close("nope")
    client.read(server.data_to_send())
    assert client.hub_events == []  # no hub yet: only the WebSocket is closed
    assert [c.code for c in client.closes()] == [1000]
    assert deliver(server, client) == [HubClosed("nope", by_peer=False, code=1000)]
    pending = HubServerConnection()
    pending.receive_data(Client().ws.data_to_send(), T0)
    pending.close()
    assert pending.state is HubServerState.CLOSED
    assert pending.data_to_send() == b""  # nothing to say before the 101: drop the socket
    assert pending.closed == HubClosed(
        "closed by the server before the upgrade was accepted", by_peer=False, code=None
    )
    fresh = HubServerConnection()
    fresh.close_websocket()
    assert fresh.state is HubServerState.CLOSED


def test_the_client_closing_in_every_way_is_reported():
    server, client = opened()
    client.ws.send_text('{"type":7,"error":"bye"}' + RS)
    client.ws.send_text('{"type":6}' + RS)  # nothing after the Close counts
    assert deliver(server, client) == [
        HubClosed("the client closed the hub: bye", by_peer=True, code=1000)
    ]
    assert [c.code for c in client.closes()] == [1000]
    server, client = opened()
    client.ws.send_text('{"type":7}' + RS)
    assert deliver(server, client)[0].reason == "the client closed the hub"
    server, client = opened()
    client.ws.close(1001, "going away")
    assert deliver(server, client) == [
        HubClosed("the client closed the WebSocket (1001 going away)", by_peer=True, code=1001)
    ]
    server, client = opened()
    assert server.receive_data(b"", T0) == [
        HubClosed("the client closed the WebSocket (1006 connection lost)", True, 1006)
    ]
    early = HubServerConnection()
    (closed,) = early.receive_data(b"", T0)
    assert (closed.by_peer, closed.code) == (True, None)
    pending = HubServerConnection()
    pending.receive_data(Client().ws.data_to_send(), T0)
    (closed,) = pending.receive_data(b"", T0)
    assert closed.by_peer is True


def test_protocol_errors_from_the_client_are_reported_as_a_closed_connection():
    bad_http = HubServerConnection()
    (closed,) = bad_http.receive_data(b"GET /hubs/user HTTP/1.1\r\nHost: h\r\n\r\n", T0)
    assert closed.by_peer is False
    assert closed.code is None
    assert "invalid upgrade request" in closed.reason
    assert bad_http.data_to_send().startswith(b"HTTP/1.1 400 ")
    # Not JSON once the hub is open: ASP.NET Core's Close, then WebSocket close 1002.
    server, client = opened()
    client.ws.send_text("{not json" + RS)
    (closed,) = deliver(server, client)
    assert closed.reason.startswith("the client broke the SignalR protocol: ")
    assert closed.code == 1002
    assert client.hub_events == [CloseReceived("Connection closed with an error.", False)]
    assert [c.code for c in client.closes()] == [1002]
    # A bad handshake gets a handshake error.
    server, client = upgraded()
    client.ws.send_text('{"type":1}' + RS)
    (closed,) = deliver(server, client)
    assert closed.code == 1002
    assert client.hub_events == [
        HandshakeFailed("An unexpected error occurred during connection handshake.")
    ]
    # Broken WebSocket framing: an unmasked frame from a client.
    server, _ = opened()
    (closed,) = server.receive_data(UNMASKED, T0)
    assert (closed.by_peer, closed.code) == (False, 1002)
    assert closed.reason.startswith("the client broke the WebSocket protocol (1002")
    # A message over the limit.
    server, client = opened(max_message_size=100)
    client.ws.send_text("x" * 200)
    (closed,) = deliver(server, client)
    assert closed.code == 1009


def test_a_read_whose_later_frame_breaks_the_websocket_ends_with_that_close():
    # The bad frame ends the WebSocket while the messages before it are still being handled:
    # their answers have nowhere to go, and the connection ends with the WebSocket's close.
    server, client = opened()
    client.ws.send_text("{not json" + RS)
    (closed,) = server.receive_data(client.ws.data_to_send() + UNMASKED, T0)
    assert closed.reason.startswith("the client broke the SignalR protocol")
    server, client = upgraded()
    client.flush()
    events = server.receive_data(client.ws.data_to_send() + UNMASKED, T0)
    assert events == [HubOpened("json", 1), server.closed]
    assert events[1].code == 1002
    client.read(server.data_to_send())
    assert client.hub_events == []  # no handshake answer: only the WebSocket's Close
    assert [c.code for c in client.closes()] == [1002]


def test_a_client_that_never_reads_is_closed_as_too_slow_and_memory_stays_bounded():
    bound = 64 * 1024
    server, client = opened(max_outbox=bound)
    sent = 0
    while server.send("GatewayQuote", "ES", QUOTE):
        sent += 1
        assert server.outbox_size <= bound
    assert sent > 100
    assert server.overflowed is True
    assert server.state is HubServerState.CLOSED
    closed = server.closed
    assert closed is not None
    assert closed.code == SLOW_CLIENT_CODE
    assert SLOW_CLIENT_ERROR in closed.reason
    assert server.outbox_size <= bound + 256  # the Close frames come on top, nothing else
    assert server.send("GatewayQuote", "ES", QUOTE) is False
    # A client that reads in the end gets every queued message, then the reason.
    client.read(server.data_to_send())
    assert len(client.hub_events) == sent + 1
    assert client.hub_events[-1] == CloseReceived(SLOW_CLIENT_ERROR, True)
    assert [(c.code, c.reason) for c in client.closes()] == [(1013, "client too slow")]
    assert server.outbox_size == 0


def test_bytes_the_owner_reports_unwritten_count_against_the_bound():
    server, client = opened(max_outbox=4096)
    record = encode(Invocation("GatewayQuote", ("ES", QUOTE)))
    assert server.send_records(record)
    drained = server.data_to_send()
    server.report_unwritten(4096 - len(drained) // 2)  # the socket still holds most of it
    assert server.outbox_size == 4096 - len(drained) // 2
    assert server.send_records(record) is False
    assert server.overflowed
    server.report_unwritten(0)
    client.read(drained + server.data_to_send())
    assert client.hub_events[-1] == CloseReceived(SLOW_CLIENT_ERROR, True)


def test_a_single_message_larger_than_the_bound_closes_the_client():
    server, client = opened(max_outbox=1024)
    assert server.send("GatewayQuote", "ES", "x" * 2000) is False
    client.read(server.data_to_send())
    assert client.hub_events == [CloseReceived(SLOW_CLIENT_ERROR, True)]


def test_pongs_to_a_ping_flood_are_bounded_too():
    server, client = opened(max_outbox=2048)
    for _ in range(200):
        client.ws.ping(b"x" * 100)
    events = server.receive_data(client.ws.data_to_send(), T0)
    assert events[-1] == server.closed
    assert server.overflowed
    assert server.outbox_size <= 2048 + 256 + 200 * 102  # one read's pongs at most, then closed
    # Before the handshake, the same: only a WebSocket Close (no hub to close).
    early, peer = upgraded(max_outbox=512)
    for _ in range(20):
        peer.ws.ping(b"y" * 50)
    (closed,) = early.receive_data(peer.ws.data_to_send(), T0)
    assert closed.code == SLOW_CLIENT_CODE
    peer.read(early.data_to_send())
    assert peer.hub_events == []
    assert [c.code for c in peer.closes()] == [1013]


def test_a_keepalive_ping_past_the_bound_closes_the_client():
    server, _ = opened(max_outbox=1024, keepalive_interval=5.0)
    server.report_unwritten(1020)  # the socket is all but full
    (closed,) = server.handle_timer(T0 + 5.0)
    assert closed == server.closed
    assert closed.code == SLOW_CLIENT_CODE


def test_byte_by_byte_feeding_gives_the_same_events():
    server = HubServerConnection()
    client = Client()
    events: list[Any] = []

    def feed(data: bytes) -> None:
        for i in range(len(data)):
            events.extend(server.receive_data(data[i : i + 1], T0))

    feed(client.ws.data_to_send())
    assert [type(e) for e in events] == [UpgradeRequested]
    server.accept()
    client.read(server.data_to_send())
    client.flush()
    feed(client.ws.data_to_send())
    client.read(server.data_to_send())
    client.hub.invoke("SubscribeOrders", 7)
    client.hub.ping()
    client.flush()
    feed(client.ws.data_to_send())
    assert [type(e) for e in events] == [
        UpgradeRequested,
        HubOpened,
        InvocationReceived,
        PingReceived,
    ]


# --- any bytes from the client --------------------------------------------------------------


def _check(server: HubServerConnection, events: list[Any], bound: int) -> None:
    for event in events:
        assert isinstance(event, (*SERVER_EVENTS, HubClosed))
    closes = [e for e in events if isinstance(e, HubClosed)]
    assert len(closes) <= 1
    if closes:
        assert events[-1] is closes[0]
        assert server.state is HubServerState.CLOSED
        assert server.closed is closes[0]
    assert server.outbox_size <= bound + 64 * 1024  # one read's automatic answers at most


chunks = st.lists(st.binary(max_size=300), max_size=8)


@settings(max_examples=200, deadline=None)
@given(chunks)
def test_any_bytes_before_the_upgrade_never_raise(data: list[bytes]):
    server = HubServerConnection(max_outbox=4096)
    for chunk in [*data, b""]:
        events = server.receive_data(chunk, T0)
        _check(server, events, 4096)
        if server.state is HubServerState.UPGRADE_PENDING:
            _check(server, server.accept(), 4096)


@settings(max_examples=200, deadline=None)
@given(chunks, st.booleans())
def test_any_bytes_after_the_upgrade_never_raise(data: list[bytes], handshake: bool):
    server, _ = opened(max_outbox=4096) if handshake else upgraded(max_outbox=4096)
    for chunk in data:
        _check(server, server.receive_data(chunk, T0), 4096)
        server.handle_timer(T0 + 60)
        server.data_to_send()
    ended = server.closed
    events = server.receive_data(b"", T0)
    assert events == ([] if ended else [server.closed])


texts = st.lists(
    st.one_of(
        st.text(max_size=80),
        st.sampled_from(
            [
                '{"type":1,"target":"Sub","arguments":[1],"invocationId":"1"}\x1e',
                '{"type":1,"target":"Sub","arguments":[]}\x1e',
                '{"type":3,"invocationId":"s1"}\x1e',
                '{"type":4,"invocationId":"2","target":"S","arguments":[]}\x1e',
                '{"type":6}\x1e',
                '{"type":7,"error":"x"}\x1e',
                '{"type":99}\x1e',
                '{"protocol":"json","version":1}\x1e',
                '{"protocol":"cbor","version":1}\x1e',
                "\x1e",
                "[]\x1e",
            ]
        ),
    ),
    max_size=10,
)


@settings(max_examples=200, deadline=None)
@given(texts, st.booleans())
def test_any_messages_from_the_client_never_raise(messages: list[str], handshake: bool):
    server, client = opened(max_outbox=4096) if handshake else upgraded(max_outbox=4096)
    for message in messages:
        if client.ws.state.name != "OPEN":
            break
        client.ws.send_text(message)
        events = server.receive_data(client.ws.data_to_send(), T0)
        _check(server, events, 4096)
        for event in events:
            if isinstance(event, InvocationReceived) and event.invocation_id is not None:
                assert server.complete(event.invocation_id) is (server.state.name == "OPEN")
        client.read(server.data_to_send())
