"""Fuzz harness: any HTTP answer to any TopStepX operation parses or raises a TradeForge error.

    python -m fuzz.fuzz_rest [iterations]        # seeded mutation loop, no extra dependency
    python -m fuzz.fuzz_rest -atheris [args]     # coverage-guided, when atheris is installed

The input's first byte picks the endpoint, the next two the HTTP status, the rest is the body.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fuzz import driver
from tradeforge_proto.core import BarUnit, OrderQuery, OrderSide, OrderType, TradeForgeError
from tradeforge_proto.core.operations import Operation
from tradeforge_proto.providers import topstepx

T0 = datetime(2025, 1, 1, tzinfo=UTC)

OPERATIONS: list[Callable[[], Operation[Any]]] = [
    lambda: topstepx.login_key("u", "k"),
    lambda: topstepx.login_app("u", "p", "d", "a", "v"),
    topstepx.validate,
    topstepx.logout,
    topstepx.search_accounts,
    lambda: topstepx.search_contracts("ES"),
    lambda: topstepx.get_contract("CON.F.US.EP.Z25"),
    topstepx.available_contracts,
    lambda: topstepx.retrieve_bars("CON.F.US.EP.Z25", BarUnit.MINUTE, 1, start=T0, end=T0),
    lambda: topstepx.search_orders(1, T0),
    lambda: topstepx.search_open_orders(1),
    lambda: topstepx.get_order(1, 2),
    lambda: topstepx.query_orders(OrderQuery(1)),
    lambda: topstepx.place_order(1, "C", OrderSide.BUY, OrderType.MARKET, 1),
    lambda: topstepx.cancel_order(1, 2),
    lambda: topstepx.modify_order(1, 2, size=3),
    lambda: topstepx.search_open_positions(1),
    lambda: topstepx.close_position(1, "C"),
    lambda: topstepx.partial_close_position(1, "C", 1),
    lambda: topstepx.search_trades(1, T0),
    topstepx.ping,
]

SEEDS = [
    b'{"success":true,"errorCode":0,"errorMessage":null,"accounts":[{"id":1,"name":"a",'
    b'"balance":1.5,"canTrade":true,"isVisible":true}]}',
    b'{"success":false,"errorCode":2,"errorMessage":"Invalid order size specified.","orderId":9}',
    b'{"title":"One or more validation errors occurred.","status":400,"errors":{"size":["x"]}}',
    b'{"success":true,"errorCode":0,"orders":[{"id":1,"accountId":2,"contractId":"C",'
    b'"creationTimestamp":"2025-07-18T21:00:01.2680091+00:00","status":2,"type":2,"side":0,'
    b'"size":1,"fillVolume":1,"filledPrice":6335.250000000}]}',
    b"<html>502 Bad Gateway</html>",
    b"pong",
]


def one_input(data: bytes) -> None:
    """Parse ``data`` as an answer; anything but a TradeForgeError is a bug."""
    if len(data) < 3:
        return
    operation = OPERATIONS[data[0] % len(OPERATIONS)]()
    status = 100 + int.from_bytes(data[1:3], "big") % 500
    with contextlib.suppress(TradeForgeError):
        operation.parse(status, {"Retry-After": "3"}, data[3:])


def mutate(data: bytes, rng: random.Random) -> bytes:
    """A small random edit: flip, insert, delete or splice bytes."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        choice = rng.random()
        pos = rng.randrange(len(buf) + 1)
        if choice < 0.3 and buf:
            buf[min(pos, len(buf) - 1)] ^= 1 << rng.randrange(8)
        elif choice < 0.6:
            buf[pos:pos] = bytes([rng.choice(b'{}[]",:0123456789.-truefalsn ')])
        elif choice < 0.8 and buf:
            del buf[pos : pos + rng.randint(1, 8)]
        else:
            other = rng.choice(SEEDS)
            start = rng.randrange(len(other))
            buf[pos:pos] = other[start : start + rng.randint(1, 32)]
    return bytes(buf)


def run(iterations: int, seed: int = 0) -> int:
    """Seeded mutation fuzzing over every operation; returns the number of inputs tried."""
    rng = random.Random(seed)
    for i in range(iterations):
        body = mutate(rng.choice(SEEDS), rng)
        header = bytes([i % len(OPERATIONS)]) + rng.choice([200, 400, 401, 429, 500]).to_bytes(
            2, "big"
        )
        one_input(header[:1] + (int.from_bytes(header[1:], "big") - 100).to_bytes(2, "big") + body)
    return iterations


def main() -> None:
    """Run this target from the command line (see the module docstring)."""
    driver.main(one_input, run)


if __name__ == "__main__":
    main()
