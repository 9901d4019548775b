"""What the client needs of its runtime (sleeping, being interrupted, guarding the core), under
the names the async runtime gives the same things, so both clients are one source."""

from __future__ import annotations

import contextlib
import threading
import time

sleep = time.sleep


def interrupted() -> type[BaseException]:
    """The exception that stops a call half-way: Ctrl-C."""
    return KeyboardInterrupt


def core_lock() -> contextlib.AbstractContextManager[object]:
    """Guards the core's steps: the core is not thread-safe, and threads may share a client."""
    return threading.Lock()
