"""A client with a risk guard checks each order against the rules before sending it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import anyio
import anyio.to_thread
import attrs
import pytest

from tradeforge_proto.core.enums import OrderSide, OrderType
from tradeforge_proto.core.errors import LocalProtocolError, ProviderError, RiskRejected
from tradeforge_proto.core.models import Position
from tradeforge_proto.core.operations import HttpRequest, HttpResponse
from tradeforge_proto.rules import COMBINE_50K, Rule
from tradeforge_proto.rules.guard import RiskGuard
from tradeforge_sim.server import SimServer

from .facade import Face, client_only

pytestmark = pytest.mark.anyio

ACCOUNT = 20258289
"""The simulator's 50K account."""
RULES = attrs.evolve(COMBINE_50K, max_contracts=Decimal(2))
BARS = "/api/history/retrievebars"
PLACE = "/api/order/place"
LOOKUP = "/api/contract/searchbyid"
READS = [
    "/api/account/search",
    "/api/position/searchopen",
    "/api/order/searchopen",
    "/api/trade/search",
]


def guarded(runtime: str, sim: SimServer, guard: RiskGuard | None) -> Any:
    """A client of ``runtime`` on ``sim`` holding ``guard`` (no stream)."""
    return client_only(runtime, sim, guard=guard)


def recorded(sim: SimServer, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of the REST requests the simulator answers from now on."""
    paths: list[str] = []
    answer = sim.simulation.handle_rest

    def recording(request: HttpRequest, now: float, *, peer: str = "") -> HttpResponse:
        paths.append(request.path.partition("?")[0].lower())
        return answer(request, now, peer=peer)

    monkeypatch.setattr(sim.simulation, "handle_rest", recording)
    return paths


async def order(face: Face, contract_id: str, side: OrderSide, size: int) -> int:
    order_id: int = await face.client_call(
        "place_order", ACCOUNT, contract_id, side, OrderType.MARKET, size
    )
    return order_id


async def test_the_guard_refuses_before_sending(
    runtime: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    guard = RiskGuard(RULES, ACCOUNT)
    async with SimServer() as sim, guarded(runtime, sim, guard) as face:
        assert face.client.guard is guard
        es = (await face.client_call("resolve_contract", "ES")).id
        paths = recorded(sim, monkeypatch)

        with pytest.raises(RiskRejected) as refused:
            await order(face, es, OrderSide.BUY, 3)
        verdict = refused.value.verdict
        assert verdict.rule is Rule.MAX_POSITION
        assert (verdict.limit, verdict.current, verdict.after) == (
            Decimal(2),
            Decimal(0),
            Decimal(3),
        )
        assert "max_position: limit 2, current 0, after 3" in str(refused.value)
        assert paths == [*READS, LOOKUP]  # reads only: nothing was sent
        assert await face.client_call("get_open_orders", ACCOUNT) == []

        del paths[:]
        assert await order(face, es, OrderSide.BUY, 1) > 0
        assert paths == [*READS, PLACE]  # the contract is looked up once

        async def held() -> list[Position]:
            positions: list[Position] = await face.client_call("get_open_positions", ACCOUNT)
            return positions

        with anyio.fail_after(20.0):  # a safety net: the market order fills at once
            while not (positions := await held()):
                await anyio.sleep(0.01)
        del paths[:]
        assert await order(face, es, OrderSide.BUY, 1) > 0  # marked at the latest bar's close
        assert paths == [*READS, BARS, PLACE]
        assert guard.unpriced == ()
        assert es in guard.marks
        assert positions[0].size == 1

        with anyio.fail_after(20.0):
            while (await held())[0].size < 2:
                await anyio.sleep(0.01)
        with pytest.raises(RiskRejected) as refused:
            await order(face, es, OrderSide.BUY, 1)
        assert refused.value.verdict.rule is Rule.MAX_POSITION
        assert await order(face, es, OrderSide.SELL, 2) > 0  # reducing: always allowed
        assert [p for p in paths if p == PLACE] == [PLACE, PLACE]


async def test_orders_of_other_accounts_are_not_checked(
    runtime: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    guard = RiskGuard(RULES, ACCOUNT)
    async with SimServer() as sim, guarded(runtime, sim, guard) as face:
        es = (await face.client_call("resolve_contract", "ES")).id
        paths = recorded(sim, monkeypatch)
        other = 20258288
        await face.client_call("place_order", other, es, OrderSide.BUY, OrderType.MARKET, 3)
        assert paths == [PLACE]
        assert guard.state is None


async def test_a_guard_needs_its_account(runtime: str) -> None:
    async with SimServer() as sim:
        async with guarded(runtime, sim, RiskGuard(RULES, 1)) as face:
            with pytest.raises(ProviderError, match="account 1 is not among the user's accounts"):
                await face.client_call(
                    "place_order", 1, "CON.F.US.EP.Z26", OrderSide.BUY, OrderType.MARKET
                )
        async with guarded(runtime, sim, None) as face:
            assert face.client.guard is None
            with pytest.raises(LocalProtocolError, match="no risk guard"):
                await face.client_call("refresh_guard")
