"""The blocking client reconciles like the async one: never "not applied" while one may land."""

from __future__ import annotations

import pytest

from tradeforge_proto.core import Change, OrderSide, OrderStatus, OrderType, OrderUncertain
from tradeforge_proto.reconcile import Outcome
from tradeforge_sim.auth import DEFAULT_API_KEY, DEFAULT_USERNAME
from tradeforge_sim.server import SimServer
from tradeforge_sync.client import TradingClient

from . import running_sim

ACCOUNT = 20258288
SLOW = 1.5  # the simulator answers well after the client stops waiting, even when busy
TIMEOUT = 0.5


def client_for(sim: SimServer, **options: object) -> TradingClient:
    return TradingClient.for_simulator(sim.api_url, DEFAULT_USERNAME, DEFAULT_API_KEY, **options)


def _far_limit(client: TradingClient, contract_id: str, tag: str) -> int:
    return client.place_order(
        ACCOUNT, contract_id, OrderSide.BUY, OrderType.LIMIT, 1, limit_price=1000, custom_tag=tag
    )


def test_a_placement_in_flight_is_found_and_one_never_sent_is_not_applied() -> None:
    with running_sim() as sim, client_for(sim, read_timeout=TIMEOUT) as client:
        mes = client.resolve_contract("MES")
        client.get_accounts()
        sim.faults.rest_delay = SLOW
        with pytest.raises(OrderUncertain) as in_flight:
            _far_limit(client, mes.id, "flight")
        sim.faults.rest_delay = 0.0
        found = client.reconcile(in_flight.value)
        assert found.outcome is Outcome.APPLIED
        assert found.order is not None
        assert found.order.custom_tag == "flight"
        sim.faults.rest_statuses.append(500)
        with pytest.raises(OrderUncertain) as refused:
            _far_limit(client, mes.id, "never")
        assert client.reconcile(refused.value, wait=False, window=60).unknown
        assert client.reconcile(refused.value, window=0.3).not_applied
        assert [o.custom_tag for o in client.get_open_orders(ACCOUNT)] == ["flight"]


def test_an_uncertain_cancel_is_reconciled_by_the_order_state() -> None:
    with running_sim() as sim, client_for(sim, read_timeout=TIMEOUT) as client:
        mes = client.resolve_contract("MES")
        order_id = _far_limit(client, mes.id, "to-cancel")
        sim.faults.rest_delay = SLOW
        with pytest.raises(OrderUncertain) as uncertain:
            client.cancel_order(ACCOUNT, order_id)
        sim.faults.rest_delay = 0.0
        assert uncertain.value.change is Change.CANCEL
        verdict = client.reconcile(uncertain.value)
        assert verdict.applied
        assert verdict.order is not None
        assert verdict.order.status is OrderStatus.CANCELLED
