"""One async face over both runtimes' clients and streams, so a test is written once.

The async runtime is called directly; the blocking one from worker threads, with the simulator
still serving on the test's event loop.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.to_thread
import pytest

from tradeforge_anyio.client import TradingClient as AsyncClient
from tradeforge_proto.core.enums import OrderSide, OrderType
from tradeforge_proto.core.events import StreamEvent
from tradeforge_proto.providers.topstepx import TopStepX
from tradeforge_sim.auth import DEFAULT_API_KEY, DEFAULT_USERNAME
from tradeforge_sim.server import SimServer
from tradeforge_sync.client import TradingClient as SyncClient

ACCOUNT = 20258288
WAIT = 20.0  # a safety net: every wait below ends on a condition long before


class Face:
    """The client and the stream of one runtime, every call awaitable."""

    def __init__(self, runtime: str, client: Any, stream: Any) -> None:
        self.runtime = runtime
        self.client = client
        self.stream = stream
        self.blocking = runtime == "blocking"
        self.seen: list[StreamEvent] = []

    async def call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self.blocking:
            return await anyio.to_thread.run_sync(functools.partial(method, *args, **kwargs))
        return await method(*args, **kwargs)

    async def client_call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return await self.call(getattr(self.client, name), *args, **kwargs)

    async def stream_call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return await self.call(getattr(self.stream, name), *args, **kwargs)

    async def close(self) -> None:
        await self.call(self.stream.close if self.blocking else self.stream.aclose)

    async def buy(self, contract_id: str, size: int = 1, account: int = ACCOUNT) -> int:
        order_id: int = await self.client_call(
            "place_order", account, contract_id, OrderSide.BUY, OrderType.MARKET, size
        )
        return order_id

    async def next(self, timeout: float) -> StreamEvent | None:
        """The next event, or None when none came within ``timeout`` (or the stream ended)."""
        event: StreamEvent | None = await self.stream_call("get", timeout)
        if event is not None:
            self.seen.append(event)
        return event

    async def read_until(
        self, done: Callable[[list[StreamEvent]], bool], what: str
    ) -> list[StreamEvent]:
        """Read into ``seen`` until ``done(seen)``; fail after the safety net."""
        with anyio.move_on_after(WAIT):
            while not done(self.seen):
                await self.next(0.5)
            return self.seen
        pytest.fail(f"still waiting for {what}; saw {[type(e).__name__ for e in self.seen][-30:]}")

    async def until(self, condition: Callable[[], bool], what: str) -> None:
        """Wait without reading until ``condition()``."""
        with anyio.move_on_after(WAIT):
            while not condition():
                await anyio.sleep(0.01)
            return
        pytest.fail(f"still waiting for {what}")


@asynccontextmanager
async def opened(
    runtime: str,
    sim: SimServer,
    *,
    provider: TopStepX | None = None,
    client_ssl: ssl.SSLContext | None = None,
    **options: Any,
) -> AsyncIterator[Face]:
    """A client and an open stream of ``runtime`` on ``sim`` (or with ``provider``)."""
    provider = provider or TopStepX.for_simulator(sim.api_url, DEFAULT_USERNAME, DEFAULT_API_KEY)
    if runtime == "blocking":
        client = SyncClient(provider, ssl_context=client_ssl)
        stream = client.stream(**options)
        await anyio.to_thread.run_sync(stream.__enter__)
        try:
            yield Face(runtime, client, stream)
        finally:
            await anyio.to_thread.run_sync(stream.close)
            await anyio.to_thread.run_sync(client.close)
        return
    aclient = AsyncClient(provider, ssl_context=client_ssl)
    async with aclient, aclient.stream(**options) as astream:
        yield Face(runtime, aclient, astream)


@asynccontextmanager
async def client_only(runtime: str, sim: SimServer, **options: Any) -> AsyncIterator[Face]:
    """A client of ``runtime`` on ``sim`` with ``options`` (no stream)."""
    login = (sim.api_url, DEFAULT_USERNAME, options.pop("api_key", DEFAULT_API_KEY))
    if runtime == "blocking":
        client = SyncClient.for_simulator(*login, **options)
        try:
            yield Face(runtime, client, None)
        finally:
            await anyio.to_thread.run_sync(client.close)
        return
    async with AsyncClient.for_simulator(*login, **options) as aclient:
        yield Face(runtime, aclient, None)
