"""The simulator's hubs on the core's hub-server machine: a hub kept down, a client too slow."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import anyio.abc
import pytest
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from tradeforge_proto.core import Connected, Disconnected, QuoteUpdated, Subscription
from tradeforge_proto.providers import topstepx
from tradeforge_proto.providers.topstepx.hubs import MarketHub, UserHub
from tradeforge_proto.realtime.hubserver import SLOW_CLIENT_CODE, SLOW_CLIENT_ERROR
from tradeforge_proto.realtime.machine import StreamConfig
from tradeforge_proto.signalr import (
    CloseReceived,
    CompletionReceived,
    HandshakeCompleted,
    HubConnection,
    HubEvent,
    HubRole,
    InvocationReceived,
)
from tradeforge_proto.websocket import (
    Accepted,
    ConnectionClosed,
    Rejected,
    TextReceived,
    WebSocketClient,
    WsEvent,
)
from tradeforge_sim.auth import DEFAULT_API_KEY, DEFAULT_USERNAME
from tradeforge_sim.server import SimServer

from .netclient import Hub, Rest

pytestmark = pytest.mark.anyio
ACCOUNT = 20258288
FAST_RETRY = StreamConfig(backoff_base=0.05, backoff_cap=0.2, max_refusals=1_000)


@pytest.fixture
def anyio_backend():
    return "asyncio"


async def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Return once ``condition()`` holds; fail after ``timeout`` seconds."""
    with anyio.fail_after(timeout):
        while not condition():
            await anyio.sleep(0.01)


async def upgrade(sim: SimServer, path: str, token: str) -> WsEvent:
    """One raw WebSocket upgrade over loopback: the server's answer (Accepted or Rejected)."""
    async with await anyio.connect_tcp("127.0.0.1", sim.port) as stream:
        client = WebSocketClient(f"127.0.0.1:{sim.port}", f"{path}?access_token={token}")
        await stream.send(client.data_to_send())
        with anyio.fail_after(10):
            events: list[WsEvent] = []
            while not events:
                events = client.receive_data(await stream.receive())
        return events[0]


async def test_a_hub_kept_down_drops_its_connections_and_refuses_upgrades_until_it_is_up():
    async with SimServer() as sim:
        rest = Rest(sim.api_url)
        token = await rest.login(DEFAULT_USERNAME, DEFAULT_API_KEY)
        contracts = await rest.run(topstepx.available_contracts())
        mes = next(c.id for c in contracts if "MES" in c.id)
        await rest.aclose()
        market = Hub(MarketHub(sim.market_hub_url), token, FAST_RETRY)
        market.subscribe(Subscription.quotes(mes))
        user = Hub(UserHub(sim.user_hub_url), token, FAST_RETRY)
        user.subscribe(Subscription.orders(ACCOUNT))
        async with anyio.create_task_group() as tg:
            tg.start_soon(market.run)
            tg.start_soon(user.run)
            await market.wait_for(lambda e: isinstance(e, QuoteUpdated))
            await user.wait_for(lambda e: isinstance(e, Connected))

            sim.faults.hubs_down.add("market")
            (lost,) = await market.wait_for(lambda e: isinstance(e, Disconnected), timeout=10)
            assert isinstance(lost, Disconnected)
            assert "server closed the hub" not in lost.reason  # a drop, not a SignalR Close
            rejected = await upgrade(sim, "/hubs/market", token)
            assert isinstance(rejected, Rejected)
            assert rejected.status == 503
            assert isinstance(await upgrade(sim, "/hubs/user", token), Accepted)
            # The market client keeps trying, and is refused while the hub stays down.
            tried = sim.connections
            await wait_until(lambda: sim.connections >= tried + 3)
            assert not [e for e in market.events if isinstance(e, Connected) and e.attempt > 0]
            assert not [e for e in user.events if isinstance(e, Disconnected)]

            sim.faults.hubs_down.discard("market")
            await market.wait_for(lambda e: isinstance(e, Connected) and e.attempt > 0, timeout=10)
            quotes = sum(isinstance(e, QuoteUpdated) for e in market.events)
            await wait_until(
                lambda: sum(isinstance(e, QuoteUpdated) for e in market.events) > quotes
            )
            assert not [e for e in user.events if isinstance(e, Disconnected)]
            tg.cancel_scope.cancel()


class _Pipe(anyio.abc.ByteStream):
    """One end of an in-memory connection; a writer waits once one chunk lies unread."""

    def __init__(
        self, send: MemoryObjectSendStream[bytes], receive: MemoryObjectReceiveStream[bytes]
    ) -> None:
        self._send = send
        self._receive = receive

    async def send(self, item: bytes) -> None:
        await self._send.send(item)

    async def receive(self, max_bytes: int = 65536) -> bytes:
        return await self._receive.receive()

    async def send_eof(self) -> None:
        await self._send.aclose()

    async def aclose(self) -> None:
        await self._send.aclose()
        await self._receive.aclose()


def pipe() -> tuple[_Pipe, _Pipe]:
    """The two ends of an in-memory connection that holds at most one unread chunk each way."""
    to_server, from_client = anyio.create_memory_object_stream[bytes](1)
    to_client, from_server = anyio.create_memory_object_stream[bytes](1)
    return _Pipe(to_server, from_server), _Pipe(to_client, from_client)


class _RawClient:
    """A market-hub client on one end of a pipe, made of the core's client roles."""

    def __init__(self, end: _Pipe, token: str) -> None:
        self.end = end
        self.ws = WebSocketClient("sim", f"/hubs/market?access_token={token}")
        self.hub = HubConnection(HubRole.CLIENT)
        self.ws_events: list[WsEvent] = []
        self.hub_events: list[HubEvent] = []
        self.chunks: list[int] = []  # the size of each chunk the server wrote

    async def write(self) -> None:
        """Send what the client queued; once the WebSocket is open, what the hub holds too."""
        if self.ws_events:
            self.ws.send_text(self.hub.data_to_send())
        await self.end.send(self.ws.data_to_send())

    async def read_until(self, condition: Callable[[], bool]) -> None:
        with anyio.fail_after(10):
            while not condition():
                try:
                    data = await self.end.receive()
                except anyio.EndOfStream:
                    return
                self.chunks.append(len(data))
                for event in self.ws.receive_data(data):
                    self.ws_events.append(event)
                    if isinstance(event, TextReceived):
                        self.hub_events.extend(self.hub.receive(event.data))


async def test_a_hub_client_that_stops_reading_is_closed_as_too_slow_with_the_reason():
    bound = 8 * 1024
    async with SimServer(hub_outbox=bound) as sim:
        rest = Rest(sim.api_url)
        token = await rest.login(DEFAULT_USERNAME, DEFAULT_API_KEY)
        contracts = [c.id for c in await rest.run(topstepx.available_contracts())]
        await rest.aclose()
        server_end, client_end = pipe()
        client = _RawClient(client_end, token)
        async with anyio.create_task_group() as tg:
            tg.start_soon(sim._serve_connection, server_end)
            await client.write()  # the upgrade request
            await client.read_until(lambda: any(isinstance(e, Accepted) for e in client.ws_events))
            await client.write()  # the handshake
            await client.read_until(lambda: HandshakeCompleted() in client.hub_events)
            for contract in contracts:
                client.hub.invoke("SubscribeContractQuotes", contract)
            await client.write()
            await client.read_until(
                lambda: (
                    sum(isinstance(e, CompletionReceived) for e in client.hub_events)
                    == len(contracts)
                )
            )
            # The client stops reading; pushes pile up in the hub's bounded outbox until the
            # simulator closes it on purpose.
            await wait_until(lambda: sim.slow_hub_closes == 1)
            await client.read_until(lambda: False)  # then reads everything, to the end
            tg.cancel_scope.cancel()
    pushes = [e for e in client.hub_events if isinstance(e, InvocationReceived)]
    assert pushes  # what was queued before the bound was hit still arrives, then the reason
    assert client.hub_events[-1] == CloseReceived(SLOW_CLIENT_ERROR, True)
    (closed,) = [e for e in client.ws_events if isinstance(e, ConnectionClosed)]
    assert closed.code == SLOW_CLIENT_CODE
    assert max(client.chunks) <= bound + 512  # never more than the bound held for the client
