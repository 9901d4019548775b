"""The async client against the simulator, on asyncio and trio."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import anyio
import pytest

from tradeforge_anyio.client import TradingClient
from tradeforge_proto.calls import RetryPolicy
from tradeforge_proto.core import (
    AuthenticationError,
    BarUnit,
    OrderQuery,
    OrderSide,
    OrderStatus,
    OrderType,
    OrderUncertain,
    ProviderError,
    RateLimited,
    ServerError,
)
from tradeforge_proto.reconcile import Outcome
from tradeforge_sim.auth import DEFAULT_API_KEY, DEFAULT_USERNAME
from tradeforge_sim.server import SimServer

pytestmark = pytest.mark.anyio
ACCOUNT = 20258288


def client_for(sim: SimServer, **options: object) -> TradingClient:
    return TradingClient.for_simulator(sim.api_url, DEFAULT_USERNAME, DEFAULT_API_KEY, **options)


async def test_reads():
    async with SimServer() as sim, client_for(sim) as client:
        accounts = await client.get_accounts()
        assert [a.id for a in accounts] == [20258288, 20258289]
        mes = await client.resolve_contract("MES")
        assert mes.symbol_id == "F.US.MES"
        assert await client.resolve_contract("mes") is mes  # cached
        es = await client.resolve_contract("ES")
        assert es.symbol_id == "F.US.EP"
        assert (await client.get_contract(mes.id)) == mes
        assert mes in await client.get_available_contracts()
        assert any(c.id == mes.id for c in await client.search_contracts("MES"))
        with pytest.raises(ProviderError, match="no active contract"):
            await client.resolve_contract("NOPE")
        assert await client.get_open_positions(ACCOUNT) == []
        assert await client.get_open_orders(ACCOUNT) == []
        assert await client.search_trades(ACCOUNT, datetime.now(UTC) - timedelta(hours=1)) == []


async def test_bars_page_past_the_cap():
    async with SimServer() as sim, client_for(sim) as client:
        mes = await client.resolve_contract("MES")
        end = datetime.now(UTC).replace(microsecond=0)
        bars = await client.get_bars(
            mes.id, BarUnit.SECOND, 1, start=end - timedelta(hours=12), end=end, limit=25_000
        )
        assert len(bars) == 25_000
        times = [b.time for b in bars]
        assert times == sorted(set(times))
        assert times[-1] <= end
        few = await client.get_bars(
            mes.id, BarUnit.HOUR, 1, start=end - timedelta(hours=5), end=end
        )
        assert 4 <= len(few) <= 6


async def test_order_lifecycle():
    async with SimServer() as sim, client_for(sim) as client:
        mes = await client.resolve_contract("MES")
        order_id = await client.place_order(ACCOUNT, mes.id, OrderSide.BUY, OrderType.MARKET, 2)
        order = await client.get_order(ACCOUNT, order_id)
        assert order.status is OrderStatus.FILLED
        assert order.custom_tag is not None  # every order can be found again
        assert order.custom_tag.startswith("tf-")
        (position,) = await client.get_open_positions(ACCOUNT)
        assert position.size == 2
        price = (position.average_price // mes.tick_size) * mes.tick_size - 50
        resting = await client.place_order(
            ACCOUNT, mes.id, OrderSide.BUY, OrderType.LIMIT, 1, limit_price=price, custom_tag="mine"
        )
        await client.modify_order(ACCOUNT, resting, limit_price=price - 1)
        assert (await client.get_order(ACCOUNT, resting)).limit_price == Decimal(price - 1)
        await client.cancel_order(ACCOUNT, resting)
        await client.partial_close_position(ACCOUNT, mes.id, 1)
        await client.close_position(ACCOUNT, mes.id)
        assert await client.get_open_positions(ACCOUNT) == []
        page = await client.query_orders(OrderQuery(ACCOUNT, include_total_count=True))
        assert page.total_count == 4
        since = datetime.now(UTC) - timedelta(minutes=5)
        assert len(await client.search_orders(ACCOUNT, since)) == 4
        fills = await client.search_trades(ACCOUNT, since)
        assert sum(f.size for f in fills) == 4


async def test_reads_are_retried_but_writes_never():
    async with (
        SimServer() as sim,
        client_for(sim, retry=RetryPolicy(max_attempts=3, base_delay=0.01)) as client,
    ):
        mes = await client.resolve_contract("MES")
        sim.faults.rest_statuses.extend([503, 429])
        assert await client.get_accounts()  # two failures, then the answer
        sim.faults.rest_statuses.extend([503, 503, 503])
        with pytest.raises(ServerError):
            await client.get_accounts()
        sim.faults.rest_statuses.append(429)
        with pytest.raises(RateLimited):
            await client.place_order(ACCOUNT, mes.id, OrderSide.BUY, OrderType.MARKET, 1)
        assert await client.get_open_positions(ACCOUNT) == []  # the 429 was not executed
        sim.faults.rest_statuses.append(500)
        with pytest.raises(OrderUncertain) as uncertain:
            await client.place_order(ACCOUNT, mes.id, OrderSide.BUY, OrderType.MARKET, 1)
        assert uncertain.value.custom_tag is not None
        # The 500 came before the exchange: once the window has passed it is known not placed.
        verdict = await client.reconcile(uncertain.value, window=0.3)
        assert verdict.outcome is Outcome.NOT_APPLIED
        assert verdict.order is None


async def test_token_expiry_is_handled_with_one_relogin():
    async with SimServer() as sim, client_for(sim) as client:
        await client.get_accounts()
        first = client.token
        sim.expire_tokens()
        assert await client.get_accounts()
        assert client.token != first


async def test_bad_credentials():
    async with (
        SimServer() as sim,
        TradingClient.for_simulator(sim.api_url, DEFAULT_USERNAME, "wrong") as client,
    ):
        with pytest.raises(AuthenticationError) as refused:
            await client.get_accounts()
        assert refused.value.code_name == "InvalidCredentials"


async def test_cancelled_placement_is_uncertain_and_reconcile_finds_it():
    async with SimServer() as sim, client_for(sim) as client:
        mes = await client.resolve_contract("MES")
        await client.get_accounts()  # logged in
        sim.faults.rest_delay = 0.5
        with pytest.raises(OrderUncertain) as uncertain:
            with anyio.fail_after(0.2):
                await client.place_order(
                    ACCOUNT, mes.id, OrderSide.BUY, OrderType.MARKET, 1, custom_tag="cx-1"
                )
        sim.faults.rest_delay = 0.0
        assert uncertain.value.custom_tag == "cx-1"
        # Reconciling at once waits for the order the simulator is still working on.
        verdict = await client.reconcile(uncertain.value)
        assert verdict.outcome is Outcome.APPLIED
        found = verdict.order
        assert found is not None
        assert found.custom_tag == "cx-1"
        assert found.status is OrderStatus.FILLED


async def test_connection_lost_during_placement_is_uncertain_and_reconcile_finds_it():
    async with SimServer() as sim, client_for(sim) as client:
        mes = await client.resolve_contract("MES")
        sim.faults.rest_drops = 1  # the order is placed, the answer is lost with the connection
        with pytest.raises(OrderUncertain) as uncertain:
            await client.place_order(ACCOUNT, mes.id, OrderSide.BUY, OrderType.MARKET, 1)
        verdict = await client.reconcile(uncertain.value)
        assert verdict.applied
        found = verdict.order
        assert found is not None
        assert found.status is OrderStatus.FILLED
        assert len(await client.get_open_positions(ACCOUNT)) == 1  # placed once, never twice
        sim.faults.rest_drops = 1  # a read whose answer is lost is simply asked again
        assert await client.get_accounts()
