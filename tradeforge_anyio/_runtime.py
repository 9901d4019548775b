"""What the client needs of its runtime (sleeping, being interrupted, guarding the core), under
the names the blocking runtime gives the same things, so both clients are one source."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from tradeforge_sim.server import SimServer

sleep = anyio.sleep


def interrupted() -> type[BaseException]:
    """The exception that stops a call half-way: the event loop's cancellation."""
    return anyio.get_cancelled_exc_class()


def core_lock() -> contextlib.AbstractContextManager[object]:
    """Guards the core's steps; tasks on one event loop never run them at once, so it is free."""
    return contextlib.nullcontext()


@contextlib.asynccontextmanager
async def in_process_simulator() -> AsyncIterator[SimServer]:
    """A gateway simulator on a free port of 127.0.0.1, for as long as the block runs; the
    simulator package is loaded only now (it is large, and most programs never need it)."""
    from tradeforge_sim.server import SimServer

    async with SimServer() as sim:
        yield sim
