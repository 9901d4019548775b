"""A Combine account on the simulator over 127.0.0.1, as the library's client sees it; the
simulator's clock is a test's, so the trading day and the session turn when the test says."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal

import anyio
import pytest

from tradeforge_anyio import TradingClient
from tradeforge_proto import AccountUpdated, OrderSide, OrderType, ProviderError
from tradeforge_proto.rules import OUTSIDE_HOURS, Hours, TradingCalendar
from tradeforge_sim import SimConfig, SimServer, accounts_of

pytestmark = pytest.mark.anyio
ACCOUNT = 20258288
WEDNESDAY = datetime(2025, 11, 26, 15, 0, tzinfo=UTC).timestamp()  # 09:00 Chicago
SATURDAY = datetime(2025, 11, 29, 15, 0, tzinfo=UTC).timestamp()
EVENING = datetime(2025, 11, 26, 23, 30, tzinfo=UTC).timestamp()  # 17:30 Chicago: the next day
SAFETY = 30.0


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Clock:
    """The simulator's time, moved only by the test."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@asynccontextmanager
async def combine(
    clock: Clock, hours: Hours = Hours.ALWAYS
) -> AsyncIterator[tuple[SimServer, TradingClient]]:
    config = SimConfig(accounts=accounts_of(["50K"]), calendar=TradingCalendar(hours))
    async with (
        SimServer(config, clock=clock) as sim,
        TradingClient.for_simulator(sim.api_url, config.username, config.api_key) as client,
    ):
        yield sim, client


def crash(sim: SimServer, contract_id: str, points: int) -> None:
    """Move the simulated market down by ``points`` at once."""
    simulation = sim.simulation
    touch = simulation.market.touch(contract_id)
    bid = touch.bid - points
    simulation.exchange.set_market(
        contract_id,
        bid=bid,
        bid_size=50,
        ask=bid + touch.ask - touch.bid,
        ask_size=50,
        last=bid,
        now=simulation.exchange.clock,
    )
    simulation.publish_user_events()


async def test_an_order_outside_the_session_is_refused() -> None:
    async with combine(Clock(SATURDAY), Hours.CME) as (_, client):
        mes = await client.resolve_contract("MES")
        with pytest.raises(ProviderError) as refused:
            await client.place_order(ACCOUNT, mes.id, OrderSide.BUY, OrderType.MARKET)
        assert refused.value.code == 2
        assert refused.value.message == OUTSIDE_HOURS


async def test_a_daily_loss_breach_flattens_disables_and_is_announced_until_the_next_day() -> None:
    clock = Clock(WEDNESDAY)
    async with combine(clock) as (sim, client), client.stream() as stream:
        es = await client.resolve_contract("ES")
        await stream.subscribe_user(ACCOUNT)
        await client.place_order(ACCOUNT, es.id, OrderSide.BUY, OrderType.MARKET, size=4)
        crash(sim, es.id, 6)  # four ES lose $200 a point: past $1,000, short of $2,000
        with anyio.fail_after(SAFETY):  # a safety net: the event is on its way
            async for event in stream:
                if isinstance(event, AccountUpdated) and not event.account.can_trade:
                    break
        assert await client.get_open_positions(ACCOUNT) == []
        (account,) = await client.get_accounts()
        assert account.can_trade is False
        assert account.balance < Decimal(49_000)
        mes = await client.resolve_contract("MES")
        with pytest.raises(ProviderError) as refused:
            await client.place_order(ACCOUNT, mes.id, OrderSide.BUY, OrderType.MARKET)
        assert refused.value.message is not None
        assert refused.value.message.startswith("Daily loss limit:")
        clock.now = EVENING
        with anyio.fail_after(SAFETY):
            async for event in stream:
                if isinstance(event, AccountUpdated) and event.account.can_trade:
                    break
        await client.place_order(ACCOUNT, mes.id, OrderSide.BUY, OrderType.MARKET)
        assert [p.size for p in await client.get_open_positions(ACCOUNT)] == [1]


async def test_a_max_loss_breach_closes_the_account() -> None:
    async with combine(Clock(WEDNESDAY)) as (sim, client):
        es = await client.resolve_contract("ES")
        await client.place_order(ACCOUNT, es.id, OrderSide.BUY, OrderType.MARKET, size=5)
        crash(sim, es.id, 9)  # five ES, nine points: over $2,000
        assert await client.get_accounts() == []  # no longer an active account
        (closed,) = await client.get_accounts(only_active=False)
        assert closed.can_trade is False
        with pytest.raises(ProviderError) as refused:
            await client.place_order(ACCOUNT, es.id, OrderSide.BUY, OrderType.MARKET)
        assert refused.value.message is not None
        assert refused.value.message.startswith("Maximum loss limit:")
