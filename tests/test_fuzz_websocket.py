"""The WebSocket fuzz harness runs in the suite on a bounded, seeded budget."""

from __future__ import annotations

from fuzz import fuzz_websocket
from tradeforge_proto.websocket import (
    BytesReceived,
    ConnectionClosed,
    PingReceived,
    TextReceived,
    UpgradeRequested,
    WebSocketServer,
)


def test_mutated_streams_to_both_roles_raise_only_remote_protocol_errors():
    reached = fuzz_websocket.tally(1500, seed=1)
    assert reached.inputs == 1500
    # The mutations must reach both sides of the parser: refusals and delivered messages.
    assert reached.refusals > 100
    assert reached.events["TextReceived"] > 100
    assert reached.events["UpgradeRequested"] > 20
    assert reached.events["ConnectionClosed"] > 100


def test_seeds_reach_messages_on_both_roles():
    # The harness must not only see errors: unmutated seeds go through every layer.
    client_events = fuzz_websocket.feed(fuzz_websocket.open_client(), [fuzz_websocket.SEEDS[1]])
    assert client_events[:2] == [BytesReceived(b"\x00\x01\x02\x03"), PingReceived(b"hb")]
    assert client_events[-2:] == [
        TextReceived("ok"),
        ConnectionClosed(1006, "connection lost", True),
    ]

    server_events = fuzz_websocket.feed(WebSocketServer(), [fuzz_websocket.SEEDS[5]])
    assert isinstance(server_events[0], UpgradeRequested)
    assert server_events[1:] == [
        TextReceived("hi"),
        PingReceived(b""),
        ConnectionClosed(1000, "", by_peer=True),
    ]


def test_one_input_splits_by_its_first_byte():
    assert fuzz_websocket.one_input(b"") == []
    seed = fuzz_websocket.SEEDS[5]
    byte_by_byte = fuzz_websocket.one_input(b"\x00" + seed)
    whole = fuzz_websocket.one_input(b"\xff" + seed)  # read sizes of 1 and 256 bytes
    assert byte_by_byte == whole  # the same events, however the bytes arrive
    server_events = whole[1]
    assert isinstance(server_events[0], UpgradeRequested)
    assert server_events[1:] == [
        TextReceived("hi"),
        PingReceived(b""),
        ConnectionClosed(1000, "", by_peer=True),
    ]
