"""What hostile or careless callers cost the web service, side by side with the undisturbed floor.

A child process runs ``tradeforge serve`` as an operator would (``python -m tradeforge_anyio.cli
serve``): the embedded simulator behind it, a known ``--token``, a free port on 127.0.0.1, no
settings file and no credentials in its environment (the run stops unless ``/health`` says
simulator). Then one scenario after another, each a few seconds long:

1. idle: nobody but the prober (the floor every ratio is taken against);
2. ``POST /orders`` with ``"limit_price": "1E+300000"`` and ``"1E+1000000000"`` (otherwise a valid
   LIMIT order on the first account and the active MES contract), two callers repeating them;
3. ``GET /bars`` of SECOND bars over a whole year without a limit, three callers at once, each
   giving up after 3 s and asking again;
4. 200 MB bodies streamed from a generator over raw sockets: without a token (declared length and
   chunked), ``text/plain`` with the token (chunked, and a small declared one), and JSON with the
   token (chunked: only the streamed count can stop it). Each is sent whole, as a careless client
   does, whatever the service answers meanwhile; the details tell whether the service then closed
   the connection or took the whole body, and how long that took;
5. 300 TCP connections that never send a request, held 3 s, while new callers (a fresh connection
   each) ask ``GET /health``;
6. ``NaN`` in an order body (a bare ``NaN`` literal and the text ``"NaN"``), then ``GET /health``
   on the same keep-alive connection: whether that second request is answered;
7. idle again, after everything: whether the service came back to its floor.

During every scenario a prober in its own process (so the bench's own work cannot delay it) asks
``GET /health`` with the token every 20 ms on one keep-alive connection, and this process samples
the child's resident memory (psutil when installed, else VmRSS of /proc/<pid>/status). A scenario's
hostile callers are paced (one request per 50 ms each, back to back when answers are slower), so a
row shows what each refused request costs the other callers, not the bench saturating the CPU.

Each row: /health p50 and p99 and their ratios to the idle floor, probes lost (not answered 200
within 2 s), RSS before -> peak -> after (0.5 s after the scenario ended), the answers the hostile
requests got ("timeout": the caller gave up, "closed": the connection ended without an answer)
and the median time to them. A fast refusal is the outcome hoped for. Details per request kind
follow the table. The run exits 0 whatever the numbers (a measurement), and 1 if the service
process died.

Usage: bench_abuse.py [--quick]   (--quick: every scenario shortened, a smoke run)
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import httpx
import orjson

ROOT: Final = Path(__file__).resolve().parent.parent
HOST: Final = "127.0.0.1"
TOKEN: Final = "bench-abuse-token"
AUTH: Final = {"Authorization": f"Bearer {TOKEN}"}
SYMBOL: Final = "MES"
PROBE_FLAG: Final = "--probe"
PROBE_INTERVAL: Final = 0.02  # seconds between /health probes
PROBE_TIMEOUT: Final = 2.0  # a probe not answered by then counts as lost
REQUEST_TIMEOUT: Final = 5.0  # a hostile request's own safety timeout
PACE: Final = 0.05  # seconds between one hostile caller's requests
BIG_BODY: Final = 200 * 1024 * 1024
SMALL_BODY: Final = 1024
CHUNK: Final = 64 * 1024
IDLE_CONNECTIONS: Final = 300
HUGE_PRICES: Final = ("1E+300000", "1E+1000000000")
SETTLE: Final = 0.5  # seconds after a scenario before RSS "after" and the next one
START_TIMEOUT: Final = 60.0  # seconds tradeforge serve may take to answer /health
RECOVERY_TIMEOUT: Final = 10.0  # how long the service may take to answer /health again
MiB: Final = 1024 * 1024


@dataclass(frozen=True)
class Timing:
    """How long each scenario lasts."""

    window: float  # seconds of each scenario's load (and of the idle rows)
    give_up: float  # seconds a /bars caller waits before giving up
    body_timeout: float  # seconds one 200 MB upload may take to be answered
    hold: float  # seconds the idle connections are held


FULL: Final = Timing(window=4.0, give_up=3.0, body_timeout=6.0, hold=3.0)
QUICK: Final = Timing(window=1.0, give_up=1.0, body_timeout=3.0, hold=1.0)


# --- the prober: its own process, so the bench's own work cannot delay it ----------------------


def probe_main(url: str) -> None:
    """Probe ``GET /health`` between a ``start`` and a ``stop`` line on stdin; after each stop,
    print one JSON line: ``{"latencies": [...seconds], "lost": n}``."""
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    with httpx.Client(base_url=url, headers=AUTH, timeout=PROBE_TIMEOUT, limits=limits) as client:
        with suppress(httpx.HTTPError):
            client.get("/health")  # connected and warm before the first window
        print("ready", flush=True)
        stop = threading.Event()
        worker: threading.Thread | None = None
        result: dict[str, Any] = {}
        for line in sys.stdin:
            command = line.strip()
            if command == "start" and worker is None:
                stop.clear()
                result = {"latencies": [], "lost": 0}
                worker = threading.Thread(target=_probe_loop, args=(client, stop, result))
                worker.start()
            elif command == "stop" and worker is not None:
                stop.set()
                worker.join()
                worker = None
                print(orjson.dumps(result).decode(), flush=True)
        stop.set()


def _probe_loop(client: httpx.Client, stop: threading.Event, result: dict[str, Any]) -> None:
    next_at = time.perf_counter()
    while not stop.is_set():
        started = time.perf_counter()
        try:
            ok = client.get("/health").status_code == 200
        except httpx.HTTPError:
            ok = False
        result["latencies"].append(time.perf_counter() - started)
        result["lost"] += not ok
        next_at += PROBE_INTERVAL
        now = time.perf_counter()
        next_at = max(next_at, now)  # when behind, at once: never a burst to catch up
        stop.wait(next_at - now)


class Prober:
    """The prober child, commanded over its pipes."""

    def __init__(self, url: str) -> None:
        command = [sys.executable, os.path.abspath(__file__), PROBE_FLAG, url]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    async def ready(self) -> None:
        """Until the prober is connected and waiting for ``start``."""
        assert self.process.stdout is not None
        line = await asyncio.to_thread(self.process.stdout.readline)
        if line.strip() != "ready":
            raise RuntimeError("the prober did not start")

    def start(self) -> None:
        self._send("start")

    async def stop(self) -> tuple[list[float], int]:
        """The probe latencies (seconds) since ``start`` and how many were lost."""
        self._send("stop")
        assert self.process.stdout is not None
        line = await asyncio.to_thread(self.process.stdout.readline)
        if not line:
            raise RuntimeError("the prober stopped")
        answer = orjson.loads(line)
        return answer["latencies"], answer["lost"]

    def _send(self, command: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def close(self) -> None:
        if self.process.stdin is not None:
            with suppress(OSError):
                self.process.stdin.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# --- the child: tradeforge serve -------------------------------------------------------------


@dataclass
class Service:
    """The running ``tradeforge serve`` and where it answers."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def exit_code(self) -> int | None:
        """The child's exit code once it ended, else None."""
        return self.process.poll()

    def log_tail(self, lines: int = 20) -> str:
        text = self.log.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def child_environment() -> dict[str, str]:
    """This environment without anything that could point the service at a real gateway:
    the TRADEFORGE_* settings and the default profile's TS_* keys."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TRADEFORGE_", "TS_"))
    }


@contextmanager
def serve(log_dir: Path) -> Iterator[Service]:
    """``tradeforge serve`` on the embedded simulator; stopped (SIGINT, then harder) at the end."""
    port = free_port()
    command = [
        sys.executable, "-m", "tradeforge_anyio.cli", "serve",
        "--host", HOST, "--port", str(port), "--token", TOKEN, "--env-file", os.devnull,
    ]  # fmt: skip
    log = log_dir / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=child_environment(),
            cwd=ROOT,
        )
    service = Service(process, port, log)
    try:
        wait_ready(service)
        yield service
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_ready(service: Service) -> None:
    """Until ``/ready`` answers; refuses to go on unless the service runs on the simulator."""
    deadline = time.monotonic() + START_TIMEOUT
    with httpx.Client(base_url=service.url, headers=AUTH, timeout=2) as client:
        while True:
            if service.exit_code() is not None:
                raise RuntimeError(f"tradeforge serve exited early:\n{service.log_tail()}")
            try:
                answer = client.get("/ready")
            except httpx.HTTPError:
                answer = None
            if answer is not None and answer.status_code == 200:
                if answer.json().get("simulator") is not True:
                    raise RuntimeError("the service is not on the simulator; not abusing it")
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"tradeforge serve did not start:\n{service.log_tail()}")
            time.sleep(0.1)


# --- memory ----------------------------------------------------------------------------------


def _psutil() -> Any:
    try:
        return importlib.import_module("psutil")
    except ImportError:
        return None


PSUTIL: Final = _psutil()


def rss_mib(pid: int) -> float:
    """Resident memory of a process, MiB (nan once it is gone)."""
    try:
        if PSUTIL is not None:
            return float(PSUTIL.Process(pid).memory_info().rss) / MiB
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except Exception:  # the process ended between two samples
        return float("nan")
    return float("nan")


async def sample_rss(pid: int, samples: list[float]) -> None:
    """Append the child's RSS every 25 ms until cancelled."""
    while True:
        samples.append(rss_mib(pid))
        await asyncio.sleep(0.025)


# --- what the hostile callers got --------------------------------------------------------------


@dataclass
class Tally:
    """The answers one kind of hostile request got."""

    codes: Counter[str] = field(default_factory=Counter)
    seconds: list[float] = field(default_factory=list)  # until the answer (or giving up)
    then: Counter[str] = field(default_factory=Counter)  # what followed the answer
    then_text: str = ""  # what ``then`` counts
    sent: list[int] = field(default_factory=list)  # uploads: bytes written in all
    whole: list[float] = field(default_factory=list)  # uploads: seconds until the body ended

    def record(self, code: str, seconds: float) -> None:
        self.codes[code] += 1
        self.seconds.append(seconds)


@dataclass
class Hostile:
    """Every kind of hostile request a scenario made, and remarks."""

    kinds: dict[str, Tally] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def __getitem__(self, kind: str) -> Tally:
        return self.kinds.setdefault(kind, Tally())

    @property
    def codes(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for tally in self.kinds.values():
            total.update(tally.codes)
        return total

    @property
    def seconds(self) -> list[float]:
        return [s for tally in self.kinds.values() for s in tally.seconds]


def code_of(exc: BaseException) -> str:
    """What a hostile request that got no status shows in the table."""
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return "timeout"
    if isinstance(exc, httpx.ConnectError | ConnectionRefusedError):
        return "refused"
    if isinstance(
        exc,
        httpx.RemoteProtocolError
        | httpx.ReadError
        | httpx.WriteError
        | ConnectionError
        | asyncio.IncompleteReadError,
    ):
        return "closed"
    return type(exc).__name__


async def timed(tally: Tally, request: Awaitable[httpx.Response]) -> httpx.Response | None:
    """Await a request, recording its status (or why it has none) and how long it took."""
    started = time.perf_counter()
    try:
        response = await request
    except (httpx.HTTPError, OSError) as exc:
        tally.record(code_of(exc), time.perf_counter() - started)
        return None
    tally.record(str(response.status_code), time.perf_counter() - started)
    return response


async def paced(seconds: float) -> AsyncIterator[int]:
    """Yield once per ``PACE`` (at once when behind) until ``seconds`` have passed."""
    deadline = time.perf_counter() + seconds
    next_at = time.perf_counter()
    count = 0
    while time.perf_counter() < deadline:
        yield count
        count += 1
        next_at = max(next_at + PACE, time.perf_counter())
        await asyncio.sleep(max(0.0, min(next_at, deadline) - time.perf_counter()))


# --- raw HTTP/1.1 over asyncio streams (for what httpx will not do) --------------------------


def head(method: str, path: str, port: int, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def read_status(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    """A response's status and headers (lower-case names)."""
    raw = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = raw.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        if name:
            headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    """A whole response (its body read and dropped): status and headers."""
    status, headers = await read_status(reader)
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            await reader.readexactly(size + 2)
        await reader.readuntil(b"\r\n")
    else:
        await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers


async def fresh_health(port: int) -> str:
    """``GET /health`` on a connection of its own: the status."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(head("GET", "/health", port, {**AUTH, "Connection": "close"}))
        status, _ = await read_response(reader)
        return str(status)
    finally:
        writer.close()


def body_pieces(size: int, chunked: bool) -> Iterator[bytes]:
    """``size`` bytes of spaces in 64 KiB pieces (one buffer, reused), chunk-framed if asked."""
    piece = b" " * CHUNK
    framed = f"{CHUNK:x}\r\n".encode() + piece + b"\r\n" if chunked else piece
    left = size
    while left >= CHUNK:
        yield framed
        left -= CHUNK
    if left:
        yield f"{left:x}\r\n".encode() + piece[:left] + b"\r\n" if chunked else piece[:left]
    if chunked:
        yield b"0\r\n\r\n"


# --- the scenarios ---------------------------------------------------------------------------


@dataclass
class Context:
    """What every scenario needs: where the service is, a valid order's fields, the timings."""

    service: Service
    timing: Timing
    account_id: int
    contract_id: str

    def client(self, **options: Any) -> httpx.AsyncClient:
        options.setdefault("timeout", REQUEST_TIMEOUT)
        options.setdefault("verify", False)  # plain HTTP: no need to load CA certificates
        return httpx.AsyncClient(base_url=self.service.url, headers=AUTH, **options)

    def order(self, limit_price: str) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "contract_id": self.contract_id,
            "side": "BUY",
            "type": "LIMIT",
            "size": 1,
            "limit_price": limit_price,
        }


async def idle(ctx: Context, hostile: Hostile) -> None:
    await asyncio.sleep(ctx.timing.window)


async def huge_prices(ctx: Context, hostile: Hostile) -> None:
    async def caller(client: httpx.AsyncClient, price: str) -> None:
        body = orjson.dumps(ctx.order(price))
        headers = {"Content-Type": "application/json"}
        async for _ in paced(ctx.timing.window):
            answer = await timed(
                hostile[price], client.post("/orders", content=body, headers=headers)
            )
            if answer is not None and answer.status_code == 201:
                hostile.notes.append(f"an order at {price} was placed: {answer.text[:100]}")

    async with ctx.client() as client:
        await asyncio.gather(*(caller(client, price) for price in HUGE_PRICES))


async def year_of_seconds(ctx: Context, hostile: Hostile) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    params = {
        "contract_id": ctx.contract_id,
        "unit": "SECOND",
        "start": (now - timedelta(days=365)).isoformat(),
        "end": now.isoformat(),
    }
    tally = hostile["a year of SECOND bars, no limit"]

    async def caller(client: httpx.AsyncClient) -> None:
        async for _ in paced(ctx.timing.window):
            await timed(tally, client.get("/bars", params=params))

    async with ctx.client(timeout=ctx.timing.give_up) as client:
        await asyncio.gather(*(caller(client) for _ in range(3)))


@dataclass(frozen=True)
class Upload:
    """One kind of oversized or mistyped body."""

    label: str
    token: bool
    content_type: str
    size: int
    chunked: bool


UPLOADS: Final = (
    Upload("no token, 200 MB JSON, declared", False, "application/json", BIG_BODY, False),
    Upload("no token, 200 MB JSON, chunked", False, "application/json", BIG_BODY, True),
    Upload("token, 200 MB text/plain, chunked", True, "text/plain", BIG_BODY, True),
    Upload("token, 1 KiB text/plain, declared", True, "text/plain", SMALL_BODY, False),
    Upload("token, 200 MB JSON, chunked", True, "application/json", BIG_BODY, True),
)


async def upload(ctx: Context, hostile: Hostile, kind: Upload) -> None:
    """Stream one body at ``POST /orders`` as a careless client does: all of it, whatever the
    service answers meanwhile, until the service closes the connection (or the timeout)."""
    headers = {"Content-Type": kind.content_type, **(AUTH if kind.token else {})}
    if kind.chunked:
        headers["Transfer-Encoding"] = "chunked"
    else:
        headers["Content-Length"] = str(kind.size)
    tally = hostile[kind.label]
    tally.then_text = "the rest of the body"
    sent = 0
    started = time.perf_counter()
    try:
        reader, writer = await asyncio.open_connection(HOST, ctx.service.port)
    except OSError as exc:
        tally.record(code_of(exc), time.perf_counter() - started)
        return

    async def push() -> str:
        nonlocal sent
        try:
            for piece in body_pieces(kind.size, kind.chunked):
                writer.write(piece)
                await writer.drain()
                sent += len(piece)
        except OSError:
            return "closed by the service"
        return "all taken"

    started = time.perf_counter()
    writer.write(head("POST", "/orders", ctx.service.port, headers))
    pusher = asyncio.create_task(push())
    try:
        status, _ = await asyncio.wait_for(read_status(reader), ctx.timing.body_timeout)
        tally.record(str(status), time.perf_counter() - started)
    except (TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
        tally.record(code_of(exc), time.perf_counter() - started)
    try:
        left = max(0.0, ctx.timing.body_timeout - (time.perf_counter() - started))
        tally.then[await asyncio.wait_for(pusher, left)] += 1
    except TimeoutError:
        tally.then["still taking it at the timeout"] += 1
    finally:
        tally.sent.append(sent)
        tally.whole.append(time.perf_counter() - started)
        writer.close()
        with suppress(OSError):
            await writer.wait_closed()


async def big_bodies(ctx: Context, hostile: Hostile) -> None:
    """Every kind of upload in turn, one after another, until the window is over (one round at
    least: an upload the service takes whole may last a while)."""
    deadline = time.perf_counter() + ctx.timing.window
    done = 0
    while done < len(UPLOADS) or time.perf_counter() < deadline:
        await upload(ctx, hostile, UPLOADS[done % len(UPLOADS)])
        done += 1
        await asyncio.sleep(PACE)


async def idle_connections(ctx: Context, hostile: Hostile) -> None:
    """Open the idle sockets, then a new caller every ``PACE`` while they are held. The sockets
    are the hostile part but ask nothing; the new callers' answers are what the row shows."""
    opened: Counter[str] = Counter()
    connect_times: list[float] = []

    async def open_one() -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        started = time.perf_counter()
        try:
            pair = await asyncio.wait_for(
                asyncio.open_connection(HOST, ctx.service.port), REQUEST_TIMEOUT
            )
        except (TimeoutError, OSError) as exc:
            opened[code_of(exc)] += 1
            return None
        finally:
            connect_times.append(time.perf_counter() - started)
        opened["open"] += 1
        return pair

    pairs = [p for p in await asyncio.gather(*(open_one() for _ in range(IDLE_CONNECTIONS))) if p]
    watchers = [asyncio.create_task(reader.read(1)) for reader, _ in pairs]
    newcomer = hostile["new caller: GET /health, fresh connection"]
    try:
        async for _ in paced(ctx.timing.hold):
            started = time.perf_counter()
            try:
                code = await asyncio.wait_for(fresh_health(ctx.service.port), REQUEST_TIMEOUT)
            except (TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
                code = code_of(exc)
            newcomer.record(code, time.perf_counter() - started)
        closed = sum(w.done() for w in watchers)
        hostile.notes.append(
            f"{IDLE_CONNECTIONS} sockets: {codes_text(opened)}, connect p50 "
            f"{median_ms(connect_times)} ms / max {max(connect_times) * 1e3:.1f} ms; held "
            f"{ctx.timing.hold:g} s, {closed} closed by the service meanwhile"
        )
    finally:
        for watcher in watchers:
            watcher.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
        for _, writer in pairs:
            writer.close()


NAN_BODIES: Final = {
    "bare NaN literal": b'"limit_price": NaN',
    'the text "NaN"': b'"limit_price": "NaN"',
}


async def nan_then_valid(ctx: Context, hostile: Hostile) -> None:
    order = orjson.dumps(ctx.order("1")).decode()
    bodies = {
        label: order.replace('"limit_price":"1"', price.decode()).encode()
        for label, price in NAN_BODIES.items()
    }
    async for count in paced(ctx.timing.window):
        label = list(bodies)[count % len(bodies)]
        await nan_pair(ctx, hostile[label], bodies[label])


async def nan_pair(ctx: Context, tally: Tally, body: bytes) -> None:
    """The NaN order, then ``GET /health`` on the same connection."""
    port = ctx.service.port
    headers = {**AUTH, "Content-Type": "application/json", "Content-Length": str(len(body))}
    tally.then_text = "then GET /health on that connection"
    started = time.perf_counter()
    try:
        reader, writer = await asyncio.open_connection(HOST, port)
    except OSError as exc:
        tally.record(code_of(exc), time.perf_counter() - started)
        return
    try:
        writer.write(head("POST", "/orders", port, headers) + body)
        try:
            status, _ = await asyncio.wait_for(read_response(reader), REQUEST_TIMEOUT)
        except (TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
            tally.record(code_of(exc), time.perf_counter() - started)
            tally.then["not sent"] += 1
            return
        tally.record(str(status), time.perf_counter() - started)
        try:
            writer.write(head("GET", "/health", port, AUTH))
            second, _ = await asyncio.wait_for(read_response(reader), REQUEST_TIMEOUT)
            tally.then[str(second)] += 1
        except (TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
            tally.then[code_of(exc)] += 1
    finally:
        writer.close()
        with suppress(OSError):
            await writer.wait_closed()


Scenario = Callable[[Context, Hostile], Awaitable[None]]
SCENARIOS: Final[tuple[tuple[str, Scenario], ...]] = (
    ("idle (floor)", idle),
    ("orders, huge limit_price", huge_prices),
    ("bars: a year of SECOND x3", year_of_seconds),
    ("200 MB / text/plain bodies", big_bodies),
    (f"{IDLE_CONNECTIONS} idle TCP connections", idle_connections),
    ("NaN, then same connection", nan_then_valid),
    ("idle (after all)", idle),
)


# --- running and reporting -------------------------------------------------------------------


@dataclass
class Row:
    """One scenario's line of the report."""

    name: str
    latencies: list[float]
    lost: int
    rss_before: float
    rss_peak: float
    rss_after: float
    hostile: Hostile
    recovery: float | None = None  # seconds until /health answered again, when slow


class ServiceDied(Exception):
    """The service process ended during a scenario."""


async def recover(ctx: Context) -> float:
    """Seconds until ``/health`` answers 200 again (at most ``RECOVERY_TIMEOUT``)."""
    async with ctx.client(timeout=1.0) as client:
        started = time.perf_counter()
        while time.perf_counter() - started < RECOVERY_TIMEOUT:
            with suppress(httpx.HTTPError):
                if (await client.get("/health")).status_code == 200:
                    break
            await asyncio.sleep(0.05)
    return time.perf_counter() - started


async def run_scenario(ctx: Context, prober: Prober, name: str, work: Scenario) -> Row:
    pid = ctx.service.pid
    before = rss_mib(pid)
    samples: list[float] = [before]
    sampler = asyncio.create_task(sample_rss(pid, samples))
    hostile = Hostile()
    prober.start()
    # The scenario's own safety timeout: its load, a give-up or upload timeout, and some slack.
    limit = ctx.timing.window + max(ctx.timing.body_timeout, REQUEST_TIMEOUT) + 5
    try:
        await asyncio.wait_for(work(ctx, hostile), limit)
    except TimeoutError:
        hostile.notes.append(f"cut off by the scenario's {limit:g} s safety timeout")
    except Exception as exc:  # a measurement: note what stopped the scenario, go on
        hostile.notes.append(f"stopped by {exc!r}")
    latencies, lost = await prober.stop()
    await asyncio.sleep(SETTLE)
    recovery = await recover(ctx) if ctx.service.exit_code() is None else None
    after = rss_mib(pid)
    sampler.cancel()
    with suppress(asyncio.CancelledError):
        await sampler
    peak = max((s for s in [*samples, after] if not math.isnan(s)), default=float("nan"))
    row = Row(name, latencies, lost, before, peak, after, hostile)
    if recovery is not None and recovery > 0.1:
        row.recovery = recovery
    if (code := ctx.service.exit_code()) is not None:
        raise ServiceDied(f"the service process died during {name!r} (exit code {code})", row)
    return row


async def prepare(service: Service, timing: Timing) -> Context:
    """An account to order on and the active MES contract, as a caller would find them."""
    async with httpx.AsyncClient(base_url=service.url, headers=AUTH, timeout=10) as client:
        accounts = (await client.get("/accounts")).raise_for_status().json()["accounts"]
        tradeable = [a for a in accounts if a["can_trade"]] or accounts
        contract = (await client.get(f"/contracts/by-symbol/{SYMBOL}")).raise_for_status().json()
    return Context(service, timing, int(tradeable[0]["id"]), str(contract["id"]))


async def measure(service: Service, timing: Timing, rows: list[Row]) -> None:
    ctx = await prepare(service, timing)
    prober = Prober(service.url)
    try:
        await prober.ready()
        for name, work in SCENARIOS:
            print(f"  {name} ...", flush=True)
            rows.append(await run_scenario(ctx, prober, name, work))
    finally:
        prober.close()


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def codes_text(codes: Counter[str]) -> str:
    return " ".join(f"{code}x{n}" for code, n in sorted(codes.items())) or "-"


def size_text(size: float) -> str:
    return f"{size / MiB:.1f} MiB" if size >= MiB else f"{size / 1024:.1f} KiB"


def median_ms(seconds: list[float]) -> str:
    return f"{statistics.median(seconds) * 1e3:.1f}" if seconds else "-"


def report(rows: list[Row], timing: Timing, quick: bool) -> None:
    floor = rows[0] if rows else None
    f50 = percentile(floor.latencies, 0.5) if floor else float("nan")
    f99 = percentile(floor.latencies, 0.99) if floor else float("nan")
    mode = "quick" if quick else "full"
    print(
        f"\nGET /health every {PROBE_INTERVAL * 1e3:g} ms during each scenario ({mode}: "
        f"{timing.window:g} s windows); ratios to the idle floor"
    )
    print(
        f"{'scenario':<30} {'probes':>6} {'p50 ms':>7} {'p99 ms':>7} {'x p50':>6} {'x p99':>6} "
        f"{'lost':>4} {'RSS MiB before->peak->after':>28}  {'hostile answers':<26} {'answer ms':>9}"
    )
    for row in rows:
        p50, p99 = percentile(row.latencies, 0.5), percentile(row.latencies, 0.99)
        rss = f"{row.rss_before:.1f} -> {row.rss_peak:.1f} -> {row.rss_after:.1f}"
        print(
            f"{row.name:<30} {len(row.latencies):>6} {p50 * 1e3:>7.2f} {p99 * 1e3:>7.2f} "
            f"{p50 / f50:>6.2f} {p99 / f99:>6.2f} {row.lost:>4} {rss:>28}  "
            f"{codes_text(row.hostile.codes):<26} {median_ms(row.hostile.seconds):>9}"
        )
    print("\nper kind of hostile request (answers, median time to them):")
    for row in rows:
        if not row.hostile.kinds and not row.hostile.notes and row.recovery is None:
            continue
        print(f"  {row.name}")
        for kind, tally in row.hostile.kinds.items():
            longest = max(tally.seconds, default=0.0) * 1e3
            print(
                f"    {kind:<42} {codes_text(tally.codes):<14} "
                f"{median_ms(tally.seconds):>8} ms (max {longest:.1f})"
            )
            if tally.then:
                then = ", ".join(f"{what}: {n}" for what, n in sorted(tally.then.items()))
                print(f"      {tally.then_text}: {then}")
            if tally.sent:
                print(
                    f"      wrote {size_text(statistics.median(tally.sent))} per body in "
                    f"{statistics.median(tally.whole):.2f} s (medians), "
                    f"{size_text(max(tally.sent))} at most"
                )
        for note in row.hostile.notes:
            print(f"    {note}")
        if row.recovery is not None:
            print(f"    /health took {row.recovery:.2f} s to answer again after the scenario")
    print(
        "(probes: /health requests made; lost: not answered 200 within "
        f"{PROBE_TIMEOUT:g} s; RSS of the service\n child before the scenario, its peak, and "
        f"{SETTLE:g} s after; answers: status codes, 'timeout' the caller gave up,\n 'closed' "
        "the connection ended unanswered; answer ms: median time to that answer)"
    )


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == PROBE_FLAG:
        probe_main(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorten every scenario (smoke run)")
    args = parser.parse_args()
    timing = QUICK if args.quick else FULL
    memory = "psutil" if PSUTIL is not None else "/proc VmRSS"
    print(f"bench_abuse: tradeforge serve on the embedded simulator (RSS from {memory})")
    started = time.perf_counter()
    rows: list[Row] = []
    died: str | None = None
    with tempfile.TemporaryDirectory(prefix="bench-abuse-") as log_dir:
        try:
            with serve(Path(log_dir)) as svc:
                try:
                    asyncio.run(measure(svc, timing, rows))
                except ServiceDied as exc:
                    died = str(exc.args[0])
                    rows.append(exc.args[1])
                if died is None and (code := svc.exit_code()) is not None:
                    died = f"the service process died during the run (exit code {code})"
                kinds = [tally for row in rows for tally in row.hostile.kinds.values()]
                errors = any("500" in tally.codes for tally in kinds)
                tail = svc.log_tail(40) if died or errors else ""
        except RuntimeError as exc:  # it never started (or is not on the simulator)
            sys.exit(f"FAILED: {exc}")
    report(rows, timing, args.quick)
    print(f"\n(ran in {time.perf_counter() - started:.1f} s)")
    if errors and not died:
        print(f"\nthe service answered 500 (an unhandled error); the end of its output:\n{tail}")
    if died:
        print(f"\nFAILED: {died}; the end of its output:\n{tail}")
        sys.exit(1)


if __name__ == "__main__":
    main()
