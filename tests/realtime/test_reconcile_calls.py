"""Reconciling uncertain changes against the simulator, on asyncio, trio and blocking: never "not
applied" while one may land."""

from __future__ import annotations

from decimal import Decimal

import anyio
import pytest

from tradeforge_proto.core import (
    Change,
    OrderSide,
    OrderStatus,
    OrderType,
    OrderUncertain,
)
from tradeforge_proto.reconcile import Outcome
from tradeforge_sim.server import SimServer

from .facade import Face, client_only

pytestmark = pytest.mark.anyio
ACCOUNT = 20258288
SLOW = 1.5  # the simulator answers after this long (a margin a busy machine keeps)...
TIMEOUT = 0.5  # ...and the client stops waiting after this long


async def _far_limit(face: Face, contract_id: str, tag: str) -> int:
    """A buy limit far below the market: it stays working."""
    order_id: int = await face.client_call(
        "place_order",
        ACCOUNT,
        contract_id,
        OrderSide.BUY,
        OrderType.LIMIT,
        1,
        limit_price=1000,
        custom_tag=tag,
    )
    return order_id


async def test_placements_still_in_flight_are_found_never_reported_as_not_placed(
    runtime: str,
) -> None:
    async with SimServer() as sim, client_only(runtime, sim, read_timeout=TIMEOUT) as face:
        mes = await face.client_call("resolve_contract", "MES")
        await face.client_call("get_accounts")
        verdicts = []
        for n in range(4):
            sim.faults.rest_delay = SLOW
            with pytest.raises(OrderUncertain) as uncertain:
                await _far_limit(face, mes.id, f"flight-{n}")
            sim.faults.rest_delay = 0.0  # lookups are answered at once...
            assert uncertain.value.change is Change.PLACE
            # ...while the simulator still works on the placement.
            verdicts.append(await face.client_call("reconcile", uncertain.value))
        assert [v.outcome for v in verdicts] == [Outcome.APPLIED] * 4
        tags = [v.order.custom_tag for v in verdicts if v.order]
        assert tags == [f"flight-{n}" for n in range(4)]
        working = await face.client_call("get_open_orders", ACCOUNT)
        assert sorted(o.custom_tag or "" for o in working) == [f"flight-{n}" for n in range(4)]


async def test_without_waiting_an_order_in_flight_is_unknown_or_found_but_never_not_placed(
    runtime: str,
) -> None:
    async with SimServer() as sim, client_only(runtime, sim, read_timeout=TIMEOUT) as face:
        mes = await face.client_call("resolve_contract", "MES")
        await face.client_call("get_accounts")
        sim.faults.rest_delay = SLOW
        with pytest.raises(OrderUncertain) as uncertain:
            await _far_limit(face, mes.id, "quick-look")
        sim.faults.rest_delay = 0.0
        quick = await face.client_call("reconcile", uncertain.value, wait=False)
        assert quick.outcome in (Outcome.UNKNOWN, Outcome.APPLIED)
        assert (await face.client_call("reconcile", uncertain.value)).applied


async def test_a_placement_that_never_reached_the_exchange_is_not_applied_after_the_window(
    runtime: str,
) -> None:
    async with SimServer() as sim, client_only(runtime, sim) as face:
        mes = await face.client_call("resolve_contract", "MES")
        sim.faults.rest_statuses.append(500)  # refused before the exchange saw it
        with pytest.raises(OrderUncertain) as uncertain:
            await _far_limit(face, mes.id, "never")
        early = await face.client_call("reconcile", uncertain.value, wait=False, window=60)
        assert early.outcome is Outcome.UNKNOWN  # it could still land for a minute
        assert "may still land" in early.reason
        late = await face.client_call("reconcile", uncertain.value, window=0.3)
        assert late.outcome is Outcome.NOT_APPLIED
        assert await face.client_call("get_open_orders", ACCOUNT) == []


async def test_an_uncertain_cancel_is_reconciled_by_the_order_state(runtime: str) -> None:
    async with SimServer() as sim, client_only(runtime, sim, read_timeout=TIMEOUT) as face:
        mes = await face.client_call("resolve_contract", "MES")
        order_id = await _far_limit(face, mes.id, "to-cancel")
        sim.faults.rest_delay = SLOW
        with pytest.raises(OrderUncertain) as uncertain:
            await face.client_call("cancel_order", ACCOUNT, order_id)
        sim.faults.rest_delay = 0.0
        assert uncertain.value.change is Change.CANCEL
        assert uncertain.value.order_id == order_id
        verdict = await face.client_call("reconcile", uncertain.value)
        assert verdict.outcome is Outcome.APPLIED
        assert verdict.order is not None
        assert verdict.order.status is OrderStatus.CANCELLED


async def test_a_cancel_that_never_landed_is_not_applied_and_the_order_still_works(
    runtime: str,
) -> None:
    async with SimServer() as sim, client_only(runtime, sim) as face:
        mes = await face.client_call("resolve_contract", "MES")
        order_id = await _far_limit(face, mes.id, "keep")
        sim.faults.rest_statuses.append(500)
        with pytest.raises(OrderUncertain) as uncertain:
            await face.client_call("cancel_order", ACCOUNT, order_id)
        verdict = await face.client_call("reconcile", uncertain.value, window=0.3)
        assert verdict.outcome is Outcome.NOT_APPLIED
        assert verdict.order is not None
        assert verdict.order.status is OrderStatus.OPEN


async def test_an_uncertain_modify_is_reconciled_by_the_order_fields(runtime: str) -> None:
    async with SimServer() as sim, client_only(runtime, sim, read_timeout=TIMEOUT) as face:
        mes = await face.client_call("resolve_contract", "MES")
        order_id = await _far_limit(face, mes.id, "to-modify")
        sim.faults.rest_delay = SLOW
        with pytest.raises(OrderUncertain) as uncertain:
            await face.client_call("modify_order", ACCOUNT, order_id, size=2, limit_price="1001.25")
        sim.faults.rest_delay = 0.0
        verdict = await face.client_call("reconcile", uncertain.value)
        assert verdict.outcome is Outcome.APPLIED
        assert verdict.order is not None
        assert (verdict.order.size, verdict.order.limit_price) == (2, Decimal("1001.25"))


async def test_a_modify_that_never_landed_is_not_applied(runtime: str) -> None:
    async with SimServer() as sim, client_only(runtime, sim) as face:
        mes = await face.client_call("resolve_contract", "MES")
        order_id = await _far_limit(face, mes.id, "unchanged")
        sim.faults.rest_statuses.append(500)
        with pytest.raises(OrderUncertain) as uncertain:
            await face.client_call("modify_order", ACCOUNT, order_id, size=3)
        verdict = await face.client_call("reconcile", uncertain.value, window=0.3)
        assert verdict.outcome is Outcome.NOT_APPLIED
        assert verdict.order is not None
        assert verdict.order.size == 1


async def test_uncertain_closes_are_reconciled_by_their_order_or_the_position(runtime: str) -> None:
    async with SimServer() as sim, client_only(runtime, sim, read_timeout=TIMEOUT) as face:
        mes = await face.client_call("resolve_contract", "MES")
        await face.client_call("place_order", ACCOUNT, mes.id, OrderSide.BUY, OrderType.MARKET, 3)
        sim.faults.rest_delay = SLOW
        with pytest.raises(OrderUncertain) as partial:
            await face.client_call("partial_close_position", ACCOUNT, mes.id, 1)
        sim.faults.rest_delay = 0.0
        assert partial.value.change is Change.PARTIAL_CLOSE
        assert partial.value.size == 1
        reduced = await face.client_call("reconcile", partial.value)
        assert reduced.applied
        assert reduced.order is not None
        assert reduced.order.size == 1
        sim.faults.rest_delay = SLOW
        with pytest.raises(OrderUncertain) as close:
            await face.client_call("close_position", ACCOUNT, mes.id)
        sim.faults.rest_delay = 0.0
        closed = await face.client_call("reconcile", close.value)
        assert closed.applied
        assert "no position is left" in closed.reason
        assert await face.client_call("get_open_positions", ACCOUNT) == []


async def test_a_close_that_never_landed_is_not_applied_and_the_position_stays(
    runtime: str,
) -> None:
    async with SimServer() as sim, client_only(runtime, sim) as face:
        mes = await face.client_call("resolve_contract", "MES")
        await face.client_call("place_order", ACCOUNT, mes.id, OrderSide.BUY, OrderType.MARKET, 1)
        sim.faults.rest_statuses.append(500)
        with pytest.raises(OrderUncertain) as uncertain:
            await face.client_call("close_position", ACCOUNT, mes.id)
        verdict = await face.client_call("reconcile", uncertain.value, window=0.3)
        assert verdict.outcome is Outcome.NOT_APPLIED
        assert [p.size for p in await face.client_call("get_open_positions", ACCOUNT)] == [1]


async def test_lookups_that_keep_failing_end_unknown_not_applied(runtime: str) -> None:
    async with SimServer() as sim, client_only(runtime, sim) as face:
        mes = await face.client_call("resolve_contract", "MES")
        sim.faults.rest_statuses.append(500)
        with pytest.raises(OrderUncertain) as uncertain:
            await _far_limit(face, mes.id, "dark")
        sim.faults.rest_statuses.extend([503] * 200)  # every lookup fails for a while
        with anyio.fail_after(30):
            verdict = await face.client_call("reconcile", uncertain.value, window=0.2)
        sim.faults.rest_statuses.clear()
        assert verdict.outcome is Outcome.UNKNOWN
        assert "lookup failed" in verdict.reason
