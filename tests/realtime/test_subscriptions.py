"""A subscription call returns once the hub acknowledged it: live when it returns."""

from __future__ import annotations

import pytest

from tradeforge_proto.core.errors import SubscriptionFailed, SubscriptionTimeout
from tradeforge_proto.core.events import (
    FillReceived,
    QuoteUpdated,
    Resynced,
    Subscribed,
    SubscriptionRefused,
)
from tradeforge_proto.core.subscriptions import Subscription
from tradeforge_proto.realtime import StreamConfig, SubscriptionStatus
from tradeforge_sim.server import SimServer
from tradeforge_sim.simulation import SimConfig

from .facade import ACCOUNT, opened

pytestmark = pytest.mark.anyio
RETRY_SOON = StreamConfig(backoff_cap=0.2)


def user_subscriptions_on_the_simulator(sim: SimServer) -> set[tuple[str, object]]:
    held: set[tuple[str, object]] = set()
    for session in sim.simulation.sessions:
        if session.hub == "user":
            held |= session.subscriptions
    return held


async def test_subscribe_returns_once_acknowledged_and_an_order_placed_next_is_seen(
    runtime: str,
) -> None:
    async with SimServer() as sim, opened(runtime, sim) as face:
        mes = (await face.client_call("resolve_contract", "MES")).id
        await face.stream_call("subscribe_user", ACCOUNT)
        subs = Subscription.user(ACCOUNT)
        assert all(face.stream.session.status(s) is SubscriptionStatus.ACTIVE for s in subs)
        assert {("orders", ACCOUNT), ("trades", ACCOUNT), ("positions", ACCOUNT)} <= (
            user_subscriptions_on_the_simulator(sim)
        )
        # Already in the queue, before any waiting: the acknowledgements and the first resync.
        queued = []
        while (event := await face.next(0)) is not None:
            queued.append(event)
        assert sum(isinstance(e, Subscribed) for e in queued) == len(subs)
        assert isinstance(queued[-1], Resynced)
        order_id = await face.buy(mes)  # placed right after: its fill is never missed
        events = await face.read_until(
            lambda seen: any(
                isinstance(e, FillReceived) and e.fill.order_id == order_id for e in seen
            ),
            "the fill",
        )
        (fill,) = [e for e in events if isinstance(e, FillReceived)]
        assert not fill.recovered
        await face.stream_call("subscribe_market", mes, quotes=True, trades=False)
        assert face.stream.session.status(Subscription.quotes(mes)) is SubscriptionStatus.ACTIVE
        await face.read_until(lambda seen: isinstance(seen[-1], QuoteUpdated), "a quote")


async def test_wait_false_returns_before_the_acknowledgement(runtime: str) -> None:
    async with SimServer() as sim, opened(runtime, sim, config=RETRY_SOON) as face:
        mes = (await face.client_call("resolve_contract", "MES")).id
        sim.faults.hubs_down = {"market"}  # no acknowledgement can come
        await face.stream_call("subscribe_market", mes, quotes=True, wait=False)
        assert face.stream.session.status(Subscription.quotes(mes)) is SubscriptionStatus.PENDING
        sim.faults.hubs_down = set()
        await face.stream_call("subscribe_market", mes, quotes=True)  # now wait for it
        assert face.stream.session.status(Subscription.quotes(mes)) is SubscriptionStatus.ACTIVE


async def test_an_unknown_contract_raises_subscription_failed(runtime: str) -> None:
    async with SimServer() as sim, opened(runtime, sim) as face:
        with pytest.raises(SubscriptionFailed, match="unknown contract") as caught:
            await face.stream_call("subscribe_market", "CON.F.US.NOPE.Z99", quotes=True)
        assert caught.value.subscription == Subscription.quotes("CON.F.US.NOPE.Z99")
        refused = await face.read_until(
            lambda seen: any(isinstance(e, SubscriptionRefused) for e in seen), "the refusal"
        )
        assert any(isinstance(e, SubscriptionRefused) for e in refused)
        assert face.stream.subscriptions == ()
        # The stream goes on: a good subscription still works.
        mes = (await face.client_call("resolve_contract", "MES")).id
        await face.stream_call("subscribe_market", mes, quotes=True)


async def test_a_subscription_never_acknowledged_times_out_and_stays_wanted(
    runtime: str,
) -> None:
    async with SimServer() as sim, opened(runtime, sim) as face:
        mes = (await face.client_call("resolve_contract", "MES")).id
        sim.faults.hubs_down = {"market"}  # no acknowledgement can come
        with pytest.raises(SubscriptionTimeout, match="stays wanted"):
            await face.stream_call("subscribe", Subscription.quotes(mes), timeout=0.2)
        assert face.stream.subscriptions == (Subscription.quotes(mes),)


async def test_subscriptions_made_one_after_another_before_reading_all_return(
    runtime: str,
) -> None:
    # A full queue pauses reading, but an acknowledgement someone waits for still arrives.
    async with SimServer(SimConfig(rate=200.0)) as sim, opened(runtime, sim, max_events=8) as face:
        mes = (await face.client_call("resolve_contract", "MES")).id
        mnq = (await face.client_call("resolve_contract", "MNQ")).id
        await face.stream_call("subscribe_market", mes, quotes=True, trades=True, depth=True)
        await face.until(lambda: face.stream.stats.pauses >= 1, "the queue full, reading paused")
        await face.stream_call("subscribe_market", mnq, quotes=True, trades=True)
        await face.stream_call("subscribe_user", ACCOUNT)
        for sub in (Subscription.trades(mnq), *Subscription.user(ACCOUNT)):
            assert face.stream.session.status(sub) is SubscriptionStatus.ACTIVE
        assert face.stream.stats.high_water <= 8 + 2 * 8 + 8  # past the limit, boundedly
