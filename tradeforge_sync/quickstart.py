"""One call to a working client: TopStepX when it is configured, else an in-process simulator."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .client import TradingClient
from .settings import load_settings

log = logging.getLogger("tradeforge.connect")


@contextmanager
def connect(
    env_file: str | Path | None = ".env", *, profile: str | None = None, **options: Any
) -> Iterator[TradingClient]:
    """A client for the configured profile, or, with nothing configured (or the simulator chosen
    without a URL), for a simulator started in a background thread, which is logged. Incomplete
    settings raise ConfigurationError rather than fall back to paper trading."""
    settings = load_settings(env_file).profile(profile)
    if not settings.in_process_simulator():
        with TradingClient.from_settings(settings, **options) as client:
            yield client
        return
    # Only when it is needed: the simulator is an async server, run on a thread of its own.
    from anyio.from_thread import start_blocking_portal

    from tradeforge_sim.server import SimServer

    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(SimServer()) as sim,
    ):
        log.warning(
            "no %s settings: trading on an in-process simulator at %s", settings.name, sim.api_url
        )
        config = sim.config
        with TradingClient.for_simulator(
            sim.api_url, config.username, config.api_key, **options
        ) as client:
            yield client
