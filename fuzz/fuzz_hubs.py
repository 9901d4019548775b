"""Fuzz harness: any SignalR payload reaching the TopStepX hubs decodes or raises our error.

    python -m fuzz.fuzz_hubs [iterations]        # seeded mutation loop, no extra dependency
    python -m fuzz.fuzz_hubs -atheris [args]     # coverage-guided, when atheris is installed

The input is fed as WebSocket text payloads to a client hub connection that completed its
handshake; every invocation it yields goes through both hub decoders.
"""

from __future__ import annotations

import contextlib
import random

from fuzz import driver
from tradeforge_proto.core import TradeForgeError
from tradeforge_proto.providers.topstepx.hubs import MarketHub, UserHub
from tradeforge_proto.signalr import HubConnection, HubRole, InvocationReceived

SEEDS = [
    b'{"type":1,"target":"GatewayQuote","arguments":["CON.F.US.EP.U25",{"symbol":"F.US.EP",'
    b'"bestBid":2100.0,"bestAsk":2100.5,"lastUpdated":"2024-07-21T13:45:00Z"}]}\x1e',
    b'{"type":1,"target":"GatewayDepth","arguments":["CON.F.US.EP.U25",[{"timestamp":'
    b'"2024-07-21T13:45:00Z","type":6,"price":0,"volume":0},{"type":2,"price":2100.0,'
    b'"volume":10,"currentVolume":5}]]}\x1e',
    b'{"type":1,"target":"GatewayTrade","arguments":["CON.F.US.EP.U25",[{"symbolId":"F.US.EP",'
    b'"price":2100.25,"timestamp":"2024-07-21T13:45:00Z","type":0,"volume":2}]]}\x1e',
    b'{"type":1,"target":"GatewayUserOrder","arguments":[{"action":1,"data":{"id":1,'
    b'"accountId":2,"contractId":"C","creationTimestamp":"2026-05-06T13:36:03.6112156+00:00",'
    b'"status":6,"type":2,"side":0,"size":1,"fillVolume":0}}]}\x1e',
    b'{"type":1,"target":"GatewayUserPosition","arguments":[{"action":1,"data":{"id":3,'
    b'"accountId":2,"contractId":"C","creationTimestamp":"2026-05-06T13:36:03Z","size":0}}]}\x1e',
    b'{"type":1,"target":"GatewayLogout","arguments":[]}\x1e{"type":6}\x1e',
]


def one_input(data: bytes) -> None:
    """Feed ``data`` (split at its first byte) to a hub connection and both decoders."""
    connection = HubConnection(HubRole.CLIENT)
    connection.receive("{}\x1e")
    hubs = (UserHub("https://h/hubs/user"), MarketHub("https://h/hubs/market"))
    cut = data[0] if data else 0
    try:
        for chunk in (data[1 : cut + 1], data[cut + 1 :]):
            for event in connection.receive(chunk):
                if isinstance(event, InvocationReceived):
                    for hub in hubs:
                        with contextlib.suppress(TradeForgeError):
                            hub.decode(event.target, event.arguments)
    except TradeForgeError:
        pass


def mutate(data: bytes, rng: random.Random) -> bytes:
    """A small random edit that keeps most of the JSON shape."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        pos = rng.randrange(len(buf))
        choice = rng.random()
        if choice < 0.4:
            buf[pos] = rng.choice(b'0123456789-.,:[]{}"enultrfas ')
        elif choice < 0.7:
            del buf[pos : pos + rng.randint(1, 6)]
        else:
            other = rng.choice(SEEDS)
            start = rng.randrange(len(other))
            buf[pos:pos] = other[start : start + rng.randint(1, 40)]
    return bytes(buf)


def run(iterations: int, seed: int = 0) -> int:
    """Seeded mutation fuzzing; returns the number of inputs tried."""
    rng = random.Random(seed)
    for _ in range(iterations):
        body = mutate(rng.choice(SEEDS), rng)
        one_input(bytes([rng.randrange(256)]) + body)
    return iterations


def main() -> None:
    """Run this target from the command line (see the module docstring)."""
    driver.main(one_input, run)


if __name__ == "__main__":
    main()
