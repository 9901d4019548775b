"""One call to a working client: TopStepX when credentials are configured, else the simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from .client import TradingClient
from .settings import load_settings


@asynccontextmanager
async def connect(
    env_file: str | Path | None = ".env", *, profile: str | None = None, **options: Any
) -> AsyncIterator[TradingClient]:
    """A client for the configured profile; with no credentials, an in-process simulator's."""
    settings = load_settings(env_file).profile(profile)
    if settings.has_credentials and not settings.uses_simulator:
        async with TradingClient.from_settings(settings, **options) as client:
            yield client
        return
    from tradeforge_sim.server import SimServer  # only when it is needed: the simulator is large

    async with SimServer() as sim:
        config = sim.config
        async with TradingClient.for_simulator(
            sim.api_url, config.username, config.api_key, **options
        ) as client:
            yield client
