"""Decoding gateway answers into models: orjson (what the core uses) vs the standard json module.

Both sides parse the same Order/search body and build the same models; only the JSON decoder
differs. Prints the time per body and the ratio.
"""

from __future__ import annotations

import json
import timeit
from functools import partial
from typing import Any

import orjson

from tradeforge_proto.core import Order
from tradeforge_proto.providers.topstepx import many_from_wire


def _body(count: int) -> bytes:
    order = {
        "id": 36598,
        "accountId": 704,
        "contractId": "CON.F.US.EP.U25",
        "symbolId": "F.US.EP",
        "creationTimestamp": "2025-07-18T21:00:01.268009+00:00",
        "updateTimestamp": "2025-07-18T21:00:01.268009+00:00",
        "status": 2,
        "type": 2,
        "side": 0,
        "size": 1,
        "limitPrice": None,
        "stopPrice": None,
        "fillVolume": 1,
        "filledPrice": 6335.25,
        "customTag": None,
    }
    envelope = {"orders": [order] * count, "success": True, "errorCode": 0, "errorMessage": None}
    return json.dumps(envelope).encode()


def _decode_with(loads: Any, body: bytes) -> list[Order]:
    return many_from_wire(Order, loads(body)["orders"])


def main() -> None:
    print(f"{'orders/body':>12} {'stdlib json':>14} {'orjson':>14} {'ratio':>7}")
    for count in (1, 100, 1000):
        body = _body(count)
        assert _decode_with(json.loads, body) == _decode_with(orjson.loads, body)
        number = max(10, 20_000 // count)
        slow = min(timeit.repeat(partial(_decode_with, json.loads, body), number=number, repeat=5))
        fast = min(
            timeit.repeat(partial(_decode_with, orjson.loads, body), number=number, repeat=5)
        )
        slow_us, fast_us = slow / number * 1e6, fast / number * 1e6
        print(f"{count:>12} {slow_us:>11.1f} us {fast_us:>11.1f} us {slow / fast:>6.2f}x")
    print("ratio = stdlib time / orjson time (decode + model building)")


if __name__ == "__main__":
    main()
