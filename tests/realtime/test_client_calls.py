"""The client's calls against the simulator, written once and run on asyncio, trio and blocking."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

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
from tradeforge_sim.server import SimServer

from .facade import client_only

pytestmark = pytest.mark.anyio
ACCOUNT = 20258288
BUY, MARKET, LIMIT = OrderSide.BUY, OrderType.MARKET, OrderType.LIMIT


async def test_reads(runtime: str) -> None:
    async with SimServer() as sim, client_only(runtime, sim) as face:
        call = face.client_call
        accounts = await call("get_accounts")
        assert [a.id for a in accounts] == [20258288, 20258289]
        mes = await call("resolve_contract", "MES")
        assert mes.symbol_id == "F.US.MES"
        assert await call("resolve_contract", "mes") is mes  # cached
        es = await call("resolve_contract", "ES")
        assert es.symbol_id == "F.US.EP"
        assert await call("get_contract", mes.id) == mes
        assert mes in await call("get_available_contracts")
        assert any(c.id == mes.id for c in await call("search_contracts", "MES"))
        with pytest.raises(ProviderError, match="no active contract for NOPE"):
            await call("resolve_contract", "NOPE")
        assert await call("get_open_positions", ACCOUNT) == []
        assert await call("get_open_orders", ACCOUNT) == []
        assert await call("search_trades", ACCOUNT, datetime.now(UTC) - timedelta(hours=1)) == []


async def test_bars_page_past_the_gateway_s_answer_size(runtime: str) -> None:
    async with SimServer() as sim, client_only(runtime, sim) as face:
        mes = await face.client_call("resolve_contract", "MES")
        end = datetime.now(UTC).replace(microsecond=0)
        bars = await face.client_call(
            "get_bars", mes.id, BarUnit.SECOND, 1, start=end - timedelta(hours=12), end=end,
            limit=25_000,
        )  # fmt: skip
        assert len(bars) == 25_000
        times = [b.time for b in bars]
        assert times == sorted(set(times))
        assert times[-1] <= end
        few = await face.client_call(
            "get_bars", mes.id, BarUnit.HOUR, 1, start=end - timedelta(hours=5), end=end
        )
        assert 4 <= len(few) <= 6


async def test_order_lifecycle(runtime: str) -> None:
    async with SimServer() as sim, client_only(runtime, sim) as face:
        call = face.client_call
        mes = await call("resolve_contract", "MES")
        order_id = await call("place_order", ACCOUNT, mes.id, BUY, MARKET, 2)
        order = await call("get_order", ACCOUNT, order_id)
        assert order.status is OrderStatus.FILLED
        assert order.custom_tag is not None  # every order can be found again
        assert order.custom_tag.startswith("tf-")
        (position,) = await call("get_open_positions", ACCOUNT)
        assert position.size == 2
        price = (position.average_price // mes.tick_size) * mes.tick_size - 50
        resting = await call(
            "place_order", ACCOUNT, mes.id, BUY, LIMIT, 1, limit_price=price, custom_tag="mine"
        )
        await call("modify_order", ACCOUNT, resting, limit_price=price - 1)
        assert (await call("get_order", ACCOUNT, resting)).limit_price == Decimal(price - 1)
        await call("cancel_order", ACCOUNT, resting)
        await call("partial_close_position", ACCOUNT, mes.id, 1)
        await call("close_position", ACCOUNT, mes.id)
        assert await call("get_open_positions", ACCOUNT) == []
        page = await call("query_orders", OrderQuery(ACCOUNT, include_total_count=True))
        assert page.total_count == 4
        since = datetime.now(UTC) - timedelta(minutes=5)
        assert len(await call("search_orders", ACCOUNT, since)) == 4
        fills = await call("search_trades", ACCOUNT, since)
        assert sum(f.size for f in fills) == 4


async def test_reads_are_retried_but_writes_never(runtime: str) -> None:
    retry = RetryPolicy(max_attempts=3, base_delay=0.01)
    async with SimServer() as sim, client_only(runtime, sim, retry=retry) as face:
        call = face.client_call
        mes = await call("resolve_contract", "MES")
        sim.faults.rest_statuses.extend([503, 429])
        assert await call("get_accounts")  # two failures, then the answer
        sim.faults.rest_statuses.extend([503, 503, 503])
        with pytest.raises(ServerError):
            await call("get_accounts")
        sim.faults.rest_statuses.append(429)
        with pytest.raises(RateLimited):
            await call("place_order", ACCOUNT, mes.id, BUY, MARKET, 1)
        assert await call("get_open_positions", ACCOUNT) == []  # the 429 was not executed
        sim.faults.rest_statuses.append(500)
        with pytest.raises(OrderUncertain) as uncertain:
            await call("place_order", ACCOUNT, mes.id, BUY, MARKET, 1)
        assert uncertain.value.custom_tag is not None
        # The 500 came before the exchange: once the window has passed it is known not placed.
        verdict = await call("reconcile", uncertain.value, window=0.3)
        assert verdict.outcome is Outcome.NOT_APPLIED
        assert verdict.order is None


async def test_token_expiry_is_handled_with_one_relogin(runtime: str) -> None:
    async with SimServer() as sim, client_only(runtime, sim) as face:
        await face.client_call("get_accounts")
        first = face.client.token
        sim.expire_tokens()
        assert await face.client_call("get_accounts")
        assert face.client.token != first


async def test_bad_credentials(runtime: str) -> None:
    async with SimServer() as sim, client_only(runtime, sim, api_key="wrong") as face:
        with pytest.raises(AuthenticationError) as refused:
            await face.client_call("get_accounts")
        assert refused.value.code_name == "InvalidCredentials"


async def test_connection_lost_during_placement_is_uncertain_and_reconcile_finds_it(
    runtime: str,
) -> None:
    async with SimServer() as sim, client_only(runtime, sim) as face:
        call = face.client_call
        mes = await call("resolve_contract", "MES")
        sim.faults.rest_drops = 1  # the order is placed, the answer is lost with the connection
        with pytest.raises(OrderUncertain) as uncertain:
            await call("place_order", ACCOUNT, mes.id, BUY, MARKET, 1)
        verdict = await call("reconcile", uncertain.value)
        assert verdict.applied
        found = verdict.order
        assert found is not None
        assert found.status is OrderStatus.FILLED
        assert len(await call("get_open_positions", ACCOUNT)) == 1  # placed once, never twice
        sim.faults.rest_drops = 1  # a read whose answer is lost is simply asked again
        assert await call("get_accounts")
