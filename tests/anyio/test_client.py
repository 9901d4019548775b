"""The async client against the simulator, on asyncio and trio."""

from __future__ import annotations

import anyio
import pytest

from tradeforge_anyio.client import TradingClient
from tradeforge_proto.core import (
    OrderSide,
    OrderStatus,
    OrderType,
    OrderUncertain,
)
from tradeforge_proto.reconcile import Outcome
from tradeforge_sim.auth import DEFAULT_API_KEY, DEFAULT_USERNAME
from tradeforge_sim.server import SimServer

pytestmark = pytest.mark.anyio
ACCOUNT = 20258288


def client_for(sim: SimServer, **options: object) -> TradingClient:
    return TradingClient.for_simulator(sim.api_url, DEFAULT_USERNAME, DEFAULT_API_KEY, **options)


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


async def test_an_interrupted_flatten_sends_nothing_after_the_change_it_cut_short():
    async with SimServer() as sim, client_for(sim) as client:
        mes = await client.resolve_contract("MES")
        resting = [
            await client.place_order(
                ACCOUNT, mes.id, OrderSide.BUY, OrderType.LIMIT, 1, limit_price=1000 + n
            )
            for n in range(3)
        ]
        real_cancel = client.cancel_order
        uncertain: OrderUncertain | None = None
        with anyio.CancelScope() as outer:

            async def cancel_then_interrupted(account_id: int, order_id: int) -> None:
                sim.faults.rest_delay = 0.5  # the answer is slow: the interruption comes first
                outer.deadline = anyio.current_time() + 0.2
                await real_cancel(account_id, order_id)

            client.cancel_order = cancel_then_interrupted  # type: ignore[method-assign]
            try:
                await client.flatten(ACCOUNT)
            except OrderUncertain as exc:
                uncertain = exc  # the cut-short cancel is unknown, not a failure in a list
        sim.faults.rest_delay = 0.0
        assert uncertain is not None
        assert uncertain.order_id == resting[0]
        still_open = {o.id for o in await client.get_open_orders(ACCOUNT)}
        assert set(resting[1:]) <= still_open  # only the first cancel was ever sent
