"""Market-hub replay over loopback WebSocket: records/s and latency, the hub never the limit.

A minimal market hub runs in a child process (aiohttp): it answers the login, pysignalr's
negotiate and the SignalR handshake and subscriptions, then replays records generated before it
started listening (seeded: 35 % partial quotes, 55 % depth lists of 1 to 12 entries, 10 % trade
lists of 1 to 3 prints, over six contracts), ending with one trade on a contract of its own, the
end marker. In the fast modes every WebSocket frame is encoded before serving and written to the
socket in large slices as fast as the client takes them, so the client is the bottleneck; the
bare reader's figure shows the headroom. The mode is the login's username, which the hub gets
back as the token:

- ``single``: one record per WebSocket message; ``batched``: about 20 records per message;
- ``paced1000`` / ``paced10000``: one record per message at 1,000 / 10,000 records/s for a fixed
  time, each record stamped with the moment it is sent (ISO-8601 UTC, microseconds).

Six contenders subscribe to quotes, trades and depth of every contract and the end marker's,
and take turns, round after round, on that one hub:

- bare: an aiohttp WebSocket client splitting each message on 0x1E and counting the non-empty
  parts, without parsing JSON: the transport's ceiling;
- pysignalr: ``SignalRClient`` with a handler per target counting records (untyped lists and
  dicts; its frame limit lifted);
- pysignalr+typed: the same, each record then decoded by the project's ``MarketHub`` into typed
  events;
- ours-asyncio / ours-trio: ``TradingClient.stream()`` of the anyio runtime, on asyncio and on
  trio; ours-sync: the blocking runtime's stream. Each counts in an ``on()`` callback, which sees
  every decoded event, while the reader drains the queue (``async for`` / ``for``) as a bot would.

Records are counted the same way for everyone: a trade record of n prints becomes n events for
ours, counted once (consecutive prints of one contract and timestamp). The time is from the
first record received to the end marker read; the CPU seconds are this process's over that time
(the hub has its own). Latency, in the paced modes, is the receive time minus the record's stamp
(one machine, one clock: ``time.time()``), where the contender hands the record over (ours: the
reader, after the queue), leaving out the first part of each window as warm-up. Medians over the
rounds; every ratio is the median of the rounds' own ratios. Last, the memory held by 10,000
decoded typed events beside 10,000 of pysignalr's untyped messages.

Usage: bench_replay.py [--records N (50000)] [--rounds R (3)] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import statistics
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import anyio
import orjson
from aiohttp import web

from tradeforge_anyio.client import TradingClient
from tradeforge_proto.core.events import (
    DepthReceived,
    MarketTradeReceived,
    QuoteUpdated,
    StreamEvent,
)
from tradeforge_proto.core.models import ContractId
from tradeforge_proto.providers.topstepx.hubs import MarketHub
from tradeforge_proto.signalr import (
    RS,
    HubConnection,
    HubRole,
    InvocationReceived,
    negotiate_response_body,
)

SEED = 7
CONTRACTS = tuple(f"CON.F.US.{root}.Z26" for root in ("MES", "MNQ", "EP", "ENQ", "CLE", "GCE"))
END_CONTRACT = "CON.F.US.END.Z26"
WATCHED = (*CONTRACTS, END_CONTRACT)
SUBSCRIBE = ("SubscribeContractQuotes", "SubscribeContractTrades", "SubscribeContractMarketDepth")
SUBSCRIPTIONS = len(SUBSCRIBE) * len(WATCHED)  # the hub replays once it saw them all
SETTLE = 1.0  # or this many seconds after the first subscription, whichever comes first
BATCH = 20  # records per message in the batched mode
SLICE = 1 << 16  # bytes of whole frames per socket write in the fast modes
STAMP = "@STAMP@"  # where a record's timestamps go
BASE_TIME = datetime(2026, 12, 2, 15, 0, tzinfo=UTC).timestamp()
HANDSHAKE = '{"protocol":"json","version":1}' + RS
API_KEY = "replay-key"
IDLE = 15.0  # seconds without a record before the blocking contender is given up
LIMIT = 120.0  # seconds one run of an async contender may take in all

FAST_MODES = ("single", "batched")
PACED = {"paced1000": 1000.0, "paced10000": 10000.0}

BARE = "bare"
PEER = "pysignalr"
TYPED = "pysignalr+typed"
OURS_ASYNCIO = "ours-asyncio"
OURS_TRIO = "ours-trio"
OURS_SYNC = "ours-sync"


def iso(moment: float) -> str:
    """A UNIX time as the gateway writes it: ISO-8601 UTC with microseconds."""
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="microseconds")


# --- the records -----------------------------------------------------------------------------


def make_records(count: int, seed: int = SEED) -> list[str]:
    """``count`` market records as SignalR JSON (0x1E included), ``STAMP`` for timestamps."""
    rng = random.Random(seed)
    mids = {c: 5000.0 + 250 * i for i, c in enumerate(CONTRACTS)}
    records: list[str] = []
    for _ in range(count):
        contract = rng.choice(CONTRACTS)
        mids[contract] += rng.choice((-0.25, 0.0, 0.25))
        mid = mids[contract]
        kind = rng.random()
        target, data = (
            ("GatewayQuote", quote_data(rng, contract, mid))
            if kind < 0.35
            else ("GatewayDepth", depth_data(rng, mid))
            if kind < 0.90
            else ("GatewayTrade", trade_data(rng, contract, mid, rng.randint(1, 3)))
        )
        records.append(record_text(target, contract, data))
    return records


def quote_data(rng: random.Random, contract: str, mid: float) -> dict[str, Any]:
    data: dict[str, Any] = {
        "symbol": "F.US." + contract.split(".")[3],
        "bestBid": mid - 0.25,
        "bestAsk": mid + 0.25,
        "lastUpdated": STAMP,
        "timestamp": STAMP,
    }
    if rng.random() < 0.3:
        data["lastPrice"] = mid
        data["volume"] = rng.randint(100_000, 900_000)
    return data


def depth_data(rng: random.Random, mid: float) -> list[dict[str, Any]]:
    return [
        {
            "timestamp": STAMP,
            "type": rng.choice((1, 2, 3, 4, 5, 6)),
            "price": mid + 0.25 * rng.randint(-12, 12),
            "volume": rng.randint(0, 80),
            "currentVolume": rng.randint(0, 6),
        }
        for _ in range(rng.randint(1, 12))
    ]


def trade_data(rng: random.Random, contract: str, mid: float, prints: int) -> list[dict[str, Any]]:
    return [
        {
            "symbolId": "F.US." + contract.split(".")[3],
            "price": mid + 0.25 * rng.randint(-1, 1),
            "timestamp": STAMP,
            "type": rng.randint(0, 1),
            "volume": rng.randint(1, 9),
        }
        for _ in range(prints)
    ]


def record_text(target: str, contract: str, data: Any) -> str:
    record = {"type": 1, "target": target, "arguments": [contract, data]}
    return orjson.dumps(record).decode() + RS


def end_record() -> str:
    """The end marker: one trade print on a contract nothing else uses."""
    return record_text(
        "GatewayTrade", END_CONTRACT, trade_data(random.Random(0), "X.X.X.END", 1, 1)
    )


def stamped(records: list[str]) -> list[str]:
    """The records with fixed timestamps, 0.5 ms apart (every record its own)."""
    return [r.replace(STAMP, iso(BASE_TIME + i * 0.0005)) for i, r in enumerate(records)]


# --- the replay hub (child process) ----------------------------------------------------------


def frame(text: str) -> bytes:
    """One unmasked WebSocket text frame, as a server sends it."""
    payload = text.encode()
    size = len(payload)
    if size < 126:
        header = bytes((0x81, size))
    elif size < 1 << 16:
        header = bytes((0x81, 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((0x81, 127)) + size.to_bytes(8, "big")
    return header + payload


def slices(frames: list[bytes]) -> list[bytes]:
    """Whole frames joined into writes of about ``SLICE`` bytes (a pong may go between two)."""
    out: list[bytes] = []
    current: list[bytes] = []
    size = 0
    for item in frames:
        current.append(item)
        size += len(item)
        if size >= SLICE:
            out.append(b"".join(current))
            current, size = [], 0
    if current:
        out.append(b"".join(current))
    return out


class ReplayHub:
    """The market hub's side of the replay: login, negotiate, handshake, subscriptions, data."""

    def __init__(self, count: int, paced_seconds: float) -> None:
        templates = make_records(count)
        texts = stamped(templates)
        end = end_record().replace(STAMP, iso(BASE_TIME + count * 0.0005))
        batches = ["".join(texts[i : i + BATCH]) for i in range(0, len(texts), BATCH)]
        self.fast = {
            "single": slices([frame(t) for t in [*texts, end]]),
            "batched": slices([frame(t) for t in [*batches, end]]),
        }
        self.paced_parts = [t.split(STAMP) for t in templates]
        self.paced_end = end_record().split(STAMP)
        self.paced_seconds = paced_seconds

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/Auth/loginKey", self.login)
        app.router.add_post("/api/Auth/validate", self.validate)
        app.router.add_post("/hubs/market/negotiate", self.negotiate)
        app.router.add_get("/hubs/market", self.market)
        return app

    async def login(self, request: web.Request) -> web.Response:
        """The token is the username: it names the mode the hub replays."""
        body = await request.json()
        return web.json_response(
            {"success": True, "errorCode": 0, "errorMessage": None, "token": body["userName"]}
        )

    async def validate(self, request: web.Request) -> web.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        return web.json_response(
            {"success": True, "errorCode": 0, "errorMessage": None, "newToken": token}
        )

    async def negotiate(self, request: web.Request) -> web.Response:
        body = negotiate_response_body("replay-connection", "replay-connection-token")
        return web.Response(body=body, content_type="application/json")

    async def market(self, request: web.Request) -> web.WebSocketResponse:
        mode = request.query.get("access_token", "")
        ws = web.WebSocketResponse(compress=False, max_msg_size=0)
        await ws.prepare(request)
        if mode not in self.fast and mode not in PACED:
            await ws.close(message=b"unknown mode")
            return ws
        subscribed = asyncio.Event()
        replay = asyncio.create_task(self.replay(request, ws, mode, subscribed))
        seen = 0
        try:
            async for message in ws:
                if message.type is not aiohttp.WSMsgType.TEXT or subscribed.is_set():
                    continue  # once the replay runs, only it writes
                seen = await self.answer(ws, message.data, seen, subscribed)
        finally:
            replay.cancel()
        return ws

    async def answer(
        self, ws: web.WebSocketResponse, text: str, seen: int, subscribed: asyncio.Event
    ) -> int:
        """Answer the handshake and invocations; returns how many subscriptions came so far."""
        for part in text.split(RS):
            if not part:
                continue
            message = orjson.loads(part)
            kind = message.get("type")
            if kind is None and "protocol" in message:
                await ws.send_str("{}" + RS)
            elif kind == 1:
                invocation = message.get("invocationId")
                if invocation is not None:
                    completion = {"type": 3, "invocationId": invocation, "result": None}
                    await ws.send_str(orjson.dumps(completion).decode() + RS)
                if str(message.get("target", "")).startswith("Subscribe"):
                    seen += 1
                    if seen == 1:
                        asyncio.get_running_loop().call_later(SETTLE, subscribed.set)
                    if seen >= SUBSCRIPTIONS:
                        subscribed.set()
        return seen

    async def replay(
        self, request: web.Request, ws: web.WebSocketResponse, mode: str, go: asyncio.Event
    ) -> None:
        await go.wait()
        await asyncio.sleep(0.05)  # the last completion goes out first
        if mode in self.fast:
            await self.blast(request, self.fast[mode])
        else:
            await self.paced(ws, PACED[mode])

    async def blast(self, request: web.Request, chunks: list[bytes]) -> None:
        """Write the frames as fast as the client reads them."""
        transport, writer = request.transport, request.writer
        for chunk in chunks:
            if transport is None or transport.is_closing():
                return
            transport.write(chunk)
            await writer.drain()

    async def paced(self, ws: web.WebSocketResponse, rate: float) -> None:
        """One record per message at ``rate`` per second, each stamped as it is sent."""
        parts, now = self.paced_parts, time.time
        start = time.perf_counter()
        sent = 0
        while time.perf_counter() - start < self.paced_seconds:
            due = int((time.perf_counter() - start) * rate) + 1
            while sent < due:
                await ws.send_str(iso(now()).join(parts[sent % len(parts)]))
                sent += 1
            await asyncio.sleep(max(0.0, sent / rate - (time.perf_counter() - start)))
        await ws.send_str(iso(now()).join(self.paced_end))


async def serve(port: int, count: int, paced_seconds: float) -> None:
    """Serve the replay hub until killed; prints ``PORT <n>`` once listening."""
    hub = ReplayHub(count, paced_seconds)
    runner = web.AppRunner(hub.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    print(f"PORT {runner.addresses[0][1]}", flush=True)
    await asyncio.Event().wait()


# --- what a contender measured ---------------------------------------------------------------


@dataclass
class Run:
    """One contender, one mode, one round."""

    records: int
    seconds: float
    cpu: float
    latencies: list[float]  # seconds, after the warm-up

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_per_100k(self) -> float:
        return self.cpu / self.records * 100_000 if self.records else 0.0

    def latency(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@dataclass
class Tally:
    """Counts records from the first one on; keeps latencies once the warm-up is over."""

    warmup: float
    records: int = 0
    first: float = 0.0
    first_wall: float = 0.0
    cpu: float = 0.0
    latencies: list[float] = field(default_factory=list)

    def count(self) -> None:
        if not self.records:
            self.first, self.cpu = time.perf_counter(), time.process_time()
            self.first_wall = time.time()
        self.records += 1

    def sample(self, received: float, stamp: float | None) -> None:
        if stamp is not None and self.records and received - self.first_wall >= self.warmup:
            self.latencies.append(received - stamp)

    def finish(self) -> Run:
        seconds = time.perf_counter() - self.first
        return Run(self.records, seconds, time.process_time() - self.cpu, self.latencies)


def parse_stamp(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def record_stamp(arguments: Any) -> float | None:
    """The timestamp of a record as pysignalr hands it over."""
    data = arguments[1]
    item = data if isinstance(data, dict) else (data[-1] if data else None)
    return parse_stamp(item["timestamp"]) if isinstance(item, dict) else None


def event_stamp(event: StreamEvent) -> float | None:
    """The record timestamp behind a typed event (the latest one, for merged depth)."""
    stamp = None
    if isinstance(event, QuoteUpdated):
        stamp = event.quote.timestamp
    elif isinstance(event, DepthReceived) and event.updates:
        stamp = event.updates[-1].timestamp
    elif isinstance(event, MarketTradeReceived):
        stamp = event.trade.timestamp
    return None if stamp is None else stamp.timestamp()


def is_end(event: StreamEvent) -> bool:
    return type(event) is MarketTradeReceived and event.trade.contract_id == END_CONTRACT


# --- bare -----------------------------------------------------------------------------------


def subscribe_messages() -> str:
    """Every subscription as SignalR invocations, in one message."""
    calls = [
        {"type": 1, "invocationId": str(n), "target": method, "arguments": [contract]}
        for n, (contract, method) in enumerate((c, m) for c in WATCHED for m in SUBSCRIBE)
    ]
    return "".join(orjson.dumps(call).decode() + RS for call in calls)


async def bare(api_url: str, mode: str, warmup: float) -> Run:
    """aiohttp WebSocket: split on 0x1E and count the non-empty parts; no JSON."""
    tally = Tally(warmup)
    paced = mode in PACED
    url = f"{api_url}/hubs/market?access_token={mode}"
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(url, max_msg_size=0, compress=0) as ws,
    ):
        await ws.send_str(HANDSHAKE)
        await ws.send_str(subscribe_messages())
        started = False
        async for message in ws:
            if message.type is not aiohttp.WSMsgType.TEXT:
                break
            text: str = message.data
            if not started:
                if '"type":1,' not in text:
                    continue  # the handshake answer and completions
                started = True
            for part in text.split(RS):
                if part:
                    tally.count()
                    if paced:
                        at = part.rfind('"timestamp":"') + 13
                        tally.sample(time.time(), parse_stamp(part[at : at + 32]))
            if END_CONTRACT in text:
                return tally.finish()
    raise RuntimeError("bare reader: the connection ended before the end marker")


# --- pysignalr ------------------------------------------------------------------------------


async def pysignalr_run(api_url: str, mode: str, warmup: float, *, typed: bool) -> Run:
    """pysignalr's ``SignalRClient`` counting records, optionally decoding them into events."""
    from pysignalr.client import SignalRClient

    tally = Tally(warmup)
    paced = mode in PACED
    client = SignalRClient(f"{api_url}/hubs/market?access_token={mode}", max_size=None)
    hub = MarketHub(f"{api_url}/hubs/market")
    done = anyio.Event()
    result: list[Run] = []

    def handler(target: str) -> Callable[[list[Any]], Awaitable[None]]:
        async def seen(arguments: list[Any]) -> None:
            tally.count()
            if typed:
                hub.decode(target, tuple(arguments))
            if paced:
                tally.sample(time.time(), record_stamp(arguments))
            if arguments[0] == END_CONTRACT:
                result.append(tally.finish())
                done.set()

        return seen

    for target in ("GatewayQuote", "GatewayDepth", "GatewayTrade"):
        client.on(target, handler(target))

    async def subscribe() -> None:
        for contract in WATCHED:
            for method in SUBSCRIBE:
                arguments: list[Any] = [contract]
                await client.send(method, arguments)

    client.on_open(subscribe)
    async with anyio.create_task_group() as tg:
        tg.start_soon(client.run)
        with anyio.fail_after(LIMIT):
            await done.wait()
        tg.cancel_scope.cancel()
    return result[0]


# --- ours -----------------------------------------------------------------------------------


class RecordCounter:
    """An ``on()`` callback counting records: the prints of one trade record count once.

    Callbacks of a slice of records may run after the reader took those events from the queue,
    so the end marker counts as read once both saw it: ``ended`` is called from the callback.
    """

    def __init__(self, tally: Tally, ended: Callable[[], object]) -> None:
        self.tally = tally
        self.ended = ended
        self.last_trade: tuple[ContractId, datetime | None] | None = None

    def __call__(self, event: StreamEvent) -> None:
        kind = type(event)
        if kind is MarketTradeReceived:
            assert isinstance(event, MarketTradeReceived)
            key = (event.trade.contract_id, event.trade.timestamp)
            if key == self.last_trade:
                return
            self.last_trade = key
            if event.trade.contract_id == END_CONTRACT:
                self.tally.count()
                self.ended()
                return
        elif kind is QuoteUpdated or kind is DepthReceived:
            self.last_trade = None
        else:
            return  # lifecycle events
        self.tally.count()


async def ours_async(api_url: str, mode: str, warmup: float) -> Run:
    """The anyio runtime's stream, on whichever backend runs it."""
    tally = Tally(warmup)
    paced = mode in PACED
    client = TradingClient.for_simulator(api_url, mode, API_KEY)
    ended = anyio.Event()
    with anyio.fail_after(LIMIT):
        async with client, client.stream() as stream:
            stream.on(RecordCounter(tally, ended.set))
            for contract in WATCHED:
                await stream.subscribe_market(
                    ContractId(contract), quotes=True, trades=True, depth=True
                )
            async for event in stream:
                if paced:
                    tally.sample(time.time(), event_stamp(event))
                if is_end(event):
                    await ended.wait()
                    return tally.finish()
    raise RuntimeError("ours: the stream ended before the end marker")


def ours_sync(api_url: str, mode: str, warmup: float) -> Run:
    """The blocking runtime's stream, read with ``for``."""
    from tradeforge_sync.client import TradingClient as BlockingClient

    tally = Tally(warmup)
    paced = mode in PACED
    ended = threading.Event()
    with BlockingClient.for_simulator(api_url, mode, API_KEY) as client, client.stream() as stream:
        stream.on(RecordCounter(tally, ended.set))
        for contract in WATCHED:
            stream.subscribe_market(ContractId(contract), quotes=True, trades=True, depth=True)
        for event in stream.events(idle_timeout=IDLE):
            if paced:
                tally.sample(time.time(), event_stamp(event))
            if is_end(event):
                if not ended.wait(IDLE):
                    raise RuntimeError("ours-sync: the callback never saw the end marker")
                return tally.finish()
    raise RuntimeError("ours-sync: the stream went idle before the end marker")


Contender = Callable[[str, str, float], Run]


def contenders() -> dict[str, Contender]:
    """Every contender, by name, each a blocking call (its own event loop)."""

    def on_asyncio(run: Callable[..., Awaitable[Run]], **options: Any) -> Contender:
        async def call(url: str, mode: str, warmup: float) -> Run:
            return await run(url, mode, warmup, **options)

        return lambda url, mode, warmup: anyio.run(call, url, mode, warmup, backend="asyncio")

    def on_trio(url: str, mode: str, warmup: float) -> Run:
        return anyio.run(ours_async, url, mode, warmup, backend="trio")

    return {
        BARE: on_asyncio(bare),
        PEER: on_asyncio(pysignalr_run, typed=False),
        TYPED: on_asyncio(pysignalr_run, typed=True),
        OURS_ASYNCIO: on_asyncio(ours_async),
        OURS_TRIO: on_trio,
        OURS_SYNC: ours_sync,
    }


# --- memory ---------------------------------------------------------------------------------


def memory_per_10k(records: list[str]) -> tuple[float, float]:
    """KiB held by 10,000 typed events (ours) and by 10,000 pysignalr messages."""
    from pysignalr.protocol.json import JSONProtocol

    connection = HubConnection(HubRole.CLIENT)
    connection.data_to_send()
    connection.receive("{}" + RS)
    hub = MarketHub("http://127.0.0.1/hubs/market")

    def ours() -> list[Any]:
        events: list[Any] = []
        for text in records:
            for item in connection.receive(text):
                if isinstance(item, InvocationReceived):
                    events.extend(hub.decode(item.target, item.arguments))
            if len(events) >= 10_000:
                break
        return events[:10_000]

    protocol = JSONProtocol()

    def theirs() -> list[Any]:
        messages: list[Any] = []
        for text in records[:10_000]:
            messages.extend(protocol.decode(text))
        return messages

    return traced(ours), traced(theirs)


def traced(build: Callable[[], list[Any]]) -> float:
    gc.collect()
    tracemalloc.start()
    items = build()
    gc.collect()
    size = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(items) == 10_000, len(items)
    return size / 1024


# --- running and reporting ------------------------------------------------------------------


class ChildHub:
    """The replay hub in a child process, killed on exit."""

    def __init__(self, count: int, paced_seconds: float) -> None:
        command = [sys.executable, __file__, "--serve", "0", "--records", str(count)]
        command += ["--paced-seconds", f"{paced_seconds:g}"]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)

    def __enter__(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("PORT "):
            self.process.kill()
            raise RuntimeError("the replay hub did not start")
        return f"http://127.0.0.1:{int(line.split()[1])}"

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def median_ratio(mine: list[float], theirs: list[float]) -> float:
    return statistics.median(m / t for m, t in zip(mine, theirs, strict=True) if t > 0)


def run_mode(url: str, mode: str, rounds: int, warmup: float) -> dict[str, list[Run]]:
    """Every contender on one mode, taking turns round after round."""
    runs = contenders()
    results: dict[str, list[Run]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            gc.collect()
            results[name].append(run(url, mode, warmup))
    return results


def report_fast(mode: str, results: dict[str, list[Run]], expected: int) -> None:
    rounds = len(results[PEER])
    shape = "one record per message" if mode == "single" else f"about {BATCH} records per message"
    print(f"\n{mode}: {expected:,} records, {shape}; medians of {rounds} rounds")
    print(
        f"{'contender':<16} {'records/s':>11} {'vs pysignalr':>13} {'vs bare':>8} "
        f"{'CPU s/100k':>11} {'records seen':>13}"
    )
    peer = [r.rate for r in results[PEER]]
    floor = [r.rate for r in results[BARE]]
    for name, runs in results.items():
        rates = [r.rate for r in runs]
        seen = {r.records for r in runs}
        shown = f"{min(seen):,}" if len(seen) == 1 else f"{min(seen):,}..{max(seen):,}"
        flag = "" if seen == {expected} else "  (!)"
        print(
            f"{name:<16} {statistics.median(rates):>11,.0f} {median_ratio(rates, peer):>13.2f} "
            f"{median_ratio(rates, floor):>8.2f} "
            f"{statistics.median(r.cpu_per_100k for r in runs):>11.3f} {shown:>13}{flag}"
        )
    others = [max(results[n][i].rate for n in results if n != BARE) for i in range(rounds)]
    print(f"bare / fastest other: {median_ratio(floor, others):.2f} (the hub's headroom)")


def report_paced(mode: str, results: dict[str, list[Run]], seconds: float, warmup: float) -> None:
    rounds = len(results[PEER])
    print(
        f"\n{mode}: one record per message at {PACED[mode]:,.0f}/s for {seconds:g} s "
        f"(latency after {warmup:.2g} s); medians of {rounds} rounds"
    )
    print(
        f"{'contender':<16} {'records/s':>10} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'p50 vs pysignalr':>17} {'p99 vs pysignalr':>17} {'CPU s/100k':>11}"
    )
    p50 = {n: [r.latency(0.5) for r in runs] for n, runs in results.items()}
    p99 = {n: [r.latency(0.99) for r in runs] for n, runs in results.items()}
    for name, runs in results.items():
        mid50, mid99 = statistics.median(p50[name]) * 1e3, statistics.median(p99[name]) * 1e3
        vs50, vs99 = median_ratio(p50[name], p50[PEER]), median_ratio(p99[name], p99[PEER])
        print(
            f"{name:<16} {statistics.median(r.rate for r in runs):>10,.0f} "
            f"{mid50:>8.3f} {mid99:>8.3f} {vs50:>17.2f} {vs99:>17.2f} "
            f"{statistics.median(r.cpu_per_100k for r in runs):>11.3f}"
        )


def targets(found: dict[str, dict[str, list[Run]]]) -> None:
    """Each target with "met" or "not met"."""
    print("\ntargets")

    def verdict(ok: bool) -> str:
        return "met" if ok else "not met"

    for mode in FAST_MODES:
        results = found[mode]
        peer = [r.rate for r in results[PEER]]
        typed = median_ratio([r.rate for r in results[OURS_ASYNCIO]], peer)
        print(
            f"  {mode}: typed asyncio / pysignalr records/s = {typed:.2f} "
            f"(>= 2, aim 3): {verdict(typed >= 2)}"
        )
        for name in (OURS_TRIO, OURS_SYNC):
            ratio = median_ratio([r.rate for r in results[name]], peer)
            met = verdict(ratio >= 1)
            print(f"  {mode}: {name} / pysignalr records/s = {ratio:.2f} (>= 1): {met}")
    for mode in PACED:
        results = found[mode]
        for name in (OURS_ASYNCIO, OURS_TRIO, OURS_SYNC):
            ratios = [
                median_ratio(
                    [r.latency(fraction) for r in results[name]],
                    [r.latency(fraction) for r in results[PEER]],
                )
                for fraction in (0.5, 0.99)
            ]
            ok = all(ratio <= 1 for ratio in ratios)
            print(
                f"  {mode}: {name} latency p50/p99 vs pysignalr = "
                f"{ratios[0]:.2f} / {ratios[1]:.2f} (<= 1): {verdict(ok)}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=None, help="records per fast replay")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (3)")
    parser.add_argument("--quick", action="store_true", help="5,000 records, 1 round, 1 s paced")
    parser.add_argument("--paced-seconds", type=float, default=None, help="paced replay time")
    parser.add_argument("--serve", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    count = args.records or (5_000 if args.quick else 50_000)
    rounds = args.rounds or (1 if args.quick else 3)
    seconds = args.paced_seconds or (1.0 if args.quick else 3.0)
    if args.serve is not None:
        asyncio.run(serve(args.serve, count, seconds))
        return
    warmup = seconds / 3
    started = time.perf_counter()
    ours_kib, theirs_kib = memory_per_10k(stamped(make_records(20_000)))
    print(
        f"replay hub in a child process; {count:,} records + the end marker per fast replay, "
        f"seed {SEED}; {rounds} round(s)"
    )
    found: dict[str, dict[str, list[Run]]] = {}
    with ChildHub(count, seconds) as url:
        for mode in FAST_MODES:
            found[mode] = run_mode(url, mode, rounds, 0.0)
            report_fast(mode, found[mode], count + 1)
        for mode in PACED:
            found[mode] = run_mode(url, mode, rounds, warmup)
            report_paced(mode, found[mode], seconds, warmup)
    print(
        f"\nmemory per 10,000 queued items: ours (typed events) {ours_kib:,.0f} KiB, "
        f"pysignalr (untyped messages) {theirs_kib:,.0f} KiB"
    )
    targets(found)
    print(f"\n(ran in {time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
