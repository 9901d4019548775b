"""Soak: one stream on both hubs through continuous trading, market data and forced reconnects.

One ``TradingStream`` follows every user channel of an account and quotes, trades and depth of
two contracts, on a simulator making ``RATE`` market updates per second per contract. The test runs
``CYCLES`` cycles. In each, orders are placed and closed at market, one round trip after another,
for ``TRADE_SECONDS`` (and at least ``MIN_ROUND_TRIPS`` of them); each round trip waits until the
stream shows its order Filled, so trading goes as fast as the reader keeps up on any machine and
no backlog builds. Once every event of those orders has arrived, the simulator drops both hub
connections (``faults.drop_hub_after``) and the test waits for the stream to reconnect and
resubscribe, on the client and in the simulator, before trading again.

While the user hub is down (``faults.hubs_down``) one more round trip is made: its events reach
the reader only through the stream's gap recovery, and the final checks count them like every
other order. Rate limits
are set out of reach on both sides: this is a test of the stream, and the default budget (200
requests a minute) would allow only a handful of orders.

At the end: every placed order and every order REST knows of (the closing ones too) was seen
Filled, every fill REST knows of was seen as a FillReceived (some of them recovered), nothing
was dropped or stopped the stream, each hub disconnected and resubscribed every cycle with market
data in each, and memory stayed flat from the end of the first cycle (the warm-up: connections,
caches and buffers in place) to the end: see ``memory`` and the bounds below. Nothing is timed.

Runs on asyncio only, to keep CI time down (about 20 s); trio runs the same stream code in the
shorter fault tests of ``test_stream.py``.
"""

from __future__ import annotations

import gc
import os
import tracemalloc
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import anyio
import pytest

from tradeforge_anyio.client import TradingClient
from tradeforge_proto.core import (
    Connected,
    DepthReceived,
    Disconnected,
    EventDropped,
    FillReceived,
    MarketTradeReceived,
    OrderSide,
    OrderStatus,
    OrderType,
    OrderUpdated,
    QuoteUpdated,
    Resubscribed,
    StreamEvent,
    StreamStopped,
    Subscribed,
    jsoncodec,
)
from tradeforge_proto.core.operations import RateBucket
from tradeforge_proto.limits import RateBudget
from tradeforge_proto.providers.topstepx import wire
from tradeforge_proto.realtime.machine import StreamConfig
from tradeforge_sim.auth import DEFAULT_API_KEY, DEFAULT_USERNAME
from tradeforge_sim.server import SimServer
from tradeforge_sim.simulation import SimConfig

pytestmark = [pytest.mark.slow, pytest.mark.anyio]

ACCOUNT = 20258288
CYCLES = 5
RATE = 50  # market updates per second per contract (the client traces every allocation)
TRADE_SECONDS = 2.5
MIN_ROUND_TRIPS = 20  # per cycle, however slow the machine
WAIT = 20.0  # hang guard of every wait on the stream (never reached when things work)
HUBS = ("user", "market")
UNLIMITED = {
    RateBucket.GENERAL: RateBudget(10**9, 60.0),
    RateBucket.HISTORY: RateBudget(10**9, 60.0),
}
# Reconnect quickly: the default backoff grows to seconds after a few drops.
STREAM = StreamConfig(backoff_base=0.05, backoff_cap=0.5)
# Memory bounds, see ``memory``. The whole process includes the simulator, which keeps every
# order and fill it made (about 2 KiB per round trip, a few thousand round trips).
MAX_GROWTH = 20 * 1024 * 1024
# Outside the simulator only the test's id sets and the stream's bounded delivery ledger should
# grow, with the round trips a machine manages: a fixed allowance plus some per round trip.
# Retaining each decoded event (200 B and up, over 10,000 of them after the warm-up) or a
# connection's buffers at each reconnect would exceed this.
CLIENT_GROWTH_ALLOWANCE = 1024 * 1024  # what is in flight at a snapshot: records, queued events
CLIENT_GROWTH_PER_ROUND_TRIP = 5 * 1024 // 2  # the ledger's orders and fills, the test's id sets
TRACE_FRAMES = 2  # enough to find the simulator's frame above the shared code it calls
SIMULATOR = os.path.join("*", "tradeforge_sim", "*")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Seen:
    """What the reader took from the stream, kept as counts and ids only."""

    def __init__(self) -> None:
        self.filled: set[int] = set()
        self.fills: set[int] = set()
        self.kinds: Counter[str] = Counter()
        self.disconnects: Counter[str] = Counter()
        self.resubscribed: Counter[str] = Counter()
        self.subscribed: Counter[str] = Counter()
        self.last: dict[str, StreamEvent] = {}  # latest lifecycle event per hub
        self.market = 0
        self.recovered = 0  # fills delivered through gap recovery
        self._progress = anyio.Event()

    def add(self, event: StreamEvent) -> None:
        self.kinds[type(event).__name__] += 1
        if isinstance(event, QuoteUpdated | DepthReceived | MarketTradeReceived):
            self.market += 1
        elif isinstance(event, OrderUpdated):
            if event.order.account_id == ACCOUNT and event.order.status is OrderStatus.FILLED:
                self.filled.add(event.order.id)
                self._progress.set()
        elif isinstance(event, FillReceived):
            self.fills.add(event.fill.id)
            self.recovered += event.recovered
        elif isinstance(event, Connected | Disconnected | Resubscribed):
            self.last[event.hub] = event
            if isinstance(event, Disconnected):
                self.disconnects[event.hub] += 1
            elif isinstance(event, Resubscribed):
                self.resubscribed[event.hub] += 1
        elif isinstance(event, Subscribed):
            self.subscribed[event.hub] += 1

    async def filled_seen(self, order_id: int) -> None:
        """Return once ``order_id`` was seen Filled."""
        with anyio.move_on_after(WAIT):
            while order_id not in self.filled:
                self._progress = anyio.Event()
                await self._progress.wait()
            return
        pytest.fail(f"order {order_id} not seen Filled after {WAIT:g} s")


async def read(stream, seen: Seen) -> None:
    async for event in stream:
        seen.add(event)


async def until(condition, what: str) -> None:
    with anyio.move_on_after(WAIT):
        while not condition():
            await anyio.sleep(0.02)
        return
    pytest.fail(f"still waiting for {what} after {WAIT:g} s")


def user_hub_ready(sim: SimServer) -> bool:
    """The simulator has one user-hub session, and it holds the account's subscriptions."""
    sessions = [s for s in sim.simulation.sessions if s.hub == "user"]
    return len(sessions) == 1 and {("orders", ACCOUNT), ("trades", ACCOUNT)} <= (
        sessions[0].subscriptions
    )


async def trade(
    client: TradingClient, seen: Seen, contracts: list[str], seconds: float
) -> list[int]:
    """Open and close market positions, alternating contract and side, for ``seconds``.

    Each round trip waits for the stream to show the opening order Filled before the next one.
    """
    placed: list[int] = []
    # A deadline checked between round trips: cancelling one mid-request would leave it uncertain.
    deadline = anyio.current_time() + seconds
    while anyio.current_time() < deadline or len(placed) < MIN_ROUND_TRIPS:
        contract = contracts[len(placed) % 2]
        side = OrderSide.BUY if len(placed) % 4 < 2 else OrderSide.SELL
        order_id = await client.place_order(ACCOUNT, contract, side, OrderType.MARKET, 1)
        placed.append(order_id)
        await client.close_position(ACCOUNT, contract)
        await seen.filled_seen(order_id)
    return placed


async def settle(client: TradingClient, seen: Seen, placed: list[int], start: datetime) -> None:
    """Wait until every placed order was seen Filled and every fill REST knows of was seen."""
    fill_ids = {fill.id for fill in await client.search_trades(ACCOUNT, start)}
    order_ids = set(placed)
    await until(
        lambda: seen.filled >= order_ids and seen.fills >= fill_ids, "the events of every order"
    )


async def drop_both_hubs(
    sim: SimServer, client: TradingClient, seen: Seen, contract: str
) -> list[int]:
    """Drop both hub connections, trade while the user hub is down, wait until both are back.

    Returns the order placed meanwhile: its events reach the reader only through recovery.
    """
    before = seen.disconnects.copy()
    sim.faults.drop_hub_after = 1  # the market hub drops after its next push
    sim.faults.hubs_down = {"user"}  # the user hub drops and stays down
    await until(lambda: all(seen.disconnects[h] > before[h] for h in HUBS), "both hubs dropped")
    sim.faults.drop_hub_after = None
    order_id = await client.place_order(ACCOUNT, contract, OrderSide.BUY, OrderType.MARKET, 1)
    await client.close_position(ACCOUNT, contract)
    sim.faults.hubs_down = set()
    await anyio.sleep(0.3)  # a drop decided before the reset has reached the reader by now
    await until(
        lambda: (
            all(isinstance(seen.last.get(h), Resubscribed) for h in HUBS) and user_hub_ready(sim)
        ),
        "both hubs resubscribed",
    )
    return [order_id]


def memory(*excluded: str) -> tuple[int, int]:
    """Traced bytes now: in all, and allocated outside the simulator (and the ``excluded`` files).

    The decoding caches (bounded, emptied by design when full) are emptied first so that how full
    they happen to be does not count. An allocation counts as the simulator's when one of its
    innermost frames is in the simulator's package; a misattribution can only count against the
    client side.
    """
    jsoncodec._DECIMALS.clear()
    wire._TIMESTAMPS.clear()
    gc.collect()
    snapshot = tracemalloc.take_snapshot()
    outside = snapshot.filter_traces(
        [tracemalloc.Filter(False, pattern, all_frames=True) for pattern in (SIMULATOR, *excluded)]
    )
    return sum(t.size for t in snapshot.traces), sum(t.size for t in outside.traces)


async def traced(run: Callable[[], Awaitable[None]]) -> None:
    """Run ``run()`` with allocations traced (``TRACE_FRAMES`` deep)."""
    tracemalloc.start(TRACE_FRAMES)
    try:
        await run()
    finally:
        tracemalloc.stop()


async def test_soak_trading_market_data_and_reconnects() -> None:
    await traced(soak)


async def soak() -> None:
    start = datetime.now(UTC) - timedelta(seconds=1)
    config = SimConfig(rate=RATE, budgets=dict(UNLIMITED))
    async with SimServer(config) as sim:
        client = TradingClient.for_simulator(
            sim.api_url, DEFAULT_USERNAME, DEFAULT_API_KEY, budgets=UNLIMITED
        )
        async with client:
            contracts = [(await client.resolve_contract(s)).id for s in ("MES", "MNQ")]
            seen = Seen()
            placed: list[int] = []
            market_per_cycle: list[int] = []
            async with client.stream(config=STREAM) as stream, anyio.create_task_group() as tg:
                tg.start_soon(read, stream, seen)
                await stream.subscribe_user(ACCOUNT)
                for contract in contracts:
                    await stream.subscribe_market(contract, quotes=True, trades=True, depth=True)
                await until(
                    lambda: (
                        seen.subscribed["user"] == 4
                        and seen.subscribed["market"] == 6
                        and user_hub_ready(sim)
                    ),
                    "subscribed",
                )
                baseline, warmed_up = (0, 0), 0
                for cycle in range(CYCLES):
                    market_before = seen.market
                    placed += await trade(client, seen, contracts, TRADE_SECONDS)
                    await settle(client, seen, placed, start)
                    market_per_cycle.append(seen.market - market_before)
                    placed += await drop_both_hubs(sim, client, seen, contracts[0])
                    if cycle == 0:  # the warm-up: connections, caches and buffers in place
                        baseline = memory()
                        warmed_up = len(placed)
                end = memory()
                orders = await client.search_orders(ACCOUNT, start)
                fills = await client.search_trades(ACCOUNT, start)
                await settle(client, seen, placed, start)  # the last drop's order too
                assert stream.callback_errors == 0
                stats = stream.stats
                kinds = seen.kinds.copy()
                await stream.aclose()

    # Every order of the account: placed here, or the closing orders the simulator made.
    assert len(placed) >= CYCLES * (MIN_ROUND_TRIPS + 1)
    assert len(orders) == 2 * len(placed)
    assert all(order.status is OrderStatus.FILLED for order in orders)
    assert set(placed) <= seen.filled
    assert {order.id for order in orders} <= seen.filled
    assert len(fills) >= len(orders)
    assert {fill.id for fill in fills} <= seen.fills
    # Reconnects: each hub dropped and came back every cycle, with nothing lost in between.
    for hub in HUBS:
        assert seen.disconnects[hub] >= CYCLES
        assert seen.resubscribed[hub] >= CYCLES
    assert kinds[StreamStopped.__name__] == 0
    assert kinds[EventDropped.__name__] == 0
    assert stats.resyncs >= CYCLES + 1  # the first subscription, then after every drop
    assert seen.recovered > 0
    assert all(count > 0 for count in market_per_cycle)
    # Memory: flat after the warm-up cycle.
    assert end[0] - baseline[0] < MAX_GROWTH, (baseline, end)
    # The test's own id sets grow with the round trips a machine manages (a set's table doubles
    # in one step), so the bound follows the round trips rather than the baseline.
    allowance = CLIENT_GROWTH_ALLOWANCE + CLIENT_GROWTH_PER_ROUND_TRIP * (len(placed) - warmed_up)
    assert end[1] - baseline[1] < allowance, (baseline, end, len(placed) - warmed_up)
