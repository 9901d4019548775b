"""What the client needs of its runtime (sleeping, being interrupted, guarding the core), under
the names the async runtime gives the same things, so both clients are one source."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tradeforge_sim.server import SimServer

sleep = time.sleep


def interrupted() -> type[BaseException]:
    """The exception that stops a call half-way: Ctrl-C."""
    return KeyboardInterrupt


def core_lock() -> contextlib.AbstractContextManager[object]:
    """Guards the core's steps: the core is not thread-safe, and threads may share a client."""
    return threading.Lock()


@contextlib.contextmanager
def in_process_simulator() -> Iterator[SimServer]:
    """A gateway simulator on a free port of 127.0.0.1, on a thread of its own (it is an async
    server), for as long as the block runs; loaded only now, as most programs never need it."""
    from anyio.from_thread import start_blocking_portal

    from tradeforge_sim.server import SimServer

    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(SimServer()) as sim,
    ):
        yield sim
