"""``StreamSession`` through its public interface, in memory, on an injected clock.

The world of ``session_harness``: a fake gateway (accounts, orders, fills, positions) behind both
hubs of a real TopStepX provider, a runtime loop that steps each hub as the runtimes do, and a
reader whose pace each test sets.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from tradeforge_proto.core.enums import OrderStatus
from tradeforge_proto.core.errors import LocalProtocolError, SubscriptionFailed
from tradeforge_proto.core.events import (
    AccountUpdated,
    Connected,
    DepthReceived,
    Disconnected,
    EventDropped,
    FeedGap,
    FeedStale,
    FillReceived,
    MarketTradeReceived,
    OrderUpdated,
    PositionUpdated,
    QuoteUpdated,
    Reconnecting,
    Resubscribed,
    Resynced,
    ResyncFailed,
    StreamStopped,
    SubscriptionRefused,
)
from tradeforge_proto.core.models import Account, Fill, Order, Position
from tradeforge_proto.core.subscriptions import Subscription
from tradeforge_proto.providers.topstepx import TopStepX
from tradeforge_proto.providers.topstepx.hubs import UserHub
from tradeforge_proto.realtime.machine import FEED_SIZE, StreamConfig, StreamState
from tradeforge_proto.realtime.recovery import Ledger, Recovery, Verdict
from tradeforge_proto.realtime.session import (
    MAX_REFUSALS_KEPT,
    StreamSession,
    SubscriptionStatus,
)

from .session_harness import (
    ACCOUNT,
    BUY,
    ES,
    NQ,
    OTHER_ACCOUNT,
    SELL,
    T0,
    World,
    check_delivered_matches,
    user_subscriptions,
)

CONFIG = StreamConfig(stale_after=None)
PRICE = Decimal("6000.25")
USER_KINDS = (OrderUpdated, FillReceived, PositionUpdated, AccountUpdated)


def world(**kwargs: Any) -> World:
    kwargs.setdefault("config", CONFIG)
    return World(**kwargs)


def live_world(*extra: Subscription, **kwargs: Any) -> World:
    """Subscribed to every user channel (plus ``extra``), connected, resynced, drained."""
    w = world(**kwargs)
    w.subscribe(*user_subscriptions(), *extra)
    w.drain()
    assert w.of(Resynced)
    return w


def fills(w: World, count: int, *, contract: str = ES, side: int | None = None) -> list[int]:
    """``count`` market orders, alternating buy and sell unless ``side`` is given."""
    return [
        w.gateway.place_market(
            ACCOUNT,
            contract,
            side if side is not None else (BUY if i % 2 == 0 else SELL),
            1,
            PRICE + Decimal("0.25") * i,
        )
        for i in range(count)
    ]


def names(events: list[Any]) -> list[str]:
    return [type(e).__name__ for e in events]


def user_order(w: World, start: int = 0) -> list[tuple[str, Any]]:
    """The user events from ``start`` on, as (kind, what) in delivery order."""
    out: list[tuple[str, Any]] = []
    for event in w.delivered[start:]:
        if isinstance(event, OrderUpdated):
            out.append(("order", (event.order.id, event.order.status)))
        elif isinstance(event, FillReceived):
            out.append(("fill", event.fill.id))
        elif isinstance(event, PositionUpdated):
            out.append(("position", event.position.size))
        elif isinstance(event, AccountUpdated):
            out.append(("account", event.account.balance))
    return out


def pushed_order(w: World, start: int = 0) -> list[tuple[str, Any]]:
    """What the gateway pushed from push ``start`` on, in the same shape."""
    out: list[tuple[str, Any]] = []
    for target, data in w.gateway.pushed[start:]:
        if target == "GatewayUserOrder":
            out.append(("order", (data["id"], OrderStatus(data["status"]))))
        elif target == "GatewayUserTrade":
            out.append(("fill", data["id"]))
        elif target == "GatewayUserPosition":
            out.append(("position", data["size"]))
        else:
            out.append(("account", data["balance"]))
    return out


def index_of(events: list[Any], kind: type, start: int = 0, **fields: Any) -> int:
    for i in range(start, len(events)):
        event = events[i]
        if isinstance(event, kind) and all(getattr(event, k) == v for k, v in fields.items()):
            return i
    raise AssertionError(f"no {kind.__name__} {fields} after {start}: {names(events[start:])}")


# --- routing and subscription status --------------------------------------------------------


def test_subscriptions_are_routed_to_the_hub_that_serves_them() -> None:
    w = world()
    session = w.session
    assert set(session.links) == {"user", "market"}
    for sub in user_subscriptions():
        assert session.link_for(sub).name == "user"
    for sub in Subscription.market(ES, quotes=True, trades=True, depth=True):
        assert session.link_for(sub).name == "market"
    assert session.subscribe(Subscription.orders(ACCOUNT), w.now) is w.link("user")
    assert session.subscribe(Subscription.quotes(ES), w.now) is w.link("market")
    for link in w.links.values():
        link.start(w.now)
    w.settle()
    user, market = w.server("user"), w.server("market")
    assert user is not None
    assert market is not None
    assert w.sockets["user"].path == "/hubs/user"  # type: ignore[union-attr]
    assert w.sockets["market"].path == "/hubs/market"  # type: ignore[union-attr]
    assert user.invocation_targets() == [("SubscribeOrders", (ACCOUNT,))]
    assert market.invocation_targets() == [("SubscribeContractQuotes", (ES,))]
    assert user.token == "tok-1"  # the token travels in the upgrade's query
    assert market.token == "tok-2"
    assert session.subscriptions == (Subscription.orders(ACCOUNT), Subscription.quotes(ES))
    assert repr(w.link("user")) == "<HubLink user connected>"


def test_hub_names_must_be_unique_and_every_subscription_needs_a_hub() -> None:
    provider = TopStepX.for_simulator("http://sim.test", "u", "k")

    class TwoUserHubs:
        def __getattr__(self, name: str) -> Any:
            return getattr(provider, name)

        def hubs(self) -> tuple[Any, ...]:
            return (UserHub("http://sim.test/hubs/user"), UserHub("http://sim.test/hubs/user"))

    class UserOnly(TwoUserHubs):
        def hubs(self) -> tuple[Any, ...]:
            return (UserHub("http://sim.test/hubs/user"),)

    with pytest.raises(LocalProtocolError, match="two hubs"):
        StreamSession(TwoUserHubs())  # type: ignore[arg-type]
    session = StreamSession(UserOnly())  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="no hub serves"):
        session.subscribe(Subscription.quotes(ES), T0)


def test_a_subscription_is_pending_until_acknowledged_and_user_ones_until_resynced() -> None:
    w = world()
    w.hold_acks = {"user": True, "market": True}
    w.rest_mode = "manual"
    quotes, orders = Subscription.quotes(ES), Subscription.orders(ACCOUNT)
    fills_ = Subscription.fills(ACCOUNT)
    assert w.session.status(quotes) is SubscriptionStatus.UNWANTED
    assert w.session.pending(quotes) is False
    w.subscribe(quotes, orders, fills_)
    session = w.session
    for sub in (quotes, orders, fills_):
        assert session.status(sub) is SubscriptionStatus.PENDING
        assert session.pending(sub) is True
    market, user = w.server("market"), w.server("user")
    assert market is not None
    assert user is not None
    market.release_acks()
    w.settle()
    assert session.status(quotes) is SubscriptionStatus.ACTIVE
    assert session.pending(quotes) is False
    # One user acknowledgement of two: the recovery waits to cover both in one round.
    user.release_acks(1)
    w.settle()
    assert w.link("user").machine.active == (orders,)
    assert not w.reads
    assert not w.link("user").recovering
    assert session.status(orders) is SubscriptionStatus.PENDING
    user.release_acks()
    w.settle()
    # Both acknowledged: the recovery's reads run; the subscriptions wait for the Resynced.
    assert {a.operation.request.path for _, a, _ in w.reads} == {
        "/api/Order/search",
        "/api/Order/searchOpen",
        "/api/Trade/search",
    }
    assert w.link("user").recovering
    assert session.status(orders) is SubscriptionStatus.PENDING
    assert session.status(fills_) is SubscriptionStatus.PENDING
    w.answer_reads(1)
    assert session.status(orders) is SubscriptionStatus.PENDING  # one read of three
    w.answer_reads()
    assert session.status(orders) is SubscriptionStatus.ACTIVE
    assert session.status(fills_) is SubscriptionStatus.ACTIVE
    assert isinstance(w.drain()[-1], Resynced)
    w.unsubscribe(quotes)
    assert session.status(quotes) is SubscriptionStatus.UNWANTED
    assert market.invocation_targets()[-1] == ("UnsubscribeContractQuotes", (ES,))


def test_a_refused_subscription_is_refused_and_pending_raises() -> None:
    w = world()
    w.gateway.refuse[("SubscribeContractQuotes", (NQ,))] = "contract not found"
    w.gateway.refuse[("SubscribePositions", (ACCOUNT,))] = "not entitled"
    bad, good = Subscription.quotes(NQ), Subscription.quotes(ES)
    w.subscribe(bad, good, *user_subscriptions())
    events = w.drain()
    session = w.session
    assert session.status(bad) is SubscriptionStatus.REFUSED
    assert session.refusal(bad) == "contract not found"
    with pytest.raises(SubscriptionFailed, match="contract not found") as caught:
        session.pending(bad)
    assert caught.value.subscription == bad
    assert session.status(good) is SubscriptionStatus.ACTIVE
    refused = [e for e in events if isinstance(e, SubscriptionRefused)]
    assert {(e.hub, e.subscription) for e in refused} == {
        ("market", bad),
        ("user", Subscription.positions(ACCOUNT)),
    }
    # The other user subscriptions are recovered without the refused one.
    assert session.status(Subscription.orders(ACCOUNT)) is SubscriptionStatus.ACTIVE
    assert "/api/Position/searchOpen" not in {a.operation.request.path for a in w.reads_run}
    assert bad not in session.subscriptions
    # Asking again forgets the refusal: pending until the hub answers again.
    del w.gateway.refuse[("SubscribeContractQuotes", (NQ,))]
    w.subscribe(bad, settle=False)
    assert session.refusal(bad) is None
    assert session.status(bad) in (SubscriptionStatus.PENDING, SubscriptionStatus.ACTIVE)
    w.settle()
    assert session.status(bad) is SubscriptionStatus.ACTIVE


def test_refusals_remembered_are_bounded() -> None:
    w = world()
    w.gateway.refuse[("SubscribeContractQuotes", None)] = "no market data entitlement"
    subs = [Subscription.quotes(f"CON.F.US.X{i}.Z25") for i in range(MAX_REFUSALS_KEPT + 1)]
    w.subscribe(*subs)
    w.drain()
    assert w.session.status(subs[0]) is SubscriptionStatus.UNWANTED  # the oldest forgotten
    assert w.session.status(subs[1]) is SubscriptionStatus.REFUSED
    assert w.session.status(subs[-1]) is SubscriptionStatus.REFUSED


# --- back-pressure --------------------------------------------------------------------------


def test_a_slow_reader_pauses_reading_and_loses_nothing() -> None:
    w = live_world(max_events=8)
    start, pushed_from = len(w.delivered), len(w.gateway.pushed)
    fills(w, 10)  # 50 user events while the reader takes nothing
    w.settle()
    link, session = w.link("user"), w.session
    assert session.queue.full
    assert len(session.queue) <= 8 + 4
    assert not link.check_reading(w.now)
    assert link.has_input  # read from the socket, waiting to be decoded
    assert link.machine.reading_paused
    assert session.paused
    assert session.stats(w.now).pauses == 1
    w.drain()
    assert user_order(w, start) == pushed_order(w, pushed_from)  # each once, in order
    delivered_fills = [e.fill.id for e in w.of(FillReceived)]
    assert delivered_fills == sorted(w.gateway.trades)
    assert session.stats(w.now).high_water <= 8 + 4
    assert w.max_queued <= 8 + 4
    assert not session.paused
    assert link.check_reading(w.now)
    assert not any(isinstance(e, Disconnected) for e in w.delivered)
    check_delivered_matches(w)


def test_a_roomy_queue_is_fed_in_big_slices_of_one_read() -> None:
    w = live_world(max_events=2_000)
    fills(w, 120)  # 600 events, more than one read and many slices
    w.settle()
    assert len(w.session.queue) == 600
    w.drain()
    check_delivered_matches(w)
    assert FEED_SIZE > 1024


def _per_hub(w: World) -> dict[str, list[Any]]:
    """What the reader got, hub by hub (the hubs' relative order depends on the reads)."""
    hubs: dict[str, list[Any]] = {"user": [], "market": []}
    for event in w.delivered:
        if isinstance(event, USER_KINDS):
            hub = "user"
        elif isinstance(event, MarketTradeReceived):
            hub = "market"
        else:
            hub = event.hub
        hubs[hub].append(event)
    return hubs


def _scenario(w: World) -> dict[str, list[Any]]:
    """Subscriptions, fills, market prints, a drop and its recovery; what the reader got."""
    w.subscribe(*user_subscriptions(), Subscription.trades(ES))
    w.drain()
    fills(w, 3)
    w.gateway.market_trade(ES, PRICE)
    w.settle()
    w.read(4)
    w.drop("user")
    fills(w, 2)
    w.advance(1.0)
    fills(w, 1)
    w.gateway.market_trade(ES, PRICE)
    w.settle()
    w.drain()
    check_delivered_matches(w)
    return _per_hub(w)


@pytest.mark.parametrize("read_size", [1, 7, 300, 4096])
def test_reads_of_any_size_give_the_same_events(read_size: int) -> None:
    reference = _scenario(world())
    w = world()
    w.read_size = read_size
    assert _scenario(w) == reference


def test_input_arriving_while_held_input_waits_is_decoded_after_it() -> None:
    w = live_world(max_events=8)
    start, pushed_from = len(w.delivered), len(w.gateway.pushed)
    fills(w, 6)
    w.settle()
    link = w.link("user")
    assert link.has_input
    fills(w, 3)
    socket = w.sockets["user"]
    assert socket is not None
    socket.pull()
    data, socket.incoming = socket.incoming, b""
    # A runtime that reads on regardless: every piece waits behind the held input.
    for i in range(0, len(data), 1000):
        link.receive_data(data[i : i + 1000], w.now)
    w.drain()
    assert user_order(w, start) == pushed_order(w, pushed_from)
    check_delivered_matches(w)


def test_pausing_for_the_reader_is_not_server_silence_and_pings_go_on() -> None:
    config = attrs.evolve(CONFIG, keepalive_interval=5.0, server_timeout=12.0, max_pause=300.0)
    w = live_world(max_events=8, config=config, server_keepalive=5.0)
    fills(w, 10)
    w.settle()
    link, socket = w.link("user"), w.sockets["user"]
    assert socket is not None
    assert link.machine.reading_paused
    paused_at, writes_before = w.now, len(socket.writes)
    w.advance(100.0)  # far past the server timeout, reading paused all along
    assert link.machine.state is StreamState.CONNECTED
    assert w.sockets["user"] is socket
    pings = [when for when, _ in socket.writes[writes_before:]]
    assert len(pings) >= 100 / 5 - 1  # our keep-alive pings went out while paused
    assert all(b - a <= 5.0 + 1e-6 for a, b in zip([paused_at, *pings], pings, strict=False))
    assert w.session.stats(w.now).paused_seconds == pytest.approx(100.0)
    w.drain()
    w.advance(30.0)  # reading again: the server's pings are read, nothing times out
    assert w.sockets["user"] is socket
    assert len(w.of(Connected)) == 1  # the first connection, no other
    stats = w.session.stats(w.now)
    assert stats.pauses == 1
    assert stats.paused_seconds == pytest.approx(100.0)
    check_delivered_matches(w)


def test_a_silent_server_still_times_out_when_reading_is_not_paused() -> None:
    config = attrs.evolve(CONFIG, keepalive_interval=5.0, server_timeout=12.0)
    w = live_world(config=config, server_keepalive=None)
    w.advance(11.0)
    assert w.link("user").machine.state is StreamState.CONNECTED
    w.advance(2.0)
    lost = [e for e in w.drain() if isinstance(e, Disconnected)]
    assert [e.hub for e in lost] == ["user"]
    assert "no data from the server" in lost[0].reason


def test_a_reader_stalled_past_max_pause_gets_its_hub_held_then_recovered() -> None:
    config = attrs.evolve(CONFIG, max_pause=20.0)
    w = live_world(max_events=8, config=config)
    before = len(w.delivered)
    fills(w, 10)
    w.settle()
    link = w.link("user")
    assert link.next_deadline() is not None
    w.advance(25.0)  # the reader takes nothing for longer than max_pause
    assert link.machine.state is StreamState.HELD
    assert w.sockets["user"] is None
    assert w.session.stats(w.now).held == 1
    assert link.next_deadline() is None  # nothing to do until the reader makes room
    assert w.session.paused
    during = fills(w, 3, side=BUY)  # while held: nobody hears them live
    w.advance(60.0)
    assert link.machine.state is StreamState.HELD
    w.read(2)  # not yet enough room
    assert link.machine.state is StreamState.HELD
    w.drain()
    assert link.machine.state is StreamState.CONNECTED
    assert len(w.endpoints["user"]) == 2
    held = [e for e in w.delivered[before:] if isinstance(e, Disconnected)]
    assert [e.hub for e in held] == ["user"]
    assert "the reader made no room" in held[0].reason
    assert held[0].will_reconnect
    recovered = [e.fill.id for e in w.of(FillReceived) if e.recovered]
    during_fills = [t for t, d in w.gateway.trades.items() if d["orderId"] in during]
    assert set(during_fills) <= set(recovered)
    check_delivered_matches(w)  # every fill exactly once
    assert w.session.stats(w.now).resyncs == 2


# --- gap recovery ---------------------------------------------------------------------------


def test_a_user_hub_drop_during_fills_recovers_every_missed_fill_once() -> None:
    w = live_world()
    fills(w, 2)
    w.settle()
    w.drain()  # read live
    unread = fills(w, 3)  # pushed, but the connection drops before they are read
    w.drop("user")
    gap = fills(w, 2)  # placed while disconnected
    mark = len(w.delivered)
    w.advance(1.0)  # reconnect within the first backoff
    assert w.link("user").machine.state is StreamState.CONNECTED
    after = fills(w, 1)
    w.settle()
    w.drain()
    events = w.delivered[mark:]
    resynced = index_of(events, Resynced)
    missed_orders = set(unread) | set(gap)
    missed_fills = {t for t, d in w.gateway.trades.items() if d["orderId"] in missed_orders}
    recovered = events[:resynced]
    assert {e.fill.id for e in recovered if isinstance(e, FillReceived)} == missed_fills
    assert all(e.recovered for e in recovered if isinstance(e, USER_KINDS))
    live = events[resynced + 1 :]
    live_fills = [e.fill.id for e in live if isinstance(e, FillReceived)]
    assert live_fills == [t for t, d in w.gateway.trades.items() if d["orderId"] in after]
    assert not any(e.recovered for e in live if isinstance(e, USER_KINDS))
    marker = events[resynced]
    assert (marker.hub, marker.fills, marker.orders) == ("user", 5, 5)
    assert marker.since == pytest.approx(T0 - CONFIG.recovery_overlap, abs=1.0)
    check_delivered_matches(w)
    # The recovered fills come in the gateway's order, each order after its fill.
    kinds = names([e for e in recovered if isinstance(e, FillReceived | OrderUpdated)])
    assert kinds == ["FillReceived", "OrderUpdated"] * 5


def test_the_same_state_live_and_by_rest_is_delivered_once() -> None:
    w = live_world()
    fills(w, 2, side=BUY)
    w.settle()
    w.drain()
    before = w.session.stats(w.now).duplicates
    w.drop("user")
    w.advance(1.0)
    events = w.drain()
    marker = events[index_of(events, Resynced)]
    assert (marker.orders, marker.fills, marker.positions, marker.accounts) == (0, 0, 0, 0)
    assert not [e for e in events if isinstance(e, USER_KINDS)]
    # Two orders, two fills, one position and one account: all known already.
    assert w.session.stats(w.now).duplicates - before == 6
    check_delivered_matches(w)


def test_an_older_order_state_after_a_newer_one_is_not_delivered() -> None:
    w = live_world()
    (order_id,) = fills(w, 1)
    w.settle()
    w.drain()
    filled = dict(w.gateway.orders[order_id])
    pending = {**filled, "status": 6, "fillVolume": 0, "filledPrice": None}
    server = w.server("user")
    assert server is not None
    # A late Pending after the Filled (out of order on the wire): stale.
    server.push("GatewayUserOrder", {"action": 1, "data": pending})
    # The same Filled again: a duplicate.
    server.push("GatewayUserOrder", {"action": 1, "data": filled})
    # A working order modified twice, then the first modification arrives late.
    limit = w.gateway.place_limit(ACCOUNT, ES, BUY, 1, Decimal("5990"))
    first = dict(w.gateway.orders[limit])
    w.gateway.modify(limit, Decimal("5991"))
    w.gateway.modify(limit, Decimal("5992"))
    late = {**first, "limitPrice": Decimal("5991"), "updateTimestamp": first["updateTimestamp"]}
    server.push("GatewayUserOrder", {"action": 1, "data": late})
    w.settle()
    events = [e for e in w.drain() if isinstance(e, OrderUpdated)]
    assert [(e.order.id, e.order.limit_price) for e in events] == [
        (limit, Decimal("5990")),
        (limit, Decimal("5991")),
        (limit, Decimal("5992")),
    ]
    stats = w.session.stats(w.now)
    assert stats.stale == 2
    assert stats.duplicates == 1
    check_delivered_matches(w)


def test_a_position_closed_during_the_gap_is_delivered_flat() -> None:
    w = live_world()
    fills(w, 1, side=BUY)
    w.settle()
    w.drain()
    assert w.of(PositionUpdated)[-1].position.size == 1
    w.drop("user")
    fills(w, 1, side=SELL)
    w.advance(1.0)
    events = w.drain()
    flat = [e for e in events if isinstance(e, PositionUpdated)]
    assert len(flat) == 1
    assert flat[0].recovered
    assert flat[0].is_flat
    assert flat[0].position.contract_id == ES
    marker = events[index_of(events, Resynced)]
    assert marker.positions == 1
    check_delivered_matches(w)


def test_a_position_opened_in_the_gap_is_recovered_from_the_open_positions() -> None:
    w = live_world()
    w.drop("user")
    fills(w, 1, side=BUY, contract=NQ)
    w.advance(1.0)
    events = w.drain()
    positions = [e for e in events if isinstance(e, PositionUpdated)]
    assert [(p.position.contract_id, p.position.size, p.recovered) for p in positions] == [
        (NQ, 1, True)
    ]
    check_delivered_matches(w)


def test_a_working_order_created_before_the_gap_is_looked_up_from_its_creation() -> None:
    w = live_world()
    limit = w.gateway.place_limit(ACCOUNT, ES, BUY, 1, Decimal("5990"))
    w.settle()
    w.drain()
    w.advance(500.0)  # long before the gap, beyond the recovery's overlap
    w.drop("user")
    w.gateway.fill(limit)
    w.advance(1.0)
    events = w.drain()
    searches = [a for a in w.reads_run if a.operation.request.path == "/api/Order/search"]
    start = json.loads(searches[-1].operation.request.body)["startTimestamp"]
    # From the working order's creation at the latest, not just the overlap before the gap.
    assert datetime.fromisoformat(start.replace("Z", "+00:00")).timestamp() <= T0
    orders = [e.order for e in events if isinstance(e, OrderUpdated)]
    assert [(o.id, o.status) for o in orders] == [(limit, OrderStatus.FILLED)]
    check_delivered_matches(w)


def test_a_failed_recovery_read_gives_resync_failed_then_a_retry() -> None:
    w = live_world()
    w.drop("user")
    gap = fills(w, 2)
    w.rest_failures = 1
    w.advance(1.0)
    events = w.drain()
    failed = events[index_of(events, ResyncFailed)]
    assert failed.hub == "user"
    assert failed.retry_in == CONFIG.recovery_retry
    assert "ServerError" in failed.error
    assert not any(isinstance(e, Resynced) for e in events)
    link = w.link("user")
    # Live events flow meanwhile, and the subscriptions count as live.
    for sub in user_subscriptions():
        assert w.session.status(sub) is SubscriptionStatus.ACTIVE
    live = fills(w, 1)
    w.settle()
    events = w.drain()
    assert [e.fill.order_id for e in events if isinstance(e, FillReceived)] == live
    deadline = link.next_deadline()
    assert deadline is not None
    assert deadline <= w.now + CONFIG.recovery_retry  # the retry is a timer of its own
    w.advance(CONFIG.recovery_retry)
    events = w.drain()
    marker = events[index_of(events, Resynced)]
    recovered = {e.fill.order_id for e in events if isinstance(e, FillReceived)}
    assert recovered == set(gap)
    assert marker.fills == 2
    check_delivered_matches(w)
    assert w.session.stats(w.now).resyncs == 2


def test_results_of_an_abandoned_recovery_are_ignored() -> None:
    w = world()
    w.rest_mode = "manual"
    w.subscribe(*user_subscriptions())
    assert len(w.reads) == 5
    link = w.link("user")
    # One read fails: the round is over; the others' answers no longer count.
    _, first, _ = w.reads[0]
    w.answer_reads(1, fail=True)
    assert not link.recovering
    w.answer_reads()
    link.operation_done(first.key, [], w.now)
    link.operation_failed(first.key, OSError("late"), w.now)
    events = w.drain()
    assert names([e for e in events if isinstance(e, Resynced | ResyncFailed)]) == ["ResyncFailed"]
    # The retry's round: this time the connection drops while it runs.
    w.advance(CONFIG.recovery_retry)
    assert len(w.reads) == 5
    assert link.recovering
    w.drop("user")
    assert not link.recovering
    w.answer_reads()
    assert not [e for e in w.drain() if isinstance(e, Resynced)]
    w.advance(1.0)
    w.answer_reads()
    assert [e for e in w.drain() if isinstance(e, Resynced)]
    check_delivered_matches(w)


def test_live_events_read_during_a_recovery_come_after_it() -> None:
    w = live_world()
    w.rest_mode = "manual"
    w.snapshot = True  # the answers are the state when the reads were served
    w.drop("user")
    fills(w, 1)
    w.advance(1.0)
    assert w.link("user").recovering
    assert not w.link("user").check_reading(w.now)  # its events go first
    live = fills(w, 1)
    w.settle()
    w.answer_reads()
    events = w.drain()
    resynced = index_of(events, Resynced)
    after = [e for e in events[resynced:] if isinstance(e, FillReceived)]
    assert [e.fill.order_id for e in after] == live
    assert not after[0].recovered
    check_delivered_matches(w)


def test_live_events_held_by_a_failed_recovery_are_delivered_after_resync_failed() -> None:
    w = live_world()
    w.rest_mode = "manual"
    w.drop("user")
    w.advance(1.0)
    # Pushed while the round runs: read and decoded once it is over, failed or not.
    live = fills(w, 1)
    w.settle()
    w.answer_reads(1, fail=True)
    events = w.drain()
    failed = index_of(events, ResyncFailed)
    assert [e.fill.order_id for e in events[failed:] if isinstance(e, FillReceived)] == live
    w.rest_mode = "auto"
    w.advance(CONFIG.recovery_retry)
    w.answer_reads()
    w.drain()
    check_delivered_matches(w)


def test_recovery_covers_every_account_subscribed() -> None:
    w = world()
    w.gateway.add_account(OTHER_ACCOUNT, "50KTC-V2-2", Decimal(50_000))
    w.subscribe(*user_subscriptions(), *Subscription.user(OTHER_ACCOUNT, accounts=False))
    w.drain()
    w.drop("user")
    fills(w, 1)
    w.gateway.place_market(OTHER_ACCOUNT, NQ, SELL, 2, Decimal("21000.5"))
    w.advance(1.0)
    w.drain()
    bodies = [a.operation.request.body for a in w.reads_run[-9:]]
    assert sum(b'"accountId":7002' in b for b in bodies) == 4
    check_delivered_matches(w)
    assert {e.fill.account_id for e in w.of(FillReceived)} == {ACCOUNT, OTHER_ACCOUNT}


def test_a_subscription_added_later_gets_its_own_recovery() -> None:
    w = world()
    w.subscribe(Subscription.orders(ACCOUNT))
    w.drain()
    fills(w, 1)
    w.settle()
    w.drain()
    w.subscribe(Subscription.fills(ACCOUNT))
    events = w.drain()
    marker = events[index_of(events, Resynced)]
    assert marker.fills == 1  # the fill before it subscribed, within the overlap
    assert w.session.status(Subscription.fills(ACCOUNT)) is SubscriptionStatus.ACTIVE


def test_unsubscribing_during_a_recovery() -> None:
    w = world()
    w.rest_mode = "manual"
    w.subscribe(*user_subscriptions())
    w.unsubscribe(Subscription.positions(ACCOUNT))
    assert w.session.status(Subscription.positions(ACCOUNT)) is SubscriptionStatus.UNWANTED
    w.answer_reads()
    w.drain()
    assert w.session.status(Subscription.orders(ACCOUNT)) is SubscriptionStatus.ACTIVE
    w.rest_mode = "auto"
    w.drop("user")
    w.advance(1.0)
    w.drain()
    paths = [a.operation.request.path for a in w.reads_run[5:]]
    assert "/api/Position/searchOpen" not in paths
    assert w.session.status(Subscription.orders(ACCOUNT)) is SubscriptionStatus.ACTIVE


# --- market data ----------------------------------------------------------------------------


def test_a_market_reconnect_gives_feed_gap() -> None:
    w = live_world(Subscription.trades(ES), Subscription.depth(ES), Subscription.trades(NQ))
    assert not w.of(FeedGap)  # not on the first connection
    w.gateway.market_trade(ES, PRICE)
    w.settle()
    w.advance(3.0)
    lost_at = w.now
    w.drop("market")
    w.gateway.market_trade(ES, PRICE)  # missed
    w.advance(2.0)
    events = w.drain()
    gaps = [e for e in events if isinstance(e, FeedGap)]
    assert len(gaps) == 1
    gap = gaps[0]
    assert gap.hub == "market"
    assert gap.contract_ids == (ES, NQ)
    assert gap.lost_at == lost_at
    assert lost_at < gap.resumed_at <= w.now
    assert index_of(events, Resubscribed, hub="market") < events.index(gap)
    w.gateway.market_trade(ES, PRICE + 1)
    w.settle()
    trades = [e for e in w.drain() if isinstance(e, MarketTradeReceived)]
    assert [t.trade.price for t in trades] == [PRICE + 1]
    assert not any(isinstance(e, Resynced) for e in events)  # market data is not recovered


def test_books_are_updated_from_depth() -> None:
    w = live_world(Subscription.depth(ES), books=True)
    assert w.session.book(ES) is None
    w.gateway.depth(ES, [(6, Decimal(0), 0), (2, Decimal("6000"), 5), (1, Decimal("6000.5"), 7)])
    w.gateway.depth(ES, [(2, Decimal("6000.25"), 3)])
    w.settle()
    book = w.session.book(ES)
    assert book is not None
    assert book.best_bid is not None
    assert book.best_ask is not None
    assert (book.best_bid.price, book.best_bid.volume) == (Decimal("6000.25"), 3)
    assert (book.best_ask.price, book.best_ask.volume) == (Decimal("6000.5"), 7)
    assert len(w.drain()) == 1  # two batches waiting coalesced into one
    assert w.session.stats(w.now).coalesced_depth == 1
    plain = live_world(Subscription.depth(ES))
    plain.gateway.depth(ES, [(2, Decimal("6000"), 5)])
    plain.settle()
    assert plain.session.book(ES) is None
    assert isinstance(plain.drain()[0], DepthReceived)


def test_a_stale_feed_is_replaced() -> None:
    config = attrs.evolve(CONFIG, stale_after=10.0)
    w = live_world(Subscription.quotes(ES), config=config)
    w.advance(11.0)
    events = w.drain()
    stale = [e for e in events if isinstance(e, FeedStale)]
    assert [e.contract_ids for e in stale] == [(ES,)]
    assert [e.hub for e in events if isinstance(e, FeedGap)] == ["market"]


def test_an_undecodable_event_is_reported_and_the_stream_goes_on() -> None:
    w = live_world()
    server = w.server("user")
    assert server is not None
    server.push("GatewayUserOrder", {"action": 1, "data": {"id": 1, "status": "open"}})
    fills(w, 1)
    w.settle()
    events = w.drain()
    dropped = [e for e in events if isinstance(e, EventDropped)]
    assert [(e.hub, e.target) for e in dropped] == [("user", "GatewayUserOrder")]
    assert len([e for e in events if isinstance(e, FillReceived)]) == 1


# --- connections ----------------------------------------------------------------------------


def test_refused_connections_and_token_failures_are_retried() -> None:
    w = world()
    w.refuse_connections["user"] = 2
    w.fail_tokens = 1
    w.subscribe(*user_subscriptions())
    assert w.link("user").machine.state is StreamState.BACKOFF
    w.advance(60.0)
    events = w.drain()
    assert len([e for e in events if isinstance(e, Reconnecting)]) == 3
    assert w.link("user").machine.state is StreamState.CONNECTED
    assert isinstance(events[-1], Resynced)


def test_the_server_closing_the_socket_is_a_lost_connection() -> None:
    w = live_world()
    w.server_closes("user")
    w.advance(1.0)
    events = w.drain()
    assert names(events)[:2] == ["Disconnected", "Reconnecting"]
    assert isinstance(events[-1], Resynced)
    assert len(w.endpoints["user"]) == 2


def test_repeated_refusals_stop_the_hub_and_fail_its_subscriptions() -> None:
    w = world()
    w.reject_upgrades["user"] = [401, 401, 401]
    orders = Subscription.orders(ACCOUNT)
    w.subscribe(orders)
    w.advance(60.0)
    link = w.link("user")
    assert link.finished
    assert w.session.status(orders) is SubscriptionStatus.STOPPED
    with pytest.raises(SubscriptionFailed, match="stopped"):
        w.session.pending(orders)
    events = w.drain()
    stopped = [e for e in events if isinstance(e, StreamStopped)]
    assert len(stopped) == 1
    assert stopped[0].error is not None
    assert w.session.ended  # the only hub started stopped; the other was never wanted
    assert not w.session.stopped


# --- stop -----------------------------------------------------------------------------------


def _idle(w: World) -> None:
    pass


def _waiting_token(w: World) -> None:
    w.subscribe(*user_subscriptions(), Subscription.quotes(ES), settle=False)


def _connecting(w: World) -> None:
    w.subscribe(Subscription.quotes(ES), settle=False)
    link = w.link("market")
    (fetch,) = link.actions()
    w._act(link, fetch)
    assert link.machine.state is StreamState.CONNECTING


def _handshaking(w: World) -> None:
    w.deaf = {"user", "market"}
    w.subscribe(*user_subscriptions(), Subscription.quotes(ES))


def _backoff(w: World) -> None:
    w.refuse_connections = {"user": 1, "market": 1}
    w.subscribe(*user_subscriptions(), Subscription.quotes(ES))


def _connected(w: World) -> None:
    w.subscribe(*user_subscriptions(), Subscription.quotes(ES))
    w.drain()


def _recovering(w: World) -> None:
    w.rest_mode = "manual"
    w.subscribe(*user_subscriptions(), Subscription.quotes(ES))


def _backlog(w: World) -> None:
    _connected(w)
    w.drop("user")
    fills(w, 3)
    w.advance(1.0)
    assert w.link("user").recovering


def _paused(w: World) -> None:
    _connected(w)
    fills(w, 5)
    w.gateway.quote(ES, bestBid=6000.0)
    w.settle()
    assert w.session.paused


def _held(w: World) -> None:
    _paused(w)
    w.advance(CONFIG.max_pause + 1)
    assert w.link("user").machine.state is StreamState.HELD


def _stopped_by_refusals(w: World) -> None:
    w.reject_upgrades["user"] = [403, 403, 403]
    w.subscribe(*user_subscriptions(), Subscription.quotes(ES))
    w.advance(60.0)
    assert w.link("user").finished


STATES = {
    "idle": _idle,
    "waiting_token": _waiting_token,
    "connecting": _connecting,
    "handshaking": _handshaking,
    "backoff": _backoff,
    "connected": _connected,
    "recovering": _recovering,
    "backlog": _backlog,
    "paused": _paused,
    "held": _held,
    "stopped_by_refusals": _stopped_by_refusals,
}


@pytest.mark.parametrize("state", list(STATES))
def test_stop_at_every_state_leaves_nothing_to_do(state: str) -> None:
    w = world(max_events=4 if state == "backlog" else 8)
    STATES[state](w)
    subs = w.session.subscriptions
    w.session.stop(w.now)
    assert w.session.stopped
    w.session.stop(w.now)  # again: nothing more
    w.settle()
    for link in w.links.values():
        assert link.finished
        assert link.actions() == []
        assert link.data_to_send() == b""
        assert not link.check_reading(w.now)
        assert not link.feed(w.now)
        assert not link.recovering
        assert w.sockets[link.name] is None
    for endpoint in w.gateway.endpoints:
        assert not endpoint.open
    if state == "connecting":
        assert w.link("market").connection_made(w.now) is False  # withdrawn: close it unused
    events = w.drain()
    stopped = Counter(e.hub for e in events if isinstance(e, StreamStopped))
    assert stopped == {"user": 1, "market": 1}
    assert w.session.ended
    for sub in subs:
        assert w.session.status(sub) is SubscriptionStatus.STOPPED
        with pytest.raises(SubscriptionFailed):
            w.session.pending(sub)
    delivered = len(w.delivered)
    w.answer_reads()
    w.advance(1_000.0)
    assert w.drain() == []
    assert len(w.delivered) == delivered
    with pytest.raises(LocalProtocolError):
        w.session.subscribe(Subscription.quotes(NQ), w.now)
    if state == "backlog":
        assert any(isinstance(e, Resynced) for e in events)  # the backlog went out too


@pytest.mark.parametrize("state", list(STATES))
def test_stop_at_every_state_ends_pauses_and_timers(state: str) -> None:
    w = world(max_events=4 if state == "backlog" else 8)
    STATES[state](w)
    w.session.stop(w.now)
    w.settle()
    w.drain()
    stopped_at = w.session.stats(w.now)
    assert not w.session.paused
    for link in w.links.values():
        assert link.next_deadline() is None
    later = w.session.stats(w.now + 1_000.0)
    assert later.paused_seconds == stopped_at.paused_seconds
    assert later.held == stopped_at.held


def test_ended_waits_for_the_queue_and_for_started_hubs() -> None:
    w = world()
    assert not w.session.ended  # nothing started yet
    w.subscribe(Subscription.quotes(ES))
    assert not w.session.ended
    w.session.stop(w.now)
    w.settle()
    assert not w.session.ended  # events still wait
    w.drain()
    assert w.session.ended


# --- take_fresh and stats -------------------------------------------------------------------


def test_take_fresh_sees_exactly_what_enters_the_queue_in_order() -> None:
    w = world(max_events=8)
    assert w.session.take_fresh() == []  # not tracking
    w.session.track_fresh()
    w.session.track_fresh()  # idempotent
    fresh: list[Any] = []
    w.subscribe(*user_subscriptions(), Subscription.trades(ES))
    fresh += w.session.take_fresh()
    assert w.session.take_fresh() == []
    fills(w, 6)
    w.gateway.market_trade(ES, PRICE)
    w.settle()
    fresh += w.session.take_fresh()
    w.read(3)
    fresh += w.session.take_fresh()
    w.drop("user")
    fills(w, 2)
    w.advance(1.0)
    while True:
        fresh += w.session.take_fresh()
        if not w.read(1):
            break
    fresh += w.session.take_fresh()
    assert fresh == w.delivered
    assert w.session.enqueued == len(fresh)
    # Coalesced quotes: each entered the queue, one came out.
    w.subscribe(Subscription.quotes(ES))
    w.drain()
    w.session.take_fresh()
    w.gateway.quote(ES, bestBid=6000.0)
    w.gateway.quote(ES, bestBid=6000.25)
    w.settle()
    entered = w.session.take_fresh()
    out = w.drain()
    assert [type(e) for e in entered] == [QuoteUpdated, QuoteUpdated]
    assert out == [entered[-1]]


def test_stats_count_what_the_session_did() -> None:
    config = attrs.evolve(CONFIG, max_pause=10.0)
    w = world(config=config, max_events=12)
    zero = w.session.stats(w.now)
    assert attrs.astuple(zero) == (0, 0, 0, 0, 0, 0.0, 0, 0, 0, 0, 0)
    w.subscribe(*user_subscriptions(), Subscription.quotes(ES), Subscription.depth(ES))
    w.drain()
    w.gateway.quote(ES, bestBid=6000.0)
    w.gateway.quote(ES, bestBid=6000.25)
    w.gateway.quote(ES, bestBid=6000.5)
    w.gateway.depth(ES, [(2, Decimal("6000"), 5)])
    w.gateway.depth(ES, [(2, Decimal("6000"), 6)])
    w.settle()
    w.drain()
    assert w.session.stats(w.now).pauses == 0
    fills(w, 4)  # 20 events: both hubs stop reading (the queue is shared)
    w.settle()
    w.advance(4.0)
    mid = w.session.stats(w.now)
    assert mid.pauses == 2
    assert mid.paused_seconds == pytest.approx(2 * 4.0)  # still paused: counted up to now
    assert mid.queued == len(w.session.queue)
    w.advance(7.0)  # past max_pause: both held
    assert w.session.stats(w.now).held == 2
    w.drain()
    stats = w.session.stats(w.now)
    assert stats.coalesced_quotes == 2
    assert stats.coalesced_depth == 1
    assert stats.pauses >= 2  # and again while the reader catches up after the holds
    assert stats.paused_seconds >= 2 * 10.0
    assert stats.held == 2
    assert stats.resyncs == 2
    recovered = [e for e in w.delivered if isinstance(e, USER_KINDS) and e.recovered]
    assert stats.recovered == len(recovered)
    assert stats.queued == 0
    assert 12 <= stats.high_water <= 12 + 6  # a slice's overshoot, and the holds' Disconnected
    assert stats.duplicates > 0
    assert stats.stale == 0
    assert [e.hub for e in w.of(FeedGap)] == ["market"]
    check_delivered_matches(w)


# --- regressions -------------------------------------------------------------------------


def test_live_events_in_the_same_read_as_the_acknowledgement_come_after_resynced() -> None:
    w = world()
    w.hold_acks["user"] = True
    w.subscribe(*user_subscriptions())
    server = w.server("user")
    assert server is not None
    server.release_acks()  # the acknowledgements are written...
    live = fills(w, 1)  # ...and the gateway pushes at once: both arrive in one read
    w.settle()
    events = w.drain()
    resynced = index_of(events, Resynced)
    live_fills = [i for i, e in enumerate(events) if isinstance(e, FillReceived)]
    assert [events[i].fill.order_id for i in live_fills] == live  # once
    # Before Resynced only what the recovery fetched; nothing read live jumps ahead of it.
    user = (OrderUpdated, FillReceived, PositionUpdated, AccountUpdated)
    assert all(e.recovered for e in events[:resynced] if isinstance(e, user))


def test_input_read_but_not_decoded_when_the_hub_drops_is_recovered() -> None:
    w = live_world(max_events=8)
    w.drop("user")
    # The recovery's reads take longer than the overlap; their answers are the state when
    # they were served (the gateway answered at once, the answer travelled late).
    w.set_latency(CONFIG.recovery_overlap + 40.0)
    w.snapshot = True
    w.advance(1.0)
    assert w.link("user").recovering
    for _ in range(5):
        w.advance(2.0)
        fills(w, 1)  # pushed on the new connection, not read: its recovery goes first
        w.settle()
    w.advance(CONFIG.recovery_overlap + 40.0)  # Resynced; the pushes read in one go
    assert w.link("user").has_input  # the queue filled up before they were all decoded
    w.drop("user")  # ...and what was not decoded is dropped with the connection
    w.rest_mode, w.snapshot = "auto", False
    w.advance(1.0)
    w.drain()
    check_delivered_matches(w)  # every fill exactly once


def test_stop_delivers_waiting_recovered_events_before_stream_stopped() -> None:
    w = world(max_events=4)
    _backlog(w)
    w.session.stop(w.now)
    w.settle()
    events = w.drain()
    user = [e for e in events if getattr(e, "hub", None) == "user" or isinstance(e, USER_KINDS)]
    assert isinstance(user[-1], StreamStopped)


def test_feed_gap_reports_the_latest_loss() -> None:
    sub = Subscription.trades(ES)
    w = world()
    w.subscribe(sub)
    w.drop("market")  # lost with the subscription live...
    w.unsubscribe(sub)  # ...no longer wanted: the reconnect has nothing to resubscribe
    w.advance(5.0)
    w.subscribe(sub)  # asked for again: Subscribed, no gap to report
    w.advance(100.0)
    lost_at = w.now
    w.drop("market")
    w.advance(5.0)
    gaps = w.of(FeedGap) or [e for e in w.drain() if isinstance(e, FeedGap)]
    assert [g.lost_at for g in gaps] == [lost_at]


# --- the recovery's parts, for what a well-behaved gateway never sends ------------------------


def _order(order_id: int, account: int, status: OrderStatus, updated: float | None) -> Order:
    from datetime import UTC, datetime

    created = datetime.fromtimestamp(T0, UTC)
    return Order(
        id=order_id,
        account_id=account,
        contract_id=ES,
        created_at=created,
        status=status,
        type=2,  # type: ignore[arg-type]
        side=0,  # type: ignore[arg-type]
        size=1,
        updated_at=None if updated is None else datetime.fromtimestamp(updated, UTC),
    )


def _recovery(provider: TopStepX, ledger: Ledger) -> Recovery:
    subs = [Subscription.orders(ACCOUNT), Subscription.fills(ACCOUNT)]
    subs += [Subscription.positions(ACCOUNT)]
    return Recovery(provider, "user", subs, T0, ledger, first_key=10)


def test_recovery_ignores_entities_of_other_accounts_and_keeps_the_newest_order_state() -> None:
    from datetime import UTC, datetime

    provider = TopStepX.for_simulator("http://sim.test", "u", "k")
    ledger = Ledger()
    recovery = _recovery(provider, ledger)
    keys = [read.key for read in recovery.reads]
    assert keys == [10, 11, 12, 13]
    at = datetime.fromtimestamp(T0, UTC)
    foreign_fill = Fill(1, OTHER_ACCOUNT, ES, at, PRICE, 0, 1, 5)  # type: ignore[arg-type]
    foreign_position = Position(3, OTHER_ACCOUNT, ES, at, 1, 1, PRICE)  # type: ignore[arg-type]
    recovery.done(99, "not ours")  # an unknown key is ignored
    assert not recovery.owns(99)
    recovery.done(
        10,
        [
            _order(1, ACCOUNT, OrderStatus.OPEN, T0 + 2),
            _order(2, ACCOUNT, OrderStatus.OPEN, None),
            _order(3, ACCOUNT, OrderStatus.OPEN, T0 + 1),
            _order(4, OTHER_ACCOUNT, OrderStatus.OPEN, T0),
            _order(5, ACCOUNT, OrderStatus.OPEN, None),
        ],
    )
    recovery.done(
        11,
        [
            _order(1, ACCOUNT, OrderStatus.OPEN, T0 + 1),  # older than the search's
            _order(2, ACCOUNT, OrderStatus.FILLED, None),  # terminal wins
            _order(3, ACCOUNT, OrderStatus.OPEN, T0 + 3),  # newer
            _order(5, ACCOUNT, OrderStatus.OPEN, T0 + 3),  # not known to be newer
        ],
    )
    recovery.done(12, [foreign_fill])
    assert not recovery.finished
    recovery.done(13, [foreign_position])
    assert recovery.finished
    events = recovery.events(ledger)
    orders = {e.order.id: e.order for e in events if isinstance(e, OrderUpdated)}
    assert set(orders) == {1, 2, 3, 5}
    assert orders[1].updated_at == datetime.fromtimestamp(T0 + 2, UTC)
    assert orders[2].status is OrderStatus.FILLED
    assert orders[3].updated_at == datetime.fromtimestamp(T0 + 3, UTC)
    assert orders[5].updated_at is None  # the first one found is kept
    assert not [e for e in events if isinstance(e, FillReceived | PositionUpdated)]
    assert isinstance(events[-1], Resynced)
    assert events[-1].orders == 4


def test_a_recovery_keeps_its_first_error() -> None:
    provider = TopStepX.for_simulator("http://sim.test", "u", "k")
    recovery = _recovery(provider, Ledger())
    recovery.failed(99, OSError("not ours"))
    assert recovery.error is None
    recovery.failed(10, OSError("first"))
    recovery.failed(11, ValueError("second"))
    assert recovery.error == "OSError: first"
    assert recovery.finished


def test_the_ledger_forgets_the_oldest_and_judges_only_user_events() -> None:
    from datetime import UTC, datetime

    ledger = Ledger(max_tracked=2)
    for order_id in (1, 2, 3):
        assert ledger.admit(OrderUpdated(_order(order_id, ACCOUNT, OrderStatus.OPEN, T0)))
    assert ledger.admit(OrderUpdated(_order(1, ACCOUNT, OrderStatus.OPEN, T0)))  # forgotten
    assert not ledger.admit(OrderUpdated(_order(3, ACCOUNT, OrderStatus.OPEN, T0)))
    assert ledger.judge(Resynced("user", 0, 0, 0, 0, T0)) is Verdict.NEW
    assert ledger.admit(Resynced("user", 0, 0, 0, 0, T0))  # nothing to remember
    at = datetime.fromtimestamp(T0, UTC)
    fill = Fill(1, ACCOUNT, ES, at, PRICE, 0, 1, 5)  # type: ignore[arg-type]
    assert ledger.admit(FillReceived(fill))
    assert not ledger.admit(FillReceived(fill))
    assert ledger.admit(FillReceived(attrs.evolve(fill, voided=True)))  # a void is news
    account = Account(ACCOUNT, "a", Decimal(1), True)
    assert ledger.admit(AccountUpdated(account))
    assert not ledger.admit(AccountUpdated(account))
    assert ledger.admit(AccountUpdated(attrs.evolve(account, balance=Decimal(2))))
    assert ledger.duplicates == 3


# --- the session under random intentions, faults and time -----------------------------------

PROPERTY_CONFIG = StreamConfig(
    keepalive_interval=5.0,
    server_timeout=15.0,
    backoff_base=0.5,
    backoff_cap=4.0,
    stale_after=None,
    max_pause=10.0,
    recovery_retry=2.0,
    max_refusals=10_000,
)
MAX_EVENTS = 12
# The queue may pass max_events by what one small slice decodes, plus lifecycle events.
OVERSHOOT = 12


class SessionUnderFaults(RuleBasedStateMachine):
    """Orders and fills on the gateway, a reader of any pace, drops, stalls and failing reads."""

    def __init__(self) -> None:
        super().__init__()
        self.w = World(config=PROPERTY_CONFIG, max_events=MAX_EVENTS, server_keepalive=5.0)
        self.w.subscribe(*user_subscriptions(), Subscription.trades(ES))
        self.working: list[int] = []

    @rule(
        contract=st.sampled_from([ES, NQ]),
        side=st.sampled_from([BUY, SELL]),
        size=st.integers(1, 2),
        ticks=st.integers(0, 8),
    )
    def market_order(self, contract: str, side: int, size: int, ticks: int) -> None:
        price = PRICE + Decimal("0.25") * ticks
        self.w.gateway.place_market(ACCOUNT, contract, side, size, price)
        self.w.settle()

    @rule(side=st.sampled_from([BUY, SELL]), ticks=st.integers(-8, 8))
    def limit_order(self, side: int, ticks: int) -> None:
        price = PRICE + Decimal("0.25") * ticks
        self.working.append(self.w.gateway.place_limit(ACCOUNT, ES, side, 1, price))
        self.w.settle()

    @precondition(lambda self: self.working)
    @rule(data=st.data(), what=st.sampled_from(["fill", "cancel", "modify"]))
    def work_order(self, data: st.DataObject, what: str) -> None:
        order_id = data.draw(st.sampled_from(self.working))
        gateway = self.w.gateway
        if what == "modify":
            gateway.modify(order_id, gateway.orders[order_id]["limitPrice"] + Decimal("0.25"))
        else:
            self.working.remove(order_id)
            (gateway.fill if what == "fill" else gateway.cancel)(order_id)
        self.w.settle()

    @rule(price=st.integers(0, 4))
    def market_print(self, price: int) -> None:
        self.w.gateway.market_trade(ES, PRICE + price)
        self.w.settle()

    @rule(count=st.integers(0, 15))
    def reader_reads(self, count: int) -> None:
        self.w.read(count)

    @rule(seconds=st.floats(0.0, 20.0))
    def time_passes(self, seconds: float) -> None:
        self.w.advance(seconds)

    @rule()
    def reader_stalls(self) -> None:
        self.w.advance(PROPERTY_CONFIG.max_pause + 1.0)

    @rule(hub=st.sampled_from(["user", "market"]))
    def network_drops(self, hub: str) -> None:
        self.w.drop(hub)

    @rule(hub=st.sampled_from(["user", "market"]), how=st.sampled_from(["refuse", "reject"]))
    def next_connection_refused(self, hub: str, how: str) -> None:
        if how == "refuse":
            self.w.refuse_connections[hub] = self.w.refuse_connections.get(hub, 0) + 1
        else:
            self.w.reject_upgrades.setdefault(hub, []).append(503)

    @rule(count=st.integers(1, 3))
    def next_reads_fail(self, count: int) -> None:
        self.w.rest_failures += count

    @rule(manual=st.booleans())
    def reads_are_slow(self, manual: bool) -> None:
        self.w.rest_mode = "manual" if manual else "auto"
        if not manual:
            self.w.answer_reads()

    @rule(count=st.integers(1, 5), fail=st.booleans())
    def slow_reads_answer(self, count: int, fail: bool) -> None:
        self.w.answer_reads(count, fail=fail)

    @invariant()
    def the_queue_stays_bounded(self) -> None:
        assert len(self.w.session.queue) <= MAX_EVENTS + OVERSHOOT
        assert self.w.max_queued <= MAX_EVENTS + OVERSHOOT

    def _settled(self) -> bool:
        w = self.w
        user = w.link("user")
        if any(link.machine.state is not StreamState.CONNECTED for link in w.links.values()):
            return False
        if user.recovering or w.session.paused or len(w.session.queue) or w.reads:
            return False
        if any(
            w.session.status(s) is not SubscriptionStatus.ACTIVE for s in w.session.subscriptions
        ):
            return False
        last_connect = max(
            i for i, e in enumerate(w.delivered) if isinstance(e, Connected) and e.hub == "user"
        )
        outcomes = [e for e in w.delivered[last_connect:] if isinstance(e, Resynced | ResyncFailed)]
        return bool(outcomes) and isinstance(outcomes[-1], Resynced)

    def teardown(self) -> None:
        w = self.w
        w.refuse_connections.clear()
        w.reject_upgrades.clear()
        w.rest_failures = 0
        w.rest_mode = "auto"
        w.answer_reads()
        for _ in range(100):
            w.drain()
            if self._settled():
                break
            w.advance(3.0)
        else:
            raise AssertionError("the world never settled")
        check_delivered_matches(w)
        ids = [e.fill.id for e in w.of(FillReceived)]
        assert len(ids) == len(set(ids))


SessionUnderFaults.TestCase.settings = settings(
    max_examples=60, stateful_step_count=30, deadline=None, derandomize=True, database=None
)
TestSessionUnderFaults = SessionUnderFaults.TestCase


def test_live_events_behind_a_late_acknowledgement_are_held_only_so_long() -> None:
    w = world(max_events=6)
    w.hold_acks["user"] = True
    w.subscribe(*user_subscriptions())
    server = w.server("user")
    assert server is not None
    server.release_acks(3)  # accounts, orders and positions: the fills' answer is late
    w.settle()
    assert not w.link("user").recovering  # waits for the last acknowledgement...
    fills(w, 2)  # ...until the live events held meanwhile would fill the queue
    w.settle()
    events = w.drain()
    assert index_of(events, Resynced) < len(events)
    server.release_acks()  # the late one: recovered in a round of its own
    w.settle()
    events = w.drain()
    assert [e.fills for e in events if isinstance(e, Resynced)] == [2]
    check_delivered_matches(w)


def test_live_events_held_for_a_round_that_fails_are_delivered_after_resync_failed() -> None:
    w = world()
    w.hold_acks["user"] = True
    w.subscribe(*user_subscriptions())
    server = w.server("user")
    assert server is not None
    w.rest_failures = 1
    server.release_acks()
    live = fills(w, 1)  # in the same read as the acknowledgements: held for the round
    w.settle()
    events = w.drain()
    failed = index_of(events, ResyncFailed)
    assert [e.fill.order_id for e in events[failed:] if isinstance(e, FillReceived)] == live
    w.advance(CONFIG.recovery_retry)
    w.drain()
    check_delivered_matches(w)
