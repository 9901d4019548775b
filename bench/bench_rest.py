"""REST round trips per second on one keep-alive connection, side by side with httpx.

Every contender sends the same request to the same endpoint of one embedded simulator, one
request at a time on a single keep-alive connection:

- ``POST /api/Account/search`` with a bearer token, the realistic call (JSON in, JSON out);
- ``GET /api/Status/ping``, the smallest answer the gateway gives.

Contenders, asynchronous (asyncio):

- ours: ``TradingClient.execute(operation)``, which includes everything the core does per call
  (rate limiter, token check, retry bookkeeping) and returns typed models. The client and the
  simulator get rate budgets too large to ever make anyone wait;
- httpx raw: ``httpx.AsyncClient`` sending the same bytes and calling ``response.json()``;
- httpx typed: the same, then the operation's own parser (``op.parse(status, headers, body)``),
  so that both sides end with the same typed result.

Synchronous: ``tradeforge_sync.TradingClient`` (when that module is present) and
``httpx.Client``, the simulator then running in a background thread with its own event loop.

The asynchronous contenders share the process, and so the CPU, with the simulator serving them:
each round trip's figure includes the simulator's own work, the same for every contender, which
compresses the ratios toward 1. The contenders take turns, round after round; figures are medians
over the rounds, ratios the median of the rounds' own ratios.

Usage: bench_rest.py [requests per round (2000)] [rounds (5)]
"""

from __future__ import annotations

import gc
import importlib
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager, ExitStack
from typing import Any, Protocol

import anyio
import anyio.from_thread
import httpx

from tradeforge_anyio.client import TradingClient
from tradeforge_proto.core.operations import Operation, RateBucket
from tradeforge_proto.limits import RateBudget
from tradeforge_proto.providers import topstepx
from tradeforge_sim.server import SimServer
from tradeforge_sim.simulation import SimConfig

GENEROUS = {
    RateBucket.GENERAL: RateBudget(10**9, 60.0),
    RateBucket.HISTORY: RateBudget(10**9, 60.0),
}
ENDPOINTS: dict[str, Callable[[], Operation[Any]]] = {
    "POST Account/search": topstepx.search_accounts,
    "GET Status/ping": topstepx.ping,
}
OURS = "tradeforge (typed)"
RAW = "httpx + .json()/.text (raw)"
TYPED = "httpx + same parser (typed)"

AsyncRun = Callable[[int], Awaitable[None]]
SyncRun = Callable[[int], None]


class SyncClient(Protocol):
    """What the benchmark needs of the blocking TradingClient."""

    @property
    def token(self) -> Any: ...

    def execute(self, operation: Operation[Any]) -> Any: ...

    def get_accounts(self) -> Any: ...

    def close(self) -> None: ...


def request_kwargs(operation: Operation[Any], token: str) -> dict[str, Any]:
    """The operation's request as httpx arguments: same method, path, headers and body."""
    request = operation.request
    headers = dict(request.headers)
    if operation.authenticated:
        headers["Authorization"] = f"Bearer {token}"
    return {
        "method": request.method,
        "url": request.path,
        "headers": headers,
        "content": request.body or None,
    }


def is_json(operation: Operation[Any]) -> bool:
    return operation.request.method == "POST"


# --- asynchronous contenders --------------------------------------------------------------


def ours_async(client: TradingClient, make: Callable[[], Operation[Any]]) -> AsyncRun:
    async def run(count: int) -> None:
        execute = client.execute
        for _ in range(count):
            await execute(make())

    return run


def httpx_async(
    http: httpx.AsyncClient, make: Callable[[], Operation[Any]], token: str, *, typed: bool
) -> AsyncRun:
    operation = make()
    kwargs = request_kwargs(operation, token)
    json_answer = is_json(operation)

    async def run(count: int) -> None:
        request = http.request
        for _ in range(count):
            response = await request(**kwargs)
            if typed:
                make().parse(response.status_code, response.headers, response.content)
            elif json_answer:
                response.json()
            else:
                response.text  # noqa: B018 - decoding the body is the point

    return run


async def time_async(run: AsyncRun, count: int) -> float:
    gc.collect()
    start = time.perf_counter()
    await run(count)
    return time.perf_counter() - start


async def async_rounds(count: int, rounds: int) -> dict[str, dict[str, list[float]]]:
    """Seconds per round of every asynchronous contender, per endpoint."""
    async with SimServer(SimConfig(budgets=dict(GENEROUS))) as sim:
        config = sim.config
        client = TradingClient.for_simulator(
            sim.api_url, config.username, config.api_key, budgets=GENEROUS, max_connections=1
        )
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with client, httpx.AsyncClient(base_url=sim.api_url, limits=limits) as http:
            await client.get_accounts()  # logs in
            assert client.token is not None
            token = client.token.reveal()
            results: dict[str, dict[str, list[float]]] = {}
            for endpoint, make in ENDPOINTS.items():
                runs = {
                    OURS: ours_async(client, make),
                    RAW: httpx_async(http, make, token, typed=False),
                    TYPED: httpx_async(http, make, token, typed=True),
                }
                for run in runs.values():
                    await run(max(50, count // 20))  # warm-up: connections open, caches filled
                seconds: dict[str, list[float]] = {name: [] for name in runs}
                for _ in range(rounds):
                    for name, run in runs.items():
                        seconds[name].append(await time_async(run, count))
                results[endpoint] = seconds
            return results


# --- synchronous contenders ---------------------------------------------------------------


def sync_client_class() -> type[Any] | None:
    """``tradeforge_sync.client.TradingClient`` when that module exists and imports."""
    try:
        module = importlib.import_module("tradeforge_sync.client")
    except ImportError:
        return None
    found = getattr(module, "TradingClient", None)
    return found if isinstance(found, type) else None


def ours_sync(client: SyncClient, make: Callable[[], Operation[Any]]) -> SyncRun:
    def run(count: int) -> None:
        execute = client.execute
        for _ in range(count):
            execute(make())

    return run


def httpx_sync(
    http: httpx.Client, make: Callable[[], Operation[Any]], token: str, *, typed: bool
) -> SyncRun:
    operation = make()
    kwargs = request_kwargs(operation, token)
    json_answer = is_json(operation)

    def run(count: int) -> None:
        request = http.request
        for _ in range(count):
            response = request(**kwargs)
            if typed:
                make().parse(response.status_code, response.headers, response.content)
            elif json_answer:
                response.json()
            else:
                response.text  # noqa: B018 - decoding the body is the point

    return run


def time_sync(run: SyncRun, count: int) -> float:
    gc.collect()
    start = time.perf_counter()
    run(count)
    return time.perf_counter() - start


def sync_rounds(
    count: int, rounds: int, ours_class: type[Any] | None
) -> dict[str, dict[str, list[float]]]:
    """Seconds per round of every blocking contender, the simulator in a background thread."""
    with ExitStack() as stack:
        portal = stack.enter_context(anyio.from_thread.start_blocking_portal("asyncio"))
        server: AbstractContextManager[SimServer] = portal.wrap_async_context_manager(
            SimServer(SimConfig(budgets=dict(GENEROUS)))
        )
        sim = stack.enter_context(server)
        config = sim.config
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        http = stack.enter_context(httpx.Client(base_url=sim.api_url, limits=limits))
        login = http.post(
            "/api/Auth/loginKey", json={"userName": config.username, "apiKey": config.api_key}
        )
        token = str(login.json()["token"])
        client: SyncClient | None = None
        if ours_class is not None:
            client = ours_class.for_simulator(
                sim.api_url, config.username, config.api_key, budgets=GENEROUS, max_connections=1
            )
            stack.callback(client.close)
            client.get_accounts()
        results: dict[str, dict[str, list[float]]] = {}
        for endpoint, make in ENDPOINTS.items():
            runs: dict[str, SyncRun] = {}
            if client is not None:
                runs[OURS] = ours_sync(client, make)
            runs[RAW] = httpx_sync(http, make, token, typed=False)
            runs[TYPED] = httpx_sync(http, make, token, typed=True)
            for run in runs.values():
                run(max(50, count // 20))
            seconds: dict[str, list[float]] = {name: [] for name in runs}
            for _ in range(rounds):
                for name, run in runs.items():
                    seconds[name].append(time_sync(run, count))
            results[endpoint] = seconds
        return results


# --- report -------------------------------------------------------------------------------


def median_ratio(fast: list[float], slow: list[float]) -> float:
    """How many times faster ``fast`` was than ``slow``: the median of the per-round ratios."""
    return statistics.median(s / f for f, s in zip(fast, slow, strict=True))


def report(title: str, results: dict[str, dict[str, list[float]]], count: int) -> None:
    print(f"\n{title}")
    print(f"{'endpoint':<20} {'contender':<28} {'requests/s':>11}   (min .. max)")
    for endpoint, seconds in results.items():
        for name, values in seconds.items():
            rate = count / statistics.median(values)
            spread = f"{count / max(values):,.0f} .. {count / min(values):,.0f}"
            print(f"{endpoint:<20} {name:<28} {rate:>11,.0f}   ({spread})")
        if OURS in seconds:
            mine = seconds[OURS]
            raw = median_ratio(mine, seconds[RAW])
            typed = median_ratio(mine, seconds[TYPED])
            print(
                f"{'':<20} ratio ours / httpx raw = {raw:.2f}, "
                f"ours / httpx typed = {typed:.2f} (target >= 1.5)"
            )


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    started = time.perf_counter()
    print(f"{count} requests per round, {rounds} interleaved rounds, one keep-alive connection")
    print(f"httpx {httpx.__version__}; requests/s are medians over the rounds")
    report(
        "asyncio (simulator in the same process and event loop: it shares the CPU with "
        "every contender alike)",
        anyio.run(async_rounds, count, rounds, backend="asyncio"),
        count,
    )
    ours_class = sync_client_class()
    if ours_class is None:
        print("\ntradeforge_sync.client is not available: the blocking comparison shows httpx only")
    report(
        "blocking (simulator in a background thread with its own event loop)",
        sync_rounds(count, rounds, ours_class),
        count,
    )
    print(f"\n(ran in {time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
