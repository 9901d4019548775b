"""The SignalR fuzz harness runs in the suite on a bounded, seeded budget."""

from __future__ import annotations

from fuzz import fuzz_signalr
from tradeforge_proto.signalr import CompletionReceived, HandshakeCompleted, InvocationReceived


def test_mutated_records_fed_to_both_roles_raise_only_library_errors():
    assert fuzz_signalr.run(4000, seed=1) == 4000


def test_harness_reaches_hub_messages():
    # A clean client input (no handshake yet, bytes, 5-byte payloads) goes through every layer.
    records = fuzz_signalr.HANDSHAKE_OK + fuzz_signalr.SEEDS[4] + fuzz_signalr.SEEDS[7]
    events = fuzz_signalr.drive(bytes([4 << 3]) + records)
    assert [type(e) for e in events] == [HandshakeCompleted, InvocationReceived, CompletionReceived]


def test_harness_serves_as_a_server():
    records = fuzz_signalr.HANDSHAKE_REQUEST + fuzz_signalr.SEEDS[4] + fuzz_signalr.SEEDS[3]
    events = fuzz_signalr.drive(bytes([0b101]) + records)
    assert [type(e).__name__ for e in events] == [
        "HandshakeReceived",
        "InvocationReceived",
        "PingReceived",
    ]


def test_empty_input_is_accepted():
    assert fuzz_signalr.drive(b"") == []
    fuzz_signalr.one_input(b"\x00")
