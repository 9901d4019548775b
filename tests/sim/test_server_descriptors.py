"""The simulator out of file descriptors: accepting backs off and resumes, the process lives on."""

from __future__ import annotations

import resource
import sys
from collections.abc import Callable

import anyio
import anyio.abc
import pytest
from anyio.streams.text import TextReceiveStream

from tradeforge_proto.providers import topstepx
from tradeforge_sim.auth import DEFAULT_API_KEY, DEFAULT_USERNAME

from .netclient import Rest

pytestmark = pytest.mark.anyio
DESCRIPTORS = 256
CLIENTS = 300

# The child lowers its own descriptor limit, serves on a free loopback port and prints it.
CHILD = f"""
import logging, resource, sys
import anyio
from tradeforge_sim.server import SimServer

logging.basicConfig(level=logging.WARNING, format="%(name)s %(levelname)s %(message)s")
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, ({DESCRIPTORS}, hard))

async def main() -> None:
    async with SimServer(port=0) as sim:
        print(sim.port, flush=True)
        await anyio.sleep_forever()

anyio.run(main, backend=sys.argv[1])
"""


@pytest.fixture
def anyio_backend():
    return "asyncio"


async def lines_of(stream: anyio.abc.ByteReceiveStream, into: list[str]) -> None:
    """Collect what ``stream`` carries, line by line, until it ends."""
    pending = ""
    async for text in TextReceiveStream(stream):
        pending += text
        *done, pending = pending.split("\n")
        into.extend(done)


async def wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    """Return once ``condition()`` holds; fail after ``timeout`` seconds."""
    with anyio.fail_after(timeout):
        while not condition():
            await anyio.sleep(0.02)


def count(lines: list[str], text: str) -> int:
    return sum(text in line for line in lines)


@pytest.mark.skipif(
    resource.getrlimit(resource.RLIMIT_NOFILE)[0] < 2 * CLIENTS, reason="needs more descriptors"
)
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
async def test_more_connections_than_descriptors_never_end_the_simulator(backend: str):
    async with await anyio.open_process([sys.executable, "-c", CHILD, backend]) as child:
        assert child.stdout is not None
        assert child.stderr is not None
        out: list[str] = []
        err: list[str] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(lines_of, child.stdout, out)
            tg.start_soon(lines_of, child.stderr, err)
            await wait_until(lambda: bool(out) or child.returncode is not None)
            port = int(out[0])
            clients: list[anyio.abc.SocketStream] = []
            try:
                while len(clients) < CLIENTS:
                    clients.append(await anyio.connect_tcp("127.0.0.1", port))
                await wait_until(lambda: count(err, "cannot accept connections") > 0)
            finally:
                for client in clients:
                    await client.aclose()
            rest = Rest(f"http://127.0.0.1:{port}")
            with anyio.fail_after(20):
                await rest.login(DEFAULT_USERNAME, DEFAULT_API_KEY)
                accounts = await rest.run(topstepx.search_accounts())
            assert len(accounts) == 2
            await rest.aclose()
            # Each run of failed accepts is logged once as it starts and once as it ends.
            await wait_until(
                lambda: count(err, "cannot accept") == count(err, "accepting connections again")
            )
            assert child.returncode is None
            child.terminate()
            tg.cancel_scope.cancel()
    assert count(err, "EMFILE") == count(err, "cannot accept connections")
    assert count(err, "Traceback") == 0
    assert len(err) < 40, err  # a line or two per run of failures, not one per accept
