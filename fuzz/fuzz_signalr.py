"""Fuzz harness: any bytes fed to a SignalR hub connection, either role, give events or our errors.

    python -m fuzz.fuzz_signalr [iterations]     # seeded mutation loop, no extra dependency
    python -m fuzz.fuzz_signalr -atheris [args]  # coverage-guided, when atheris is installed

The input's first byte picks the role (bit 0), whether the handshake is already done (bit 1),
whether payloads arrive as text or bytes (bit 2) and the payload size (the other bits); the rest
is cut into payloads and fed one by one. The connection answers what it is asked, as a peer would.
"""

from __future__ import annotations

import random

from fuzz import driver
from tradeforge_proto.core import RemoteProtocolError
from tradeforge_proto.signalr import (
    HandshakeReceived,
    HubConnection,
    HubEvent,
    HubRole,
    HubState,
    InvocationReceived,
    PingReceived,
    StreamInvocationReceived,
)

HANDSHAKE_REQUEST = b'{"protocol":"json","version":1}\x1e'
HANDSHAKE_OK = b"{}\x1e"

SEEDS = [
    HANDSHAKE_REQUEST,
    HANDSHAKE_OK,
    b'{"error":"Requested protocol \'messagepack\' is not available."}\x1e',
    b'{"type":6}\x1e',
    b'{"type":1,"invocationId":"0","target":"Send","arguments":[42,"hi"]}\x1e',
    b'{"type":1,"target":"GatewayQuote","arguments":["CON.F.US.EP.Z25",{"lastPrice":6335.25,'
    b'"bestBid":6335.0,"volume":12}],"headers":{"a":"b"},"streamIds":["1"]}\x1e',
    b'{"type":2,"invocationId":"1","item":{"x":[1,2.5,null]}}\x1e',
    b'{"type":3,"invocationId":"0","result":42}\x1e',
    b'{"type":3,"invocationId":"123","error":"It didn\'t work!"}\x1e',
    b'{"type":3,"invocationId":"7"}\x1e',
    b'{"type":4,"invocationId":"2","target":"Counter","arguments":[10],"streamIds":[]}\x1e',
    b'{"type":5,"invocationId":"2"}\x1e',
    b'{"type":7,"error":"Connection closed because of an error!","allowReconnect":true}\x1e',
    b'{"type":8,"sequenceId":1394}\x1e',
    b'{"type":9,"sequenceId":1234}\x1e',
    b'{"type":42,"whatever":"\xc3\xa9"}\x1e',
]


def _react(connection: HubConnection, events: list[HubEvent]) -> None:
    """Answer as an application would: accept handshakes, complete calls, return pings."""
    for event in events:
        if isinstance(event, HandshakeReceived) and connection.state is HubState.HANDSHAKING:
            connection.accept_handshake()
        elif connection.state is not HubState.OPEN:
            continue
        elif isinstance(event, InvocationReceived) and event.invocation_id is not None:
            connection.complete(event.invocation_id, list(event.arguments))
        elif isinstance(event, StreamInvocationReceived):
            connection.stream_item(event.invocation_id, event.target)
            connection.complete(event.invocation_id, has_result=False)
        elif isinstance(event, PingReceived):
            connection.ping()


def drive(data: bytes) -> list[HubEvent]:
    """Feed ``data`` as described in the module docstring; returns the events seen."""
    seen: list[HubEvent] = []
    if not data:
        return seen
    control, body = data[0], data[1:]
    role = HubRole.SERVER if control & 1 else HubRole.CLIENT
    connection = HubConnection(role, max_buffer_size=512)
    if control & 2:
        if role is HubRole.SERVER:
            connection.receive(HANDSHAKE_REQUEST)
            connection.accept_handshake()
        else:
            connection.receive(HANDSHAKE_OK)
    as_text = bool(control & 4)
    size = (control >> 3) + 1
    try:
        for start in range(0, len(body), size):
            chunk = body[start : start + size]
            events = connection.receive(chunk.decode("utf-8", "replace") if as_text else chunk)
            seen.extend(events)
            _react(connection, events)
            connection.data_to_send()
    except RemoteProtocolError:
        assert connection.state is HubState.CLOSED
    return seen


def one_input(data: bytes) -> None:
    """Drive one connection with ``data``; anything but a RemoteProtocolError is a bug."""
    drive(data)


def mutate(data: bytes, rng: random.Random) -> bytes:
    """A small random edit: flip, insert, delete or splice bytes."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        choice = rng.random()
        pos = rng.randrange(len(buf) + 1)
        if choice < 0.3 and buf:
            buf[min(pos, len(buf) - 1)] ^= 1 << rng.randrange(8)
        elif choice < 0.6:
            buf[pos:pos] = bytes([rng.choice(b'{}[]",:0123456789.-truefalsn \x1e\xc3\xa9')])
        elif choice < 0.8 and buf:
            del buf[pos : pos + rng.randint(1, 8)]
        else:
            other = rng.choice(SEEDS)
            start = rng.randrange(len(other))
            buf[pos:pos] = other[start : start + rng.randint(1, 32)]
    return bytes(buf)


def run(iterations: int, seed: int = 0) -> int:
    """Seeded mutation fuzzing over both roles; returns the number of inputs tried."""
    rng = random.Random(seed)
    for _ in range(iterations):
        records = b"".join(rng.choice(SEEDS) for _ in range(rng.randint(1, 4)))
        one_input(bytes([rng.randrange(256)]) + mutate(records, rng))
    return iterations


def main() -> None:
    """Run this target from the command line (see the module docstring)."""
    driver.main(one_input, run)


if __name__ == "__main__":
    main()
