"""Market data over loopback WebSocket: typed events per second and latency, beside pysignalr.

Every contender connects to the market hub of the simulator, subscribes to quotes, trades and
depth of every active contract, and counts market events: one per quote, one per depth list, one
per trade print (what the project's market hub makes of each record). Three contenders:

- ours: ``TradingStream`` read with ``async for``. Its queue coalesces quotes and depth of a
  contract still waiting to be read, so the reader sees fewer, merged events; the events counted
  are those decoded (read, plus merged into one still waiting), and the merged count is shown;
- pysignalr: ``SignalRClient`` with a handler per target that counts the records' items, as
  untyped lists and dicts (its frame limit is lifted: with the default 1 MiB a late batch from a
  busy simulator closes the connection with 1009);
- pysignalr + typed: the same, each record then decoded by the project's ``MarketHub`` into the
  same typed events as ours, which separates the transport from the decoding.

Throughput. The simulator runs in a child process (``python -m tradeforge_sim``), so that
it has its own CPU and the CPU time of this process is the client's alone. The contenders take
turns, round after round, on that one simulator; each runs a warm-up, then a fixed window. Two
figures per contender: events per second received in the window, which stay at what the
simulator sends as long as the client keeps up, and events per CPU-second of the client process,
the client's own capacity on one core. Medians over the rounds; ratios are medians of the rounds'
own ratios.

Latency, in this process (one clock): a simulator here at about 10,000 events/s, ours then
pysignalr. Two measures per event: receive time minus the record's ``timestamp``, and receive time
minus the moment the simulator made the batch holding that record. The simulator makes records
in batches every 20 ms tick for the slot times that fell due since the previous tick, so the
first measure includes up to one tick of batching; the second is the delivery path alone
(simulator writer, loopback, WebSocket, SignalR, decoding, queue, reader).

Usage: bench_stream.py [rate per contract (2000)] [window seconds (2.5)] [rounds (3)]
"""

from __future__ import annotations

import bisect
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import anyio

from tradeforge_anyio.client import TradingClient
from tradeforge_proto.core.events import (
    DepthReceived,
    MarketTradeReceived,
    QuoteUpdated,
    StreamEvent,
)
from tradeforge_proto.core.models import ContractId
from tradeforge_proto.core.subscriptions import Subscription
from tradeforge_proto.providers.topstepx.hubs import MarketHub
from tradeforge_proto.providers.topstepx.wire import parse_timestamp
from tradeforge_sim.server import SimServer
from tradeforge_sim.simulation import SimConfig, Simulation

SEED = 7
BENCH_OUTBOX = 1 << 30  # bytes a hub client may leave unread: large, nobody is cut off
WARMUP = 0.8  # seconds after subscribing before a window opens
LATENCY_RATE = 950.0  # updates/s per contract: about 10,000 events/s over the active contracts
LATENCY_WINDOW = 4.0
SUBSCRIBE = ("SubscribeContractQuotes", "SubscribeContractTrades", "SubscribeContractMarketDepth")
TARGETS = ("GatewayQuote", "GatewayTrade", "GatewayDepth")

OURS = "tradeforge TradingStream (typed)"
RAW = "pysignalr (untyped)"
TYPED = "pysignalr + same typed decoding"


@dataclass
class Window:
    """What one contender did during one window."""

    events: int  # market events decoded
    seconds: float
    cpu: float  # CPU seconds of this process
    delivered: int | None = None  # events the reader got after coalescing (ours)

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    @property
    def per_cpu_second(self) -> float:
        return self.events / self.cpu if self.cpu > 0 else float("inf")


# --- login ---------------------------------------------------------------------------------


async def login(api_url: str) -> tuple[TradingClient, list[ContractId]]:
    """A logged-in client of the simulator and its active contracts."""
    client = TradingClient.for_simulator(api_url, "trader", "tradeforge-sim-key")
    contracts = [c.id for c in await client.get_available_contracts() if c.active]
    return client, contracts


# --- ours ----------------------------------------------------------------------------------


def decoded(stream: Any) -> int:
    """Events a stream's queue took in so far: handed out, merged into another, or waiting."""
    queue = stream.queue
    return int(queue.delivered + queue.coalesced_quotes + queue.coalesced_depth + len(queue))


async def ours_window(
    api_url: str, window: float, seen: Callable[[float, StreamEvent], None] | None = None
) -> Window:
    """Read the stream for ``window`` seconds after a warm-up; ``seen`` gets (time, event)."""
    client, contracts = await login(api_url)
    async with client, client.stream() as stream:
        await stream.subscribe_all(
            sub
            for c in contracts
            for sub in Subscription.market(c, quotes=True, trades=True, depth=True)
        )
        with anyio.move_on_after(WARMUP):
            async for _ in stream:
                pass
        read = 0
        first, cpu = decoded(stream), time.process_time()
        start = time.perf_counter()
        with anyio.move_on_after(window):
            if seen is None:
                async for _ in stream:
                    read += 1
            else:
                clock = time.time
                async for event in stream:
                    seen(clock(), event)
                    read += 1
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        return Window(decoded(stream) - first, elapsed, cpu, delivered=read)


# --- pysignalr -----------------------------------------------------------------------------


def pysignalr_available() -> bool:
    try:
        import pysignalr.client  # noqa: F401
    except ImportError:
        return False
    return True


async def pysignalr_window(
    api_url: str,
    window: float,
    *,
    typed: bool,
    seen: Callable[[float, str, Any], None] | None = None,
) -> Window:
    """Count what pysignalr receives for ``window`` seconds after a warm-up."""
    from pysignalr.client import SignalRClient

    client, contracts = await login(api_url)
    async with client:
        token = (await client.fresh_token()).reveal()
    signalr = SignalRClient(f"{api_url}/hubs/market?access_token={token}", max_size=None)
    hub = MarketHub(f"{api_url}/hubs/market")
    count = 0

    def handler(target: str) -> Callable[[Any], Any]:
        async def counted(arguments: Any) -> None:
            nonlocal count
            count += 1 if target != "GatewayTrade" else len(arguments[1])

        async def decoded(arguments: Any) -> None:
            nonlocal count
            count += len(hub.decode(target, tuple(arguments)))

        async def timed(arguments: Any) -> None:
            nonlocal count
            assert seen is not None
            seen(time.time(), target, arguments)
            count += 1 if target != "GatewayTrade" else len(arguments[1])

        if seen is not None:
            return timed
        return decoded if typed else counted

    for target in TARGETS:
        signalr.on(target, handler(target))

    async def subscribe() -> None:
        for contract in contracts:
            for method in SUBSCRIBE:
                arguments: list[Any] = [contract]
                await signalr.send(method, arguments)

    signalr.on_open(subscribe)
    async with anyio.create_task_group() as tg:
        tg.start_soon(signalr.run)
        await anyio.sleep(WARMUP)
        first, cpu = count, time.process_time()
        start = time.perf_counter()
        await anyio.sleep(window)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        events = count - first
        tg.cancel_scope.cancel()
    return Window(events, elapsed, cpu)


# --- throughput: simulator in a child process ----------------------------------------------


@contextmanager
def child_simulator(rate: float) -> Iterator[str]:
    """A simulator in its own process; yields its REST URL."""
    command = [sys.executable, "-m", "tradeforge_sim", "--port", "0"]
    # A contender that falls behind is measured, not cut off as a slow client.
    command += ["--rate", f"{rate:g}", "--seed", str(SEED), "--hub-outbox", str(BENCH_OUTBOX)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = ""
        for line in process.stdout:
            if "REST API" in line:
                url = line.split()[-1]
                break
        if not url:
            raise RuntimeError("the simulator did not start")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def throughput(rate: float, window: float, rounds: int) -> dict[str, list[Window]]:
    """Windows of every contender, the contenders taking turns round after round."""

    def ours(url: str) -> Window:
        return anyio.run(ours_window, url, window, backend="asyncio")

    def peer(typed: bool) -> Callable[[str], Window]:
        async def run(url: str) -> Window:
            return await pysignalr_window(url, window, typed=typed)

        return lambda url: anyio.run(run, url, backend="asyncio")

    runs: dict[str, Callable[[str], Window]] = {OURS: ours}
    if pysignalr_available():
        runs[RAW] = peer(typed=False)
        runs[TYPED] = peer(typed=True)
    results: dict[str, list[Window]] = {name: [] for name in runs}
    with child_simulator(rate) as url:
        for _ in range(rounds):
            for name, run in runs.items():
                results[name].append(run(url))
    return results


# --- latency: simulator in this process ----------------------------------------------------


class TimedSimulation(Simulation):
    """The simulation, noting when each market batch was made (slot time -> wall clock)."""

    def __init__(self, config: SimConfig, *, now: float) -> None:
        super().__init__(config, now=now)
        self.due: list[float] = []  # the ``now`` each batch was made for
        self.made: list[float] = []  # when that batch was ready to push

    def advance(self, now: float) -> None:
        super().advance(now)
        self.due.append(now)
        self.made.append(time.time())

    def made_at(self, slot_time: float) -> float | None:
        """When the batch holding a record of ``slot_time`` was made."""
        index = bisect.bisect_left(self.due, slot_time)
        return self.made[index] if index < len(self.made) else None


def event_time(event: StreamEvent) -> float | None:
    """The record timestamp behind a market event (the latest one, for merged depth)."""
    stamp = None
    if isinstance(event, QuoteUpdated):
        stamp = event.quote.timestamp
    elif isinstance(event, DepthReceived) and event.updates:
        stamp = event.updates[-1].timestamp
    elif isinstance(event, MarketTradeReceived):
        stamp = event.trade.timestamp
    return None if stamp is None else stamp.timestamp()


def record_time(target: str, arguments: Any) -> float | None:
    """The timestamp of a raw record as pysignalr hands it over."""
    data = arguments[1]
    item = data if target == "GatewayQuote" else (data[-1] if data else None)
    if not isinstance(item, dict) or not item.get("timestamp"):
        return None
    return parse_timestamp(item["timestamp"]).timestamp()


@dataclass
class Latency:
    name: str
    window: Window
    from_stamp: list[float]  # seconds
    from_batch: list[float]


async def latency(contender: str) -> Latency:
    """Latencies of every event one contender reads in a window, simulator in this process."""
    config = SimConfig(seed=SEED, rate=LATENCY_RATE)
    server = SimServer(config, hub_outbox=BENCH_OUTBOX)
    simulation = TimedSimulation(config, now=time.time())
    server.simulation = simulation
    samples: list[tuple[float, float]] = []  # (received, record timestamp)
    async with server:
        if contender == OURS:

            def seen(received: float, event: StreamEvent) -> None:
                stamp = event_time(event)
                if stamp is not None:
                    samples.append((received, stamp))

            window = await ours_window(server.api_url, LATENCY_WINDOW, seen)
        else:

            def seen_raw(received: float, target: str, arguments: Any) -> None:
                stamp = record_time(target, arguments)
                if stamp is not None:
                    samples.append((received, stamp))

            window = await pysignalr_window(
                server.api_url, LATENCY_WINDOW, typed=False, seen=seen_raw
            )
    from_stamp = [received - stamp for received, stamp in samples]
    from_batch = []
    for received, stamp in samples:
        made = simulation.made_at(stamp)
        if made is not None:
            from_batch.append(received - made)
    return Latency(contender, window, from_stamp, from_batch)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


# --- report --------------------------------------------------------------------------------


def median_ratio(mine: list[float], theirs: list[float]) -> float:
    return statistics.median(m / t for m, t in zip(mine, theirs, strict=True))


def report_throughput(results: dict[str, list[Window]], rate: float) -> None:
    print(f"\nthroughput: simulator in a child process at {rate:g} updates/s per contract")
    print(
        f"{'contender':<34} {'events/s received':>17} {'client CPU':>10} "
        f"{'events per CPU-s':>16}  read after coalescing"
    )
    for name, windows in results.items():
        received = statistics.median(w.rate for w in windows)
        busy = statistics.median(w.cpu / w.seconds for w in windows)
        capacity = statistics.median(w.per_cpu_second for w in windows)
        read = [w.delivered / w.seconds for w in windows if w.delivered is not None]
        after = f"{statistics.median(read):>12,.0f}/s" if read else ""
        print(f"{name:<34} {received:>17,.0f} {busy:>10.0%} {capacity:>16,.0f}  {after}")
    mine = results[OURS]
    for peer in (RAW, TYPED):
        if peer not in results:
            continue
        theirs = results[peer]
        by_rate = median_ratio([w.rate for w in mine], [w.rate for w in theirs])
        by_cpu = median_ratio([w.per_cpu_second for w in mine], [w.per_cpu_second for w in theirs])
        target = " (target >= 2)" if peer == RAW else ""
        print(
            f"ratio ours / {peer}: received {by_rate:.2f}{target}, "
            f"events per CPU-second {by_cpu:.2f}"
        )
    if RAW not in results:
        print("pysignalr is not installed: pip install pysignalr to compare")


def report_latency(found: list[Latency]) -> None:
    print(f"\nlatency: simulator in this process at {LATENCY_RATE:g} updates/s per contract")
    print(
        f"{'contender':<34} {'events/s':>9} {'samples':>8}   "
        f"{'from record timestamp':>21}   {'from batch made':>17}"
    )
    for item in found:
        stamp = (
            f"{percentile(item.from_stamp, 0.5) * 1e3:6.2f} / "
            f"{percentile(item.from_stamp, 0.99) * 1e3:6.2f}"
        )
        batch = (
            f"{percentile(item.from_batch, 0.5) * 1e3:6.2f} / "
            f"{percentile(item.from_batch, 0.99) * 1e3:6.2f}"
        )
        print(
            f"{item.name:<34} {item.window.rate:>9,.0f} {len(item.from_stamp):>8}   "
            f"{stamp:>21}   {batch:>17}"
        )
    print("(p50 / p99 in ms; target for ours: p50 < 1 ms)")


def main() -> None:
    rate = float(sys.argv[1]) if len(sys.argv) > 1 else 2000.0
    window = float(sys.argv[2]) if len(sys.argv) > 2 else 2.5
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    started = time.perf_counter()
    print(
        f"quotes + trades + depth of every active contract, seed {SEED}; "
        f"{rounds} rounds of {window:g} s windows after {WARMUP:g} s warm-ups"
    )
    report_throughput(throughput(rate, window, rounds), rate)
    contenders = [OURS, RAW] if pysignalr_available() else [OURS]
    report_latency([anyio.run(latency, name, backend="asyncio") for name in contenders])
    print(f"\n(ran in {time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
