"""No fill is lost and none is delivered twice: a busy reader, a stalled one, a hub outage.

Against the simulator on 127.0.0.1, on asyncio, trio and the blocking runtime.
"""

from __future__ import annotations

from collections import Counter

import pytest

from tradeforge_proto.core.enums import OrderStatus
from tradeforge_proto.core.events import (
    Disconnected,
    FillReceived,
    OrderUpdated,
    Reconnecting,
    Resynced,
    StreamEvent,
)
from tradeforge_proto.realtime import StreamConfig
from tradeforge_sim.server import SimServer

from .facade import ACCOUNT, Face, opened

pytestmark = pytest.mark.anyio

# The user events of one market order, as the gateway sends them: Pending, the fill, Filled.
PER_ORDER = 3


def fills(events: list[StreamEvent]) -> list[FillReceived]:
    return [e for e in events if isinstance(e, FillReceived)]


def order_updates(events: list[StreamEvent], ids: set[int]) -> list[OrderUpdated]:
    return [e for e in events if isinstance(e, OrderUpdated) and e.order.id in ids]


def filled(events: list[StreamEvent], ids: set[int]) -> set[int]:
    return {e.order.id for e in order_updates(events, ids) if e.order.status is OrderStatus.FILLED}


def assert_once_and_in_order(events: list[StreamEvent], placed: list[int]) -> None:
    """Each order's fill once, fills in placing order, each order's states once and in order."""
    ids = set(placed)
    ours = [f for f in fills(events) if f.fill.order_id in ids]
    assert Counter(f.fill.id for f in ours).most_common(1)[0][1] == 1
    assert [f.fill.order_id for f in ours] == placed
    states = Counter((e.order.id, e.order.status) for e in order_updates(events, ids))
    assert max(states.values()) == 1, states
    for order_id in placed:
        seen = [e.order.status for e in order_updates(events, {order_id})]
        assert seen[-1] is OrderStatus.FILLED
        assert seen.index(OrderStatus.FILLED) == len(seen) - 1  # nothing after its last state


async def all_filled(face: Face, placed: list[int]) -> bool:
    orders = await face.client_call("get_open_orders", ACCOUNT)
    return not {o.id for o in orders} & set(placed)


def pushed_everything(sim: SimServer) -> bool:
    """Every user-hub push of the simulator has left it (it is in sockets or read)."""
    return all(not s.outbox for s in sim.simulation.sessions if s.hub == "user")


async def test_a_busy_reader_loses_no_fill(runtime: str) -> None:
    async with SimServer() as sim, opened(runtime, sim, max_events=8) as face:
        mes = (await face.client_call("resolve_contract", "MES")).id
        await face.stream_call("subscribe_user", ACCOUNT)
        # The reader is busy (as a bot is during REST calls) while ten orders fill.
        placed = [await face.buy(mes) for _ in range(10)]
        await face.until(lambda: pushed_everything(sim), "the simulator pushed every event")
        await face.until(lambda: face.stream.stats.pauses >= 1, "reading paused")
        events = await face.read_until(
            lambda seen: (
                len(filled(seen, set(placed))) == len(placed)
                and len({f.fill.order_id for f in fills(seen)} & set(placed)) == len(placed)
            ),
            "every fill and every Filled order",
        )
        assert_once_and_in_order(events, placed)
        stats = face.stream.stats
        assert stats.held == 0  # paused, never closed: nothing had to be recovered
        assert not any(isinstance(e, Disconnected) for e in events)
        # Memory stays bounded: the queue never held much more than its limit.
        assert stats.high_water <= 8 + 8, stats


async def test_a_reader_stalled_past_the_bound_gets_every_fill_through_recovery(
    runtime: str,
) -> None:
    config = StreamConfig(max_pause=0.5, backoff_cap=1.0)
    async with SimServer() as sim, opened(runtime, sim, max_events=8, config=config) as face:
        mes = (await face.client_call("resolve_contract", "MES")).id
        await face.stream_call("subscribe_user", ACCOUNT)
        placed = [await face.buy(mes) for _ in range(3)]
        await face.until(lambda: face.stream.stats.held >= 1, "the hub closed for the reader")
        placed += [await face.buy(mes) for _ in range(3)]  # while nobody listens
        ids = set(placed)
        events = await face.read_until(
            lambda seen: (
                any(isinstance(e, Resynced) for e in seen)
                and len(filled(seen, ids)) == len(ids)
                and {f.fill.order_id for f in fills(seen)} >= ids
            ),
            "every fill after the reader came back",
        )
        assert_once_and_in_order(events, placed)
        disconnects = [e for e in events if isinstance(e, Disconnected)]
        assert disconnects
        assert "reader" in disconnects[0].reason
        assert disconnects[0].will_reconnect
        recovered = [f for f in fills(events) if f.recovered]
        assert {f.fill.order_id for f in recovered} >= set(placed[3:])
        assert face.stream.stats.held == 1
        assert face.stream.stats.resyncs >= 2  # the first subscription, and after the hold


async def test_fills_during_a_user_hub_outage_arrive_once_recovered_before_live_events(
    runtime: str,
) -> None:
    config = StreamConfig(backoff_cap=0.5)
    async with SimServer() as sim, opened(runtime, sim, config=config) as face:
        mes = (await face.client_call("resolve_contract", "MES")).id
        await face.stream_call("subscribe_user", ACCOUNT)
        before = [await face.buy(mes)]
        await face.read_until(lambda seen: filled(seen, set(before)), "the first fill")
        sim.faults.hubs_down = {"user"}
        await face.read_until(
            lambda seen: any(isinstance(e, Disconnected) for e in seen), "the user hub down"
        )
        outage = [await face.buy(mes) for _ in range(3)]
        assert await all_filled(face, outage)
        # Down for a while: the stream keeps trying, the server keeps refusing.
        mark = len(face.seen)
        await face.read_until(
            lambda seen: sum(isinstance(e, Reconnecting) for e in seen[mark:]) >= 3,
            "three refused attempts",
        )
        mark = len(face.seen)
        sim.faults.hubs_down = set()
        await face.read_until(
            lambda seen: any(isinstance(e, Resynced) for e in seen[mark:]), "resynced"
        )
        after = [await face.buy(mes)]
        events = await face.read_until(
            lambda seen: filled(seen, set(after)) == set(after), "a live fill after the outage"
        )
        assert_once_and_in_order(events, before + outage + after)
        resynced_at = next(i for i, e in enumerate(events) if i >= mark and isinstance(e, Resynced))
        for order_id in outage:
            (fill,) = [f for f in fills(events) if f.fill.order_id == order_id]
            assert fill.recovered
            assert events.index(fill) < resynced_at  # before the live events that follow
        (live,) = [f for f in fills(events) if f.fill.order_id == after[0]]
        assert not live.recovered
        assert events.index(live) > resynced_at
        resynced = events[resynced_at]
        assert isinstance(resynced, Resynced)
        assert resynced.fills == len(outage)
