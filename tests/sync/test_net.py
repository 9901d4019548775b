"""The blocking pool's own cases: threads and Ctrl-C (the rest, shared by both runtimes, is in
tests/realtime/test_pool.py)."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tradeforge_proto.core.operations import HttpRequest
from tradeforge_sim.server import SimServer
from tradeforge_sync.net import (
    ConnectionPool,
    Origin,
    SendProgress,
)

from . import running_sim

PING = HttpRequest("GET", "/api/Status/ping")


def pool_for(sim: SimServer, **options: object) -> ConnectionPool:
    return ConnectionPool(Origin.from_url(sim.api_url), **options)  # type: ignore[arg-type]


class Interrupted(Exception):
    """Raised by a timer signal in the middle of a blocking call."""


@contextmanager
def interrupt_after(seconds: float) -> Iterator[None]:
    """Raise Interrupted in this (main) thread after ``seconds``, as a signal handler would."""

    def handler(signum: int, frame: object) -> None:
        raise Interrupted

    previous = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


needs_alarm = pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs SIGALRM")


def test_threads_never_exceed_max_connections() -> None:
    with running_sim() as sim, pool_for(sim, max_connections=3) as pool:
        sim.faults.rest_delay = 0.02
        statuses: list[int] = []
        most_open = 0
        lock = threading.Lock()

        def one() -> None:
            nonlocal most_open
            for _ in range(3):
                response = pool.send(PING)
                with lock:
                    most_open = max(most_open, pool.open_connections)
                    statuses.append(response.status)

        threads = [threading.Thread(target=one) for _ in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert statuses == [200] * 30
        assert most_open <= 3
        assert pool.connections_opened <= 3
        assert sim.connections <= 3


@needs_alarm
def test_interrupted_after_sending_drops_the_connection_and_says_so() -> None:
    with running_sim() as sim, pool_for(sim) as pool:
        sim.faults.rest_delay = 1.0
        progress = SendProgress()
        with pytest.raises(Interrupted), interrupt_after(0.1):
            pool.send(PING, progress=progress)
        assert progress.request_sent is True
        assert pool.open_connections == 0
        sim.faults.rest_delay = 0.0
        assert pool.send(PING).status == 200
        assert pool.connections_opened == 2


def test_waiting_for_a_connection_blocks_and_sends_nothing_early() -> None:
    with running_sim() as sim, pool_for(sim, max_connections=1) as pool:
        sim.faults.rest_delay = 0.3
        first = threading.Thread(target=pool.send, args=(PING,))
        first.start()
        time.sleep(0.05)
        progress = SendProgress()
        assert pool.send(PING, progress=progress).status == 200  # waited for the only slot
        first.join(5)
        assert progress.request_sent is True
        assert pool.requests_sent == 2
        assert pool.connections_opened == 1
