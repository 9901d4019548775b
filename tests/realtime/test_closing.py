"""Closing the stream at any moment is clean: no error, no socket or task left behind."""

from __future__ import annotations

import random
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import attrs
import pytest

from tradeforge_proto.core.errors import LocalProtocolError
from tradeforge_proto.providers.topstepx import TopStepX
from tradeforge_proto.realtime import StreamConfig, StreamState
from tradeforge_sim.auth import DEFAULT_API_KEY, DEFAULT_USERNAME
from tradeforge_sim.server import SimServer

from .facade import ACCOUNT, opened

pytestmark = pytest.mark.anyio

PHASES = {
    "idle": StreamState.IDLE,
    "connecting": StreamState.CONNECTING,
    "handshaking": StreamState.HANDSHAKING,
    "connected": StreamState.CONNECTED,
    "backoff": StreamState.BACKOFF,
}


@contextmanager
def unanswered_port() -> Iterator[int]:
    """A port on 127.0.0.1 whose accept queue is full: a connect to it stays under way."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    try:
        yield port
    finally:
        for sock in [*fillers, listener]:
            sock.close()


@pytest.mark.parametrize("phase", list(PHASES))
async def test_closing_at_any_moment_is_clean(runtime: str, phase: str) -> None:
    # Long timers and a first backoff of several seconds: each phase lasts until the close.
    config = StreamConfig(handshake_timeout=60.0, backoff_base=30.0, backoff_cap=30.0)
    async with SimServer() as sim:
        provider = TopStepX.for_simulator(sim.api_url, DEFAULT_USERNAME, DEFAULT_API_KEY)
        with unanswered_port() as port:
            if phase == "connecting":
                environment = attrs.evolve(
                    provider.environment, user_hub_url=f"http://127.0.0.1:{port}/hubs/user"
                )
                provider = attrs.evolve(provider, environment=environment)
            rng = random.Random(1)  # its first backoff draw is about 4 s of the 30 s bound
            async with opened(runtime, sim, provider=provider, config=config, rng=rng) as face:
                await face.client_call("get_accounts")  # logged in: the hubs reuse the token
                if phase == "handshaking":
                    sim.faults.connect_delay = 60.0  # new connections wait: REST keeps its own
                elif phase == "backoff":
                    sim.faults.refuse_connections = 1000
                if phase != "idle":
                    await face.stream_call("subscribe_user", ACCOUNT, wait=False)
                await face.until(lambda: face.stream.state("user") is PHASES[phase], phase)
                await face.close()
                assert face.stream.state("user") is StreamState.STOPPED
                assert face.stream.state("market") is StreamState.STOPPED
                for driver in face.stream._drivers.values():
                    assert driver.socket is None
                    if face.blocking:
                        assert driver.thread is None or not driver.thread.is_alive()
                    else:
                        assert not driver.running or driver.done.is_set()
                # Once closed, subscribing is refused clearly and reading ends.
                with pytest.raises(LocalProtocolError, match="closed"):
                    await face.stream_call("subscribe_user", ACCOUNT, wait=False)
                while await face.next(0.5) is not None:
                    pass
