"""One upstream market stream fanned out by the web service to many WebSocket clients.

A child process runs what ``tradeforge serve`` runs without credentials: the simulator and the
web service (uvicorn, one event loop) over it. This process opens N WebSocket clients on the
service's ``/ws/stream`` (N = 1, 10, 100 by default), each subscribing to quotes, depth and trades
of the active MES contract, so the service holds one upstream ``TradingStream`` and copies every
event to the N clients. After a warm-up, a window: market messages received per client (one per
QUOTE, DEPTH or TRADE message), clients the service closed with 1013 (too slow), the child's
memory (VmRSS before the clients connect and at the end of the window) and the CPU share of both
processes, so the bottleneck shows.

Compared with, in the same run and on the same simulator: one ``TradingStream`` in this process
connected straight to the simulator's market hub, the same contract and data types, the same
window. The direct stream's events are counted twice: as decoded (read, merged into one still
waiting, or waiting), as in ``bench_stream.py``, and as read. Its queue merges the quotes and
depth of a contract while they wait, and the simulator sends a tick's records in one frame, so
most quotes of a tick are merged before anyone reads them; each client queue in the service does
the same. Per-client events/s are therefore compared with the direct stream's reads (like for
like) and with its decoded count; trades are never merged, so trades/s per client show whether a
client keeps up.

Latency, receive time minus the moment the simulator made the batch holding the record: the
child notes, for every market tick, the slot time it advanced to and the wall clock then
(``time.time()``, one clock for both processes), and hands that timeline over at the end; a
record's ``timestamp`` (its slot time) finds its batch by bisection. This is the delivery path
alone (simulator writer, loopback, service upstream stream, fan-out, JSON, WebSocket, client).
Receive time minus the record timestamp is shown too: it adds up to one 20 ms tick of batching.
Merged quotes and depth carry their latest record's timestamp. Every client of a row is sampled.

The rate (update slots per second per contract) defaults to 1,000: about 1,000 market events/s
on the one contract. The simulator still makes updates for every active contract; only MES is
sent. The clients use the ``websockets`` defaults (permessage-deflate offered); the service
declines it, as ``tradeforge serve`` does.

Usage: bench_fanout.py [rate (1000)] [window seconds (4)] [client counts (1,10,100)]
"""

from __future__ import annotations

import asyncio
import bisect
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import anyio
import orjson
from bench_stream import TimedSimulation
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tradeforge_anyio.client import TradingClient
from tradeforge_proto.core.events import (
    DepthReceived,
    MarketTradeReceived,
    QuoteUpdated,
    StreamEvent,
)
from tradeforge_proto.providers.topstepx.symbols import active_contract
from tradeforge_sim.server import SimServer
from tradeforge_sim.simulation import SimConfig

SEED: Final = 7
SYMBOL: Final = "MES"
TOKEN: Final = "bench-fanout-token"
WARMUP: Final = 1.0  # seconds after every client is subscribed before a window opens
HOST_FLAG: Final = "--host"
MARKET: Final = frozenset({"QUOTE", "DEPTH", "TRADE"})
TOO_SLOW: Final = 1013
DIRECT: Final = "direct hub (1 TradingStream)"
TARGET_P99_MS: Final = 10.0  # at the largest client count


# --- the child: simulator + service ---------------------------------------------------------


async def host(rate: float) -> None:
    """Serve the simulator and the service over it until stdin closes.

    Prints one JSON line with both URLs once ready; answers a ``timeline`` line on stdin with
    the batch timeline as one JSON line.
    """
    from tradeforge_anyio.service import build_server, create_app

    config = SimConfig(seed=SEED, rate=rate)
    sim = SimServer(config)
    timed = TimedSimulation(config, now=time.time())
    sim.simulation = timed

    def factory() -> TradingClient:
        return TradingClient.for_simulator(sim.api_url, config.username, config.api_key)

    async with sim:
        app = create_app(factory, token=TOKEN)
        server = build_server(app, host="127.0.0.1", port=0)  # as ``tradeforge serve``
        async with anyio.create_task_group() as group:
            group.start_soon(server.serve)
            with anyio.fail_after(10):
                while not server.started:
                    await anyio.sleep(0.02)
            port = server.servers[0].sockets[0].getsockname()[1]
            ready = {"sim": sim.api_url, "service": f"http://127.0.0.1:{port}", "pid": os.getpid()}
            print(orjson.dumps(ready).decode(), flush=True)
            while (line := await anyio.to_thread.run_sync(sys.stdin.readline)).strip():
                if line.strip() == "timeline":
                    timeline = {"due": timed.due, "made": timed.made}
                    print(orjson.dumps(timeline).decode(), flush=True)
            server.should_exit = True


@dataclass
class Child:
    """The running child process and where it serves."""

    process: subprocess.Popen[str]
    sim_url: str
    service_url: str

    @property
    def pid(self) -> int:
        return self.process.pid

    def timeline(self) -> Timeline:
        """The batch timeline so far."""
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write("timeline\n")
        self.process.stdin.flush()
        answer = orjson.loads(self.process.stdout.readline())
        return Timeline(answer["due"], answer["made"])


@contextmanager
def child_host(rate: float) -> Iterator[Child]:
    """The simulator and the service in their own process; stopped whatever happens."""
    command = [sys.executable, os.path.abspath(__file__), HOST_FLAG, f"{rate:g}"]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError("the simulator and service did not start")
        ready = orjson.loads(line)
        yield Child(process, ready["sim"], ready["service"])
    finally:
        if process.stdin is not None:
            with suppress(OSError):
                process.stdin.close()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# --- measurements ---------------------------------------------------------------------------


@dataclass
class Timeline:
    """When the child made each market batch: slot time advanced to, wall clock then."""

    due: list[float]
    made: list[float]

    def made_at(self, slot_time: float) -> float | None:
        """When the batch holding a record of ``slot_time`` was made."""
        index = bisect.bisect_left(self.due, slot_time)
        return self.made[index] if index < len(self.made) else None


def rss_mib(pid: int) -> float:
    """Resident memory of a process, MiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Phase:
    """Whether the window is open (readers count and sample only then) or the clients closing."""

    measuring: bool = False
    closing: bool = False


@dataclass
class Tally:
    """What one reader got in the window."""

    events: int = 0  # market events received (QUOTE, DEPTH and TRADE messages)
    trades: int = 0
    samples: list[tuple[float, Any]] = field(default_factory=list)  # (received, timestamp)
    closed: int | None = None  # the close code, when the service closed the connection first


@dataclass
class Row:
    """One line of the report."""

    name: str
    tallies: list[Tally]
    seconds: float
    child_cpu: float  # CPU-seconds per second
    own_cpu: float
    rss_before: float
    rss_after: float
    decoded: int | None = None  # events the direct stream decoded (before its queue merged)
    from_batch: list[float] = field(default_factory=list)  # seconds
    from_stamp: list[float] = field(default_factory=list)
    client_p50: list[float] = field(default_factory=list)  # each client's own median

    @property
    def total_rate(self) -> float:
        return sum(t.events for t in self.tallies) / self.seconds

    @property
    def per_client(self) -> float:
        return statistics.median(t.events for t in self.tallies) / self.seconds

    @property
    def trades_per_client(self) -> float:
        return statistics.median(t.trades for t in self.tallies) / self.seconds

    @property
    def closed(self) -> int:
        return sum(t.closed == TOO_SLOW for t in self.tallies)

    @property
    def other_closes(self) -> list[int | None]:
        return [t.closed for t in self.tallies if t.closed not in (None, TOO_SLOW)]


@contextmanager
def window_clock(pid: int) -> Iterator[list[float]]:
    """Seconds elapsed, child and own CPU per second, filled in when the block ends."""
    result: list[float] = []
    child, own, start = cpu_seconds(pid), time.process_time(), time.perf_counter()
    yield result
    elapsed = time.perf_counter() - start
    result += [
        elapsed,
        (cpu_seconds(pid) - child) / elapsed,
        (time.process_time() - own) / elapsed,
    ]


def stamp_of(message: dict[str, Any]) -> str | None:
    """The record timestamp of a service market message (the latest entry's, for depth)."""
    data = message["data"]
    if message["event_type"] == "DEPTH":
        updates = data["updates"]
        return str(updates[-1]["timestamp"]) if updates else None
    stamp = data.get("timestamp")
    return None if stamp is None else str(stamp)


async def service_client(
    url: str, contract: str, tally: Tally, phase: Phase, ready: asyncio.Future[ClientConnection]
) -> None:
    """Connect, subscribe, then count market messages while the window is open."""
    subscribe = {
        "action": "subscribe",
        "market_data": {"provider_contract_ids": [contract], "data_types": sorted(MARKET)},
    }
    headers = {"Authorization": f"Bearer {TOKEN}"}
    try:
        async with connect(url, additional_headers=headers) as ws:
            await ws.send(orjson.dumps(subscribe).decode())
            while orjson.loads(await ws.recv())["event_type"] != "SUBSCRIBED_ACK":
                pass
            ready.set_result(ws)
            clock = time.time
            async for text in ws:
                received = clock()
                if not phase.measuring:
                    continue
                message = orjson.loads(text)
                kind = message["event_type"]
                if kind in MARKET:
                    tally.events += 1
                    tally.trades += kind == "TRADE"
                    stamp = stamp_of(message)
                    if stamp is not None:
                        tally.samples.append((received, stamp))
            if not phase.closing:
                tally.closed = ws.close_code
    except ConnectionClosed as exc:
        if not phase.closing:
            tally.closed = exc.rcvd.code if exc.rcvd is not None else exc.code
    except BaseException as exc:
        if not ready.done():
            ready.set_exception(exc)
        raise


async def service_row(child: Child, contract: str, count: int, window: float) -> Row:
    """N clients of the service's ``/ws/stream`` for one window."""
    url = child.service_url.replace("http://", "ws://") + "/ws/stream"
    rss_before = rss_mib(child.pid)
    phase = Phase()
    tallies = [Tally() for _ in range(count)]
    loop = asyncio.get_running_loop()
    ready: list[asyncio.Future[ClientConnection]] = [loop.create_future() for _ in tallies]
    tasks = [
        asyncio.create_task(service_client(url, contract, tally, phase, future))
        for tally, future in zip(tallies, ready, strict=True)
    ]
    try:
        connections = await asyncio.wait_for(asyncio.gather(*ready), timeout=30)
        await asyncio.sleep(WARMUP)
        with window_clock(child.pid) as clock:
            phase.measuring = True
            await asyncio.sleep(window)
            phase.measuring = False
        rss_after = rss_mib(child.pid)
        phase.closing = True
        await asyncio.wait_for(
            asyncio.gather(*(ws.close() for ws in connections), return_exceptions=True), 10
        )
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    seconds, child_cpu, own_cpu = clock
    name = f"service, {count} client{'s' if count > 1 else ''}"
    return Row(name, tallies, seconds, child_cpu, own_cpu, rss_before, rss_after)


def decoded(stream: Any) -> int:
    """Events a stream's queue took in so far: handed out, merged into another, or waiting."""
    queue = stream.queue
    return int(queue.delivered + queue.coalesced_quotes + queue.coalesced_depth + len(queue))


def event_time(event: StreamEvent) -> datetime | None:
    """The record timestamp behind a market event (the latest one, for merged depth)."""
    if isinstance(event, QuoteUpdated):
        return event.quote.timestamp
    if isinstance(event, DepthReceived) and event.updates:
        return event.updates[-1].timestamp
    if isinstance(event, MarketTradeReceived):
        return event.trade.timestamp
    return None


async def direct_row(child: Child, contract: str, window: float) -> Row:
    """One ``TradingStream`` on the simulator's market hub for one window."""
    rss_before = rss_mib(child.pid)
    tally = Tally()
    client = TradingClient.for_simulator(child.sim_url, "trader", "tradeforge-sim-key")
    async with client, client.stream() as stream:
        await stream.subscribe_market(contract, quotes=True, trades=True, depth=True)
        with anyio.move_on_after(WARMUP):
            async for _ in stream:
                pass
        first = decoded(stream)
        with window_clock(child.pid) as clock, anyio.move_on_after(window):
            now = time.time
            async for event in stream:
                received = now()
                if isinstance(event, QuoteUpdated | DepthReceived | MarketTradeReceived):
                    tally.events += 1
                    tally.trades += isinstance(event, MarketTradeReceived)
                    stamp = event_time(event)
                    if stamp is not None:
                        tally.samples.append((received, stamp))
        merged = decoded(stream) - first
        rss_after = rss_mib(child.pid)
    seconds, child_cpu, own_cpu = clock
    row = Row(DIRECT, [tally], seconds, child_cpu, own_cpu, rss_before, rss_after)
    row.decoded = merged
    return row


async def active_mes(sim_url: str) -> str:
    client = TradingClient.for_simulator(sim_url, "trader", "tradeforge-sim-key")
    async with client:
        contract = active_contract(await client.get_available_contracts(), SYMBOL)
    if contract is None:
        raise RuntimeError(f"the simulator lists no active {SYMBOL} contract")
    return contract.id


async def measure(child: Child, window: float, counts: list[int]) -> list[Row]:
    contract = await active_mes(child.sim_url)
    rows = [await direct_row(child, contract, window)]
    rows += [await service_row(child, contract, count, window) for count in counts]
    return rows


def latencies(rows: list[Row], timeline: Timeline) -> None:
    """Fill in each row's latencies from its samples and the child's batch timeline."""
    parsed: dict[str, float] = {}
    for row in rows:
        for tally in row.tallies:
            first = len(row.from_batch)
            for received, stamp in tally.samples:
                if isinstance(stamp, datetime):
                    slot = stamp.timestamp()
                elif (known := parsed.get(stamp)) is not None:
                    slot = known
                else:
                    slot = parsed[stamp] = datetime.fromisoformat(stamp).timestamp()
                row.from_stamp.append(received - slot)
                made = timeline.made_at(slot)
                if made is not None:
                    row.from_batch.append(received - made)
            if len(row.from_batch) > first:
                row.client_p50.append(statistics.median(row.from_batch[first:]))


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


# --- report ---------------------------------------------------------------------------------


def spread(values: list[float]) -> str:
    """p50 / p99 in ms."""
    return f"{percentile(values, 0.5) * 1e3:.2f} / {percentile(values, 0.99) * 1e3:.2f}"


def report(rows: list[Row], rate: float, window: float) -> None:
    print(
        f"\n{SYMBOL} quotes + depth + trades, simulator at {rate:g} updates/s per contract, "
        f"{window:g} s windows after {WARMUP:g} s warm-ups"
    )
    print(
        f"{'':<28} {'events/s':>8} {'per client':>10} {'trades':>6} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'clients p50':>12} {'from stamp':>13} {'closed':>6} {'RSS MiB':>9} {'CPU':>8}"
    )
    for row in rows:
        rss = f"{row.rss_before:.0f}->{row.rss_after:.0f}"
        cpu = f"{row.child_cpu:.0%}/{row.own_cpu:.0%}"
        clients = ""
        if len(row.client_p50) > 1:
            clients = f"{min(row.client_p50) * 1e3:.1f}-{max(row.client_p50) * 1e3:.1f}"
        print(
            f"{row.name:<28} {row.total_rate:>8,.0f} {row.per_client:>10,.0f} "
            f"{row.trades_per_client:>6,.0f} {percentile(row.from_batch, 0.5) * 1e3:>7.2f} "
            f"{percentile(row.from_batch, 0.99) * 1e3:>7.2f} {clients:>12} "
            f"{spread(row.from_stamp):>13} {row.closed:>6} {rss:>9} {cpu:>8}"
        )
        if row.other_closes:
            print(f"  also closed by the service, codes: {sorted(map(str, row.other_closes))}")
    print(
        "(events/s: market events received, trades: of them per client; p50 / p99: latency from"
        " the batch made,\n clients p50: the range of the clients' own medians; from stamp: p50 /"
        " p99 from the record timestamp;\n closed: clients closed with 1013; RSS: of the child"
        " (simulator + service), before the clients\n connect -> end of window; CPU: CPU-seconds"
        " per second, child / this process)"
    )
    direct = rows[0]
    decoded = (direct.decoded or 0) / direct.seconds
    print(
        f"direct hub decoded {decoded:,.0f} events/s; its queue merged the quotes and depth of "
        f"each batch into the\n{direct.total_rate:,.0f}/s read, as each service client's queue does"
    )
    print(
        f"\n{'service / direct':<28} {'per client':>10} {'of decoded':>10} "
        f"{'p50':>16} {'p99':>16} {'child CPU':>9}"
    )
    d50, d99 = percentile(direct.from_batch, 0.5), percentile(direct.from_batch, 0.99)
    for row in rows[1:]:
        p50, p99 = percentile(row.from_batch, 0.5), percentile(row.from_batch, 0.99)
        late50 = f"{p50 / d50:.1f}x +{(p50 - d50) * 1e3:.2f} ms"
        late99 = f"{p99 / d99:.1f}x +{(p99 - d99) * 1e3:.2f} ms"
        print(
            f"{row.name:<28} {row.per_client / direct.per_client:>10.2f} "
            f"{row.per_client / decoded:>10.2f} {late50:>16} {late99:>16} "
            f"{row.child_cpu - direct.child_cpu:>+9.0%}"
        )
    cpu_per_event(rows)
    worst = rows[-1]
    p99 = percentile(worst.from_batch, 0.99) * 1e3
    verdict = "met" if p99 < TARGET_P99_MS else "not met"
    print(
        f"\ntarget: p99 < {TARGET_P99_MS:g} ms at {len(worst.tallies)} clients: "
        f"{p99:.2f} ms, {verdict}"
    )


def cpu_per_event(rows: list[Row]) -> None:
    """CPU microseconds per event: the service's per event written to one client (the child's
    CPU above the direct row's is the service's own) beside the direct client's per event it
    decoded (this process)."""
    direct = rows[0]
    decoded = (direct.decoded or 0) / direct.seconds
    print(f"\n{'CPU per event, us':<28} {'':>8}")
    if decoded:
        print(f"{'direct client, decoded':<28} {direct.own_cpu / decoded * 1e6:>8.1f}")
    for row in rows[1:]:
        service = max(0.0, row.child_cpu - direct.child_cpu)
        print(f"{row.name:<28} {service / row.total_rate * 1e6:>8.1f}  (service, per client-event)")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == HOST_FLAG:
        anyio.run(host, float(sys.argv[2]), backend="asyncio")
        return
    rate = float(sys.argv[1]) if len(sys.argv) > 1 else 1000.0
    window = float(sys.argv[2]) if len(sys.argv) > 2 else 4.0
    counts = [int(n) for n in sys.argv[3].split(",")] if len(sys.argv) > 3 else [1, 10, 100]
    started = time.perf_counter()
    with child_host(rate) as child:
        rows = asyncio.run(measure(child, window, counts))
        timeline = child.timeline()
    latencies(rows, timeline)
    report(rows, rate, window)
    print(f"\n(ran in {time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
