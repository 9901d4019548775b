"""The async stream against the simulator, on asyncio and trio, including its faults."""

from __future__ import annotations

import time

import anyio
import pytest

from tradeforge_anyio.client import TradingClient
from tradeforge_anyio.sim.auth import DEFAULT_API_KEY, DEFAULT_USERNAME
from tradeforge_anyio.sim.server import SimServer
from tradeforge_anyio.stream import READ_SIZE, _HubDriver
from tradeforge_proto.core import (
    AccountUpdated,
    Connected,
    DepthReceived,
    Disconnected,
    FillReceived,
    OrderSide,
    OrderType,
    OrderUpdated,
    PositionUpdated,
    QuoteUpdated,
    Resubscribed,
    StreamEvent,
)
from tradeforge_proto.realtime.machine import StreamConfig, StreamState

pytestmark = pytest.mark.anyio
ACCOUNT = 20258288


def client_for(sim: SimServer) -> TradingClient:
    return TradingClient.for_simulator(sim.api_url, DEFAULT_USERNAME, DEFAULT_API_KEY)


async def collect(stream, until, timeout: float = 10.0) -> list[StreamEvent]:
    seen: list[StreamEvent] = []
    with anyio.fail_after(timeout):
        async for event in stream:
            seen.append(event)
            if until(seen):
                return seen
    return seen


def has(kind: type, count: int = 1):
    return lambda seen: sum(isinstance(e, kind) for e in seen) >= count


async def test_market_data_and_a_live_book():
    async with SimServer() as sim, client_for(sim) as client:
        mes = await client.resolve_contract("MES")
        async with client.stream(books=True) as stream:
            await stream.subscribe_market(mes.id, quotes=True, trades=True, depth=True)
            seen = await collect(
                stream, lambda s: has(QuoteUpdated, 5)(s) and has(DepthReceived, 5)(s)
            )
            assert isinstance(seen[0], Connected)
            quotes = [e for e in seen if isinstance(e, QuoteUpdated)]
            assert all(q.quote.contract_id == mes.id for q in quotes)
            book = stream.book(mes.id)
            assert book is not None
            assert book.best_bid is not None
            assert book.best_ask is not None
            assert book.best_bid.price < book.best_ask.price
            assert stream.state("market") is StreamState.CONNECTED
            assert stream.state("user") is StreamState.IDLE  # no user subscription: not connected
        assert stream.state("market") is StreamState.STOPPED


async def test_user_events_of_a_fill_and_callbacks():
    async with SimServer() as sim, client_for(sim) as client:
        mes = await client.resolve_contract("MES")
        calls: list[StreamEvent] = []
        async with client.stream() as stream:
            stream.on(calls.append)
            stream.on(lambda event: 1 / 0)  # a broken callback does not stop anything
            await stream.subscribe_user(ACCOUNT)
            await collect(stream, has(Connected))
            await anyio.sleep(0.2)  # subscriptions acknowledged
            await client.place_order(ACCOUNT, mes.id, OrderSide.BUY, OrderType.MARKET, 1)
            seen = await collect(stream, has(AccountUpdated))
            kinds = [
                type(e)
                for e in seen
                if isinstance(e, OrderUpdated | FillReceived | PositionUpdated | AccountUpdated)
            ]
            assert kinds[:5] == [
                OrderUpdated,
                FillReceived,
                OrderUpdated,
                PositionUpdated,
                AccountUpdated,
            ]
        assert any(isinstance(e, FillReceived) for e in calls)
        assert stream.callback_errors > 0


async def test_dropped_hub_reconnects_resubscribes_and_resumes():
    async with SimServer() as sim, client_for(sim) as client:
        mes = await client.resolve_contract("MES")
        async with client.stream() as stream:
            await stream.subscribe_market(mes.id, quotes=True, trades=True)
            await collect(stream, has(QuoteUpdated, 3))
            sim.faults.drop_hub_after = 3
            await collect(stream, has(Disconnected))
            sim.faults.drop_hub_after = None
            seen = await collect(stream, has(Resubscribed))
            (resubscribed,) = [e for e in seen if isinstance(e, Resubscribed)]
            assert len(resubscribed.subscriptions) == 2
            await collect(stream, has(QuoteUpdated, 3))


async def test_silent_server_and_expired_token():
    config = StreamConfig(server_timeout=0.8, keepalive_interval=0.3)
    async with SimServer() as sim, client_for(sim) as client:
        mes = await client.resolve_contract("MES")
        async with client.stream(config=config) as stream:
            await stream.subscribe_market(mes.id)
            await collect(stream, has(QuoteUpdated))
            sim.faults.silent = True
            seen = await collect(stream, has(Disconnected))
            lost = next(e for e in seen if isinstance(e, Disconnected))
            assert "no data from the server" in lost.reason
            sim.faults.silent = False
            sim.expire_tokens()
            await collect(stream, has(Connected))
            await collect(stream, has(QuoteUpdated))


async def serve(port: int, stop: anyio.Event, *, task_status=anyio.TASK_STATUS_IGNORED) -> None:
    async with SimServer(port=port) as sim:
        task_status.started(sim)
        await stop.wait()


async def test_malformed_frame_and_a_restarted_simulator():
    async with anyio.create_task_group() as tg:
        first = anyio.Event()
        sim = await tg.start(serve, 0, first)
        async with client_for(sim) as client:
            mes = await client.resolve_contract("MES")
            async with client.stream() as stream:
                await stream.subscribe_market(mes.id)
                await collect(stream, has(QuoteUpdated))
                sim.faults.malformed_frames = 1
                await collect(stream, has(Disconnected))
                await collect(stream, has(QuoteUpdated))
                first.set()  # the gateway goes away...
                await collect(stream, has(Disconnected))
                second = anyio.Event()
                await tg.start(serve, sim.port, second)  # ...and comes back on the same port
                seen = await collect(stream, has(QuoteUpdated), timeout=20)
                assert any(isinstance(e, Connected) for e in seen)
                second.set()


class _SlowMachine:
    """A connected machine whose deadline is near and whose decoding of a slice takes 2 ms."""

    state = StreamState.CONNECTED

    def __init__(self) -> None:
        self.fed = 0

    def next_deadline(self) -> float:
        return time.time() + 0.003

    def receive_data(self, data: bytes, now: float) -> None:
        self.fed += len(data)
        started = time.perf_counter()
        while time.perf_counter() - started < 0.002:
            pass

    def events(self) -> list[StreamEvent]:
        return []


class _BigReads:
    async def receive(self, max_bytes: int) -> bytes:
        await anyio.sleep(0.001)
        return b"x" * max_bytes


class _Sink:
    async def _room_for_events(self, timeout: float) -> None:
        return None

    def _deliver(self, events: list[StreamEvent]) -> None:
        assert events == []


async def test_a_read_is_fed_in_full_even_when_the_wait_deadline_passes_meanwhile():
    machine = _SlowMachine()
    driver = _HubDriver(_Sink(), machine)  # type: ignore[arg-type]
    driver.socket = _BigReads()  # type: ignore[assignment]
    await driver._wait_for_input()
    assert machine.fed == READ_SIZE
