"""What the client needs of its runtime (sleeping, being interrupted, guarding the core), under
the names the blocking runtime gives the same things, so both clients are one source."""

from __future__ import annotations

import contextlib

import anyio

sleep = anyio.sleep


def interrupted() -> type[BaseException]:
    """The exception that stops a call half-way: the event loop's cancellation."""
    return anyio.get_cancelled_exc_class()


def core_lock() -> contextlib.AbstractContextManager[object]:
    """Guards the core's steps; tasks on one event loop never run them at once, so it is free."""
    return contextlib.nullcontext()
