"""Realtime decoding: market-hub traffic into typed events, side by side with a floor and a peer.

The traffic is what the market hub sends: WebSocket text payloads holding one or more SignalR
records, mostly partial quotes and depth lists, some trade prints. Three decoders read the same
payloads in one run:

- ours: SignalR records -> hub events -> typed, merged generic events (QuoteUpdated,
  DepthReceived with Decimal prices and aware datetimes, MarketTradeReceived);
- floor: split on 0x1E and orjson.loads each record (no validation, no types);
- pysignalr: JSONProtocol.decode, which returns untyped message objects.

Each decoder keeps everything it produces, as a consumer queueing events would. The decoders take
turns, round after round, so that a load spike on the machine hits all of them alike; the figures
are medians over the rounds, and each ratio is the median of the rounds' own ratios. The memory
held by 10,000 queued events follows, then the same comparison for each kind of message alone.

Usage: bench_realtime.py [payloads (20000)] [rounds (7)]
"""

from __future__ import annotations

import gc
import random
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import orjson

from tradeforge_proto.core.events import StreamEvent
from tradeforge_proto.providers.topstepx.hubs import MarketHub
from tradeforge_proto.signalr import RS, HubConnection, HubRole, InvocationReceived

CONTRACTS = [f"CON.F.US.{root}.Z25" for root in ("EP", "ENQ", "MES", "MNQ", "CLE", "GCE")]
KINDS = ("GatewayQuote", "GatewayDepth", "GatewayTrade")

Decoder = Callable[[list[str]], list[Any]]


def make_traffic(payloads: int, seed: int = 7) -> tuple[list[str], int]:
    """Payloads as the market hub sends them, and how many records they hold."""
    rng = random.Random(seed)
    mids = {c: 5000.0 + 250 * i for i, c in enumerate(CONTRACTS)}
    out: list[str] = []
    records = 0
    for n in range(payloads):
        parts = []
        for _ in range(rng.choice((1, 1, 1, 2, 3, 5))):
            contract = rng.choice(CONTRACTS)
            mids[contract] += rng.choice((-0.25, 0.0, 0.25))
            mid = mids[contract]
            stamp = f"2025-11-24T14:{n // 600 % 60:02d}:{n // 10 % 60:02d}.{n % 10}123456+00:00"
            kind = rng.random()
            if kind < 0.6:
                data: Any = {
                    "symbol": "F.US." + contract.split(".")[3],
                    "bestBid": mid - 0.25,
                    "bestAsk": mid + 0.25,
                    "lastUpdated": stamp,
                    "timestamp": stamp,
                }
                if rng.random() < 0.3:
                    data["lastPrice"] = mid
                    data["volume"] = 100_000 + n
                target = "GatewayQuote"
            elif kind < 0.95:
                data = [
                    {
                        "timestamp": stamp,
                        "type": rng.choice((1, 2, 3, 4)),
                        "price": mid + 0.25 * rng.randint(-10, 10),
                        "volume": rng.randint(0, 60),
                        "currentVolume": rng.randint(0, 5),
                    }
                    for _ in range(rng.randint(1, 10))
                ]
                target = "GatewayDepth"
            else:
                data = [
                    {
                        "symbolId": "F.US." + contract.split(".")[3],
                        "price": mid,
                        "timestamp": stamp,
                        "type": rng.randint(0, 1),
                        "volume": rng.randint(1, 5),
                    }
                    for _ in range(rng.randint(1, 3))
                ]
                target = "GatewayTrade"
            record = {"type": 1, "target": target, "arguments": [contract, data]}
            parts.append(orjson.dumps(record).decode() + RS)
            records += 1
        out.append("".join(parts))
    return out, records


def only(kind: str, payloads: list[str]) -> tuple[list[str], int]:
    """The same payloads keeping only the records of one target (empty payloads dropped)."""
    marker = f'"target":"{kind}"'
    out: list[str] = []
    records = 0
    for payload in payloads:
        kept = [record for record in payload.split(RS)[:-1] if marker in record]
        if kept:
            out.append(RS.join(kept) + RS)
            records += len(kept)
    return out, records


def ours() -> Callable[[list[str]], list[StreamEvent]]:
    """Typed decoding through the project's SignalR connection and market hub."""
    connection = HubConnection(HubRole.CLIENT)
    connection.data_to_send()
    connection.receive("{}" + RS)
    hub = MarketHub("https://rtc.example/hubs/market")

    def run(payloads: list[str]) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        receive, decode, extend = connection.receive, hub.decode, events.extend
        for payload in payloads:
            for event in receive(payload):
                if isinstance(event, InvocationReceived):
                    extend(decode(event.target, event.arguments))
        return events

    return run


def floor() -> Decoder:
    """Split on the record separator and parse JSON: the least any decoder must do."""
    loads = orjson.loads

    def run(payloads: list[str]) -> list[Any]:
        out: list[Any] = []
        for payload in payloads:
            out.extend(loads(record) for record in payload.split(RS)[:-1])
        return out

    return run


def pysignalr() -> Decoder | None:
    """pysignalr's JSON protocol decoder, when installed."""
    try:
        from pysignalr.protocol.json import JSONProtocol
    except ImportError:
        return None
    protocol = JSONProtocol()

    def run(payloads: list[str]) -> list[Any]:
        out: list[Any] = []
        for payload in payloads:
            out.extend(protocol.decode(payload))
        return out

    return run


FLOOR = "floor (split + orjson)"
PEER = "pysignalr JSONProtocol (untyped)"
OURS = "tradeforge typed events"


def contenders() -> dict[str, Decoder]:
    """Fresh decoders, by name; pysignalr only when installed."""
    found: dict[str, Decoder] = {FLOOR: floor()}
    peer = pysignalr()
    if peer is not None:
        found[PEER] = peer
    found[OURS] = ours()
    return found


def timings(
    decoders: dict[str, Decoder], payloads: list[str], rounds: int
) -> dict[str, list[float]]:
    """Seconds per pass over ``payloads`` of each decoder, the decoders taking turns each round."""
    seconds: dict[str, list[float]] = {name: [] for name in decoders}
    for _ in range(rounds):
        for name, decode in decoders.items():
            gc.collect()
            start = time.perf_counter()
            decode(payloads)
            seconds[name].append(time.perf_counter() - start)
    return seconds


def median_ratio(fast: list[float], slow: list[float]) -> float:
    """How many times faster ``fast`` was than ``slow``: the median of the per-round ratios."""
    return statistics.median(s / f for f, s in zip(fast, slow, strict=True))


def memory_per_10k(decode: Decoder, payloads: list[str]) -> float:
    """KiB held by the first 10,000 items a decoder produces."""
    gc.collect()
    tracemalloc.start()
    items = decode(payloads)[:10_000]
    gc.collect()
    size = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(items) == 10_000
    return size / 1024


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    payloads, records = make_traffic(count)
    print(f"{count} payloads, {records} records ({records / count:.2f} per payload)")
    print(f"records/s, median of {rounds} interleaved rounds (min .. max)")
    seconds = timings(contenders(), payloads, rounds)
    for name, values in seconds.items():
        rate = records / statistics.median(values)
        spread = f"{records / max(values):,.0f} .. {records / min(values):,.0f}"
        print(f"{name:<34} {rate:>12,.0f}   ({spread})")
    mine = seconds[OURS]
    print(f"ratio ours / floor     = {median_ratio(mine, seconds[FLOOR]):.2f} (target >= 0.5)")
    if PEER in seconds:
        print(f"ratio ours / pysignalr = {median_ratio(mine, seconds[PEER]):.2f} (target >= 1.0)")
    else:
        print("pysignalr is not installed: pip install pysignalr to compare")
    print(f"memory of 10,000 typed events: {memory_per_10k(ours(), payloads):,.0f} KiB")
    print(f"memory of 10,000 parsed dicts: {memory_per_10k(floor(), payloads):,.0f} KiB")

    print("\nper kind of message, records/s (medians), and ours / pysignalr:")
    names = list(seconds)
    print(f"{'kind':<14} {'records':>8} " + " ".join(f"{n.split()[0]:>12}" for n in names))
    for kind in KINDS:
        subset, subset_records = only(kind, payloads)
        per_kind = timings(contenders(), subset, rounds)
        rates = " ".join(
            f"{subset_records / statistics.median(per_kind[n]):>12,.0f}" for n in names
        )
        versus = f"  {median_ratio(per_kind[OURS], per_kind[PEER]):.2f}" if PEER in per_kind else ""
        print(f"{kind:<14} {subset_records:>8} {rates}{versus}")


if __name__ == "__main__":
    main()
