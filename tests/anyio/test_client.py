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
