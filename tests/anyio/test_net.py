"""The async pool's own cases: concurrent tasks and cancellation (the rest, shared by both
runtimes, is in tests/realtime/test_pool.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import anyio.abc
import pytest

from tradeforge_anyio.net import (
    ConnectionPool,
    Origin,
    SendProgress,
)
from tradeforge_proto.core.operations import HttpRequest
from tradeforge_sim.server import SimServer

pytestmark = pytest.mark.anyio

PING = HttpRequest("GET", "/api/Status/ping")
Handler = Callable[[anyio.abc.SocketStream], Awaitable[None]]


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def pool_for(sim: SimServer, **options: object) -> ConnectionPool:
    return ConnectionPool(Origin.from_url(sim.api_url), **options)  # type: ignore[arg-type]


async def test_concurrent_requests_never_exceed_max_connections() -> None:
    async with SimServer() as sim, pool_for(sim, max_connections=3) as pool:
        sim.faults.rest_delay = 0.02
        statuses: list[int] = []
        most_open = 0

        async def one() -> None:
            nonlocal most_open
            response = await pool.send(PING)
            most_open = max(most_open, pool.open_connections)
            statuses.append(response.status)

        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(one)
        assert statuses == [200] * 20
        assert most_open <= 3
        assert pool.connections_opened == 3
        assert sim.connections == 3


async def test_cancelled_after_sending_drops_the_connection_and_says_so() -> None:
    async with SimServer() as sim, pool_for(sim) as pool:
        sim.faults.rest_delay = 1.0
        progress = SendProgress()
        with anyio.move_on_after(0.1) as scope:
            await pool.send(PING, progress=progress)
        assert scope.cancelled_caught
        assert progress.request_sent is True
        assert pool.open_connections == 0
        sim.faults.rest_delay = 0.0
        assert (await pool.send(PING)).status == 200
        assert pool.connections_opened == 2


async def test_cancelled_while_waiting_for_a_connection_sends_nothing() -> None:
    async with SimServer() as sim, pool_for(sim, max_connections=1) as pool:
        sim.faults.rest_delay = 0.3
        progress = SendProgress()
        async with anyio.create_task_group() as tg:
            tg.start_soon(pool.send, PING)
            await anyio.sleep(0.05)
            with anyio.move_on_after(0.05):
                await pool.send(PING, progress=progress)
        assert progress.request_sent is False
        assert pool.requests_sent == 1
        assert pool.connections_opened == 1
