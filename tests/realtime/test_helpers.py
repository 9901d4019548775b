"""The helpers a trader reaches for, on every runtime against the simulator: order forms,
brackets signed by side, keyword modify, flatten, P&L, and reading a live feed for a while."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import anyio
import pytest

from tradeforge_proto import Brackets
from tradeforge_proto.core.enums import OrderSide, OrderStatus, OrderType
from tradeforge_proto.core.events import QuoteUpdated
from tradeforge_proto.core.models import Order, Position
from tradeforge_sim import SimConfig, SimServer, accounts_of

from .facade import opened

pytestmark = pytest.mark.anyio
ACCOUNT = 20258288
BUY, SELL = OrderSide.BUY, OrderSide.SELL


def oco_sim() -> SimServer:
    return SimServer(SimConfig(accounts=accounts_of(["PRACTICE-150K"], auto_oco_brackets=True)))


async def test_order_forms_brackets_modify_flatten_and_pnl(runtime: str) -> None:
    async with oco_sim() as sim, opened(runtime, sim) as face:
        mes = (await face.client_call("resolve_contract", "MES")).id
        touch = sim.simulation.market.touch(mes)
        below = touch.bid - 50
        limit = await face.client_call("place_limit", ACCOUNT, mes, BUY, 2, below)
        stop = await face.client_call("place_stop", ACCOUNT, mes, BUY, 1, touch.ask + 50)
        join = await face.client_call("place_join_bid", ACCOUNT, mes)
        trail = await face.client_call("place_trailing_stop", ACCOUNT, mes, SELL, 1, below)
        orders: list[Order] = await face.client_call("get_open_orders", ACCOUNT)
        by_id = {order.id: order for order in orders}
        assert by_id[limit].limit_price == below
        assert by_id[stop].type is OrderType.STOP
        assert (by_id[join].type, by_id[join].side) == (OrderType.JOIN_BID, BUY)
        assert by_id[trail].type is OrderType.TRAILING_STOP
        await face.client_call("cancel_order", ACCOUNT, join)  # it would fill at the next dip

        await face.client_call("modify_order", ACCOUNT, limit, size=3, limit_price=below - 1)
        changed: Order = await face.client_call("get_order", ACCOUNT, limit)
        assert (changed.size, changed.limit_price) == (3, below - 1)

        entry = await face.client_call(
            "place_market",
            ACCOUNT,
            mes,
            SELL,
            1,
            brackets=Brackets.ticks(stop_loss=400, take_profit=480),  # far: the market moves
        )
        children = [
            o
            for o in await face.client_call("get_open_orders", ACCOUNT)
            if o.parent_order_id == entry
        ]
        filled: Order = await face.client_call("get_order", ACCOUNT, entry)
        assert filled.status is OrderStatus.FILLED
        assert filled.filled_price is not None
        legs = {o.type: o for o in children}
        tick = Decimal("0.25")
        reference = (filled.filled_price / tick).to_integral_value() * tick
        assert legs[OrderType.STOP].stop_price == reference + 400 * tick  # a sell's: above
        assert legs[OrderType.LIMIT].limit_price == reference - 480 * tick
        assert {o.side for o in children} == {BUY}

        (position,) = await face.client_call("get_open_positions", ACCOUNT)
        pnl = await face.client_call("unrealized_pnl", position, position.average_price - 1)
        assert pnl == Decimal(5)  # short one MES, a point lower: $5
        assert await face.client_call("day_pnl", ACCOUNT) < 0  # the fees so far

        done = await face.client_call("flatten", ACCOUNT)
        assert done.complete
        assert done.closed == (mes,)
        assert set(done.cancelled) >= {limit, stop, trail}
        assert await face.client_call("get_open_orders", ACCOUNT) == []
        positions: list[Position] = await face.client_call("get_open_positions", ACCOUNT)
        assert positions == []


async def test_a_flatten_of_one_contract_leaves_the_others(runtime: str) -> None:
    async with oco_sim() as sim, opened(runtime, sim) as face:
        mes = (await face.client_call("resolve_contract", "MES")).id
        mnq = (await face.client_call("resolve_contract", "MNQ")).id
        await face.client_call("place_market", ACCOUNT, mes, BUY)
        await face.client_call("place_market", ACCOUNT, mnq, BUY)
        done = await face.client_call("flatten", ACCOUNT, mnq)
        assert done.closed == (mnq,)
        held = [p.contract_id for p in await face.client_call("get_open_positions", ACCOUNT)]
        assert held == [mes]


async def test_events_end_after_a_duration_on_a_live_feed(runtime: str) -> None:
    async with SimServer(SimConfig(rate=50)) as sim, opened(runtime, sim) as face:
        mes = (await face.client_call("resolve_contract", "MES")).id
        await face.stream_call("subscribe_market", mes, quotes=True)
        started = anyio.current_time()
        seen = []
        if face.blocking:
            seen = await anyio.to_thread.run_sync(
                lambda: list(face.stream.events(idle_timeout=30, duration=1.0))
            )
        else:
            async for event in face.stream.events(idle_timeout=30, duration=1.0):
                seen.append(event)
        assert any(isinstance(event, QuoteUpdated) for event in seen)  # it was live
        assert anyio.current_time() - started < 25  # ended by the duration, not the idle timeout


async def test_events_end_after_an_idle_spell(runtime: str) -> None:
    async with SimServer() as sim, opened(runtime, sim) as face:
        if face.blocking:
            seen = await anyio.to_thread.run_sync(
                lambda: list(face.stream.events(idle_timeout=0.2))
            )
        else:
            seen = [event async for event in face.stream.events(idle_timeout=0.2)]
        assert seen == []  # nothing subscribed: quiet, so it ends


async def test_subscribe_market_subscribes_exactly_what_is_asked(runtime: str) -> None:
    async with SimServer() as sim, opened(runtime, sim) as face:
        mes = (await face.client_call("resolve_contract", "MES")).id
        await face.stream_call("subscribe_market", mes, quotes=True)
        channels = {sub.channel.value for sub in face.stream.subscriptions}
        assert channels == {"quotes"}


async def read_all(face: Any, **limits: float) -> list[object]:
    """Every event ``events(**limits)`` gives, on the face's runtime."""
    if face.blocking:
        events = face.stream.events(**limits)
        found: list[object] = await anyio.to_thread.run_sync(lambda: list(events))
        return found
    return [event async for event in face.stream.events(**limits)]


async def test_the_former_timeout_name_still_works_and_says_it_is_deprecated(runtime: str) -> None:
    async with SimServer() as sim, opened(runtime, sim) as face:
        with pytest.warns(DeprecationWarning, match="idle_timeout"):
            seen = await read_all(face, timeout=0.2)
        assert seen == []
