"""Fuzz harness: bytes fed to a WebSocket client or server give our events or RemoteProtocolError.

    python -m fuzz.fuzz_websocket [iterations]        # seeded mutation loop, no extra dependency
    python -m fuzz.fuzz_websocket -atheris [args]     # coverage-guided, when atheris is installed

The input's first byte sets the chunk size (1 to 256); the rest is fed, chunk by chunk and then
EOF, to a client whose handshake is complete (as frames from its server), to a fresh server (as an
upgrade request followed by frames, accepted as soon as it is recognised) and to a client still
waiting for the answer to its upgrade request (as that answer).
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

from fuzz import driver
from tradeforge_proto.core.errors import RemoteProtocolError
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
    WsEvent,
)

MAX_MESSAGE_SIZE = 1024
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
REQUEST = (
    b"GET /hubs/market?access_token=t%2Fk HTTP/1.1\r\nHost: rtc.example\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: json\r\n\r\n"
)
# Client frames are masked with the all-zero key, so their payloads read as they are sent.
ZERO_KEY = b"\x00\x00\x00\x00"
SEEDS = [
    # What a server sends to an open client: text, binary, ping, pong, close, fragments.
    b'\x81\x1c{"type":1,"target":"Quote"}\x1e',
    b"\x82\x04\x00\x01\x02\x03\x89\x02hb\x8a\x00\x81\x02ok",
    b"\x01\x03abc\x00\x03def\x89\x00\x80\x02gh\x88\x05\x0f\xa0bye",
    b"\x81\x7e\x00\x80" + b"q" * 128 + b"\x88\x02\x03\xe8",
    b"\x02\x02\xc3\xa9\x00\x7f" + b"\x00" * 8 + b"\x81\x01\xff",
    # What a client sends to a server: the upgrade request, then masked frames.
    REQUEST
    + b"\x81\x82"
    + ZERO_KEY
    + b"hi\x89\x80"
    + ZERO_KEY
    + b"\x88\x82"
    + ZERO_KEY
    + b"\x03\xe8",
    REQUEST + b"\x01\x81" + ZERO_KEY + b"a\x80\x81" + ZERO_KEY + b"b\x82\x83" + ZERO_KEY + b"xyz",
    REQUEST.replace(b"13", b"8") + b"\x81\x02hi",
    b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 5\r\n\r\nnope!",
]
INTERESTING = b"\x00\x01\x02\x08\x09\x0a\x7e\x7f\x80\x81\x82\x88\x89\x8a\xc1\xff\r\n: "


def open_client() -> WebSocketClient:
    """A client whose handshake with an in-memory server has completed."""
    client = WebSocketClient("rtc.example", "/hubs/market", max_message_size=MAX_MESSAGE_SIZE)
    server = WebSocketServer()
    server.receive_data(client.data_to_send())
    server.accept()
    client.receive_data(server.data_to_send())
    assert client.state is WebSocketState.OPEN
    return client


def feed(
    peer: WebSocketClient | WebSocketServer,
    chunks: list[bytes],
    refusals: list[RemoteProtocolError] | None = None,
) -> list[WsEvent]:
    """Feed ``chunks`` then EOF; accept any upgrade and echo text. Returns every event seen;
    the protocol errors raised go to ``refusals``."""
    seen: list[WsEvent] = []
    for chunk in [*chunks, b""]:
        try:
            events = peer.receive_data(chunk)
        except RemoteProtocolError as error:
            assert peer.state is WebSocketState.CLOSED
            if refusals is not None:
                refusals.append(error)
            continue
        for event in events:
            assert isinstance(event, EVENT_TYPES), event
            seen.append(event)
            if isinstance(event, UpgradeRequested) and isinstance(peer, WebSocketServer):
                events += peer.accept("json" if "json" in event.subprotocols else None)
            elif isinstance(event, TextReceived) and peer.state is WebSocketState.OPEN:
                peer.send_text(event.data)
        peer.data_to_send()
    assert peer.state is not WebSocketState.OPEN
    return seen


def one_input(
    data: bytes, refusals: list[RemoteProtocolError] | None = None
) -> list[list[WsEvent]]:
    """Feed ``data`` to both roles (the first byte sets the read size, less one); anything but
    our events or RemoteProtocolError is a bug. The events of each peer: an open client, a
    server, a client awaiting its upgrade."""
    if not data:
        return []
    size = data[0] + 1
    stream = data[1:]
    chunks = [stream[i : i + size] for i in range(0, len(stream), size)]
    awaiting = WebSocketClient("rtc.example", "/hubs/user", max_message_size=MAX_MESSAGE_SIZE)
    awaiting.data_to_send()
    return [
        feed(open_client(), chunks, refusals),
        feed(WebSocketServer(max_message_size=MAX_MESSAGE_SIZE), chunks, refusals),
        feed(awaiting, chunks, refusals),
    ]


def mutate(data: bytes, rng: random.Random) -> bytes:
    """A small random edit: flip, insert, delete or splice bytes."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        choice = rng.random()
        pos = rng.randrange(len(buf) + 1)
        if choice < 0.3 and buf:
            buf[min(pos, len(buf) - 1)] ^= 1 << rng.randrange(8)
        elif choice < 0.6:
            buf[pos:pos] = bytes([rng.choice(INTERESTING)])
        elif choice < 0.8 and buf:
            del buf[pos : pos + rng.randint(1, 8)]
        else:
            other = rng.choice(SEEDS)
            start = rng.randrange(len(other))
            buf[pos:pos] = other[start : start + rng.randint(1, 32)]
    return bytes(buf)


@dataclass
class Tally:
    """What a run reached: inputs tried, events delivered, protocol errors raised."""

    inputs: int = 0
    events: Counter[str] = field(default_factory=Counter)
    refusals: int = 0


def tally(iterations: int, seed: int = 0) -> Tally:
    """Seeded mutation fuzzing of both roles, and what it reached."""
    rng = random.Random(seed)
    reached = Tally()
    for _ in range(iterations):
        size = rng.choice([0, 1, 2, 6, 31, 255, rng.randrange(256)])
        refusals: list[RemoteProtocolError] = []
        for events in one_input(bytes([size]) + mutate(rng.choice(SEEDS), rng), refusals):
            reached.events.update(type(event).__name__ for event in events)
        reached.inputs += 1
        reached.refusals += len(refusals)
    return reached


def run(iterations: int, seed: int = 0) -> int:
    """Seeded mutation fuzzing of both roles; returns the number of inputs tried."""
    return tally(iterations, seed).inputs


def main() -> None:
    """Run this target from the command line (see the module docstring)."""
    driver.main(one_input, run)


if __name__ == "__main__":
    main()
