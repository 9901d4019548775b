"""The service as users run it: uvicorn on a real loopback port, the simulator behind it."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import uvicorn
from fastapi import FastAPI

from tradeforge_anyio.client import TradingClient
from tradeforge_anyio.sim.auth import DEFAULT_API_KEY, DEFAULT_USERNAME
from tradeforge_anyio.sim.server import SimServer


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def simulator_client(
    sim: SimServer, api_key: str = DEFAULT_API_KEY, **options: Any
) -> Callable[[], TradingClient]:
    """The client factory ``create_app`` takes, logged in to ``sim``."""

    def factory() -> TradingClient:
        return TradingClient.for_simulator(sim.api_url, DEFAULT_USERNAME, api_key, **options)

    return factory


@asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[str]:
    """Run ``app`` (its lifespan included) on 127.0.0.1; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    async with anyio.create_task_group() as group:
        group.start_soon(server.serve)
        with anyio.fail_after(10):
            while not server.started:
                await anyio.sleep(0.02)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
