"""One call to a working client: TopStepX when it is configured, else an in-process simulator."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from . import _runtime
from .client import TradingClient
from .settings import load_settings

log = logging.getLogger("tradeforge.connect")


@asynccontextmanager
async def connect(
    env_file: str | Path | None = ".env", *, profile: str | None = None, **options: Any
) -> AsyncIterator[TradingClient]:
    """A client for the configured profile, or, with nothing configured (or the simulator chosen
    without a URL), for a simulator started in-process (which is logged).

    Incomplete settings raise ConfigurationError rather than fall back to paper trading.
    """
    settings = load_settings(env_file).profile(profile)
    if not settings.in_process_simulator():
        async with TradingClient.from_settings(settings, **options) as client:
            yield client
        return
    async with _runtime.in_process_simulator() as sim:
        log.warning(
            "no %s settings: trading on an in-process simulator at %s", settings.name, sim.api_url
        )
        config = sim.config
        async with TradingClient.for_simulator(
            sim.api_url, config.username, config.api_key, **options
        ) as client:
            yield client
