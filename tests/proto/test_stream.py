"""The stream machine against an in-memory hub: lifecycle, subscriptions, timers, reconnects."""

from __future__ import annotations

import random

import pytest

from tradeforge_proto.core import (
    AuthenticationError,
    Connected,
    Disconnected,
    EventDropped,
    FeedStale,
    LocalProtocolError,
    QuoteUpdated,
    Reconnecting,
    Resubscribed,
    Secret,
    SessionLoggedOut,
    StreamStopped,
    Subscribed,
    Subscription,
    SubscriptionRefused,
)
from tradeforge_proto.providers.topstepx.hubs import MarketHub, UserHub
from tradeforge_proto.realtime.machine import (
    FetchToken,
    OpenConnection,
    StreamConfig,
    StreamMachine,
    StreamState,
    hub_for,
)

from .stream_harness import T0, Driver

ES = "CON.F.US.EP.Z25"
NQ = "CON.F.US.ENQ.Z25"
QUOTE = {"symbol": "F.US.EP", "bestBid": 5000.0, "bestAsk": 5000.25}


def market_driver(config: StreamConfig | None = None, seed: int = 1) -> Driver:
    hub = MarketHub("https://rtc.topstepx.com/hubs/market")
    return Driver(StreamMachine(hub, config=config, rng=random.Random(seed)))


def user_driver(config: StreamConfig | None = None) -> Driver:
    hub = UserHub("https://rtc.topstepx.com/hubs/user")
    return Driver(StreamMachine(hub, config=config, rng=random.Random(1)))


def started(driver: Driver, *subs: Subscription) -> Driver:
    for sub in subs:
        driver.machine.subscribe(sub, driver.now)
    driver.machine.start(driver.now)
    driver.pump()
    return driver


def test_first_connection_fetches_a_token_and_sends_each_subscription_once():
    driver = started(market_driver(), Subscription.quotes(ES), Subscription.depth(ES))
    assert driver.fetches == [FetchToken(fresh=False)]
    assert driver.opens == [OpenConnection("rtc.topstepx.com", 443, True)]
    server = driver.server
    assert server is not None
    assert server.request is not None
    assert server.request.path == "/hubs/market"
    assert ("access_token", "tok-1") in server.request.query
    assert server.subscribe_targets() == [
        ("SubscribeContractQuotes", (ES,)),
        ("SubscribeContractMarketDepth", (ES,)),
    ]
    assert driver.take(Connected) == [Connected("market", 0)]
    assert [e.subscription for e in driver.take(Subscribed)] == [
        Subscription.quotes(ES),
        Subscription.depth(ES),
    ]
    assert driver.machine.state is StreamState.CONNECTED
    assert set(driver.machine.active) == set(driver.machine.desired)
    assert "tok-1" not in repr(driver.machine.actions())


def test_subscribe_and_unsubscribe_while_connected():
    driver = started(market_driver(), Subscription.quotes(ES))
    server = driver.server
    driver.machine.subscribe(Subscription.trades(NQ), driver.now)
    driver.machine.subscribe(Subscription.trades(NQ), driver.now)  # already wanted: nothing sent
    driver.pump()
    driver.machine.unsubscribe(Subscription.quotes(ES), driver.now)
    driver.machine.unsubscribe(Subscription.depth(NQ), driver.now)  # never wanted: nothing sent
    driver.pump()
    assert server.subscribe_targets()[1:] == [
        ("SubscribeContractTrades", (NQ,)),
        ("UnsubscribeContractQuotes", (ES,)),
    ]
    assert driver.machine.active == (Subscription.trades(NQ),)


def test_unsubscribe_before_the_subscribe_is_acknowledged():
    driver = started(market_driver())
    server = driver.server
    server.auto_ack = False
    driver.machine.subscribe(Subscription.quotes(ES), driver.now)
    driver.pump()
    driver.machine.unsubscribe(Subscription.quotes(ES), driver.now)
    driver.pump()
    assert server.subscribe_targets() == [("SubscribeContractQuotes", (ES,))]
    server.auto_ack = True
    server.ack(server.invocations[0])
    driver.pump()
    assert server.subscribe_targets()[-1] == ("UnsubscribeContractQuotes", (ES,))
    assert driver.machine.active == ()


def test_market_events_are_decoded():
    driver = started(market_driver(), Subscription.quotes(ES))
    driver.server.send("GatewayQuote", ES, QUOTE)
    driver.pump()
    (event,) = driver.take(QuoteUpdated)
    assert event.quote.best_ask == 5000.25


def test_records_are_decoded_before_the_rest_of_their_message_arrives():
    driver = started(market_driver(), Subscription.quotes(ES), Subscription.quotes(NQ))
    driver.take(QuoteUpdated)
    # One WebSocket message holding many records, as a busy hub batches them.
    server = driver.server
    server.hub.send("GatewayQuote", ES, QUOTE)
    for _ in range(2000):
        server.hub.send("GatewayQuote", NQ, QUOTE)
    server.ws.send_text(server.hub.data_to_send())
    data = server.ws.data_to_send()
    driver.machine.receive_data(data[:200], driver.now)
    (first,) = driver.machine.events()
    assert isinstance(first, QuoteUpdated)
    assert first.quote.contract_id == ES
    driver.machine.receive_data(data[200:], driver.now)
    assert len(driver.machine.events()) == 2000


def test_a_dropped_connection_reconnects_and_resubscribes_exactly_once():
    subs = [Subscription.quotes(ES), Subscription.trades(ES), Subscription.depth(NQ)]
    driver = started(market_driver(), *subs)
    driver.events.clear()
    driver.drop()
    (disconnected,) = driver.take(Disconnected)
    assert disconnected.will_reconnect
    (reconnecting,) = driver.take(Reconnecting)
    assert reconnecting.attempt == 1
    assert 0 <= reconnecting.delay <= driver.machine.config.backoff_bound(1)
    assert driver.machine.state is StreamState.BACKOFF
    driver.advance(reconnecting.delay)
    assert driver.take(Connected) == [Connected("market", 1)]
    second = driver.servers[-1]
    assert sorted(second.subscribe_targets()) == sorted(
        [
            ("SubscribeContractQuotes", (ES,)),
            ("SubscribeContractTrades", (ES,)),
            ("SubscribeContractMarketDepth", (NQ,)),
        ]
    )
    (resubscribed,) = driver.take(Resubscribed)
    assert set(resubscribed.subscriptions) == set(subs)
    assert driver.take(Subscribed) == []  # resubscriptions are reported once, together
    assert driver.fetches == [FetchToken(fresh=False)]  # the token was still good


def test_keepalive_ping_when_nothing_was_sent():
    driver = started(user_driver(), Subscription.orders(7))
    server = driver.server
    driver.advance(14.0)
    assert server.pings == 0
    server.ping()  # the server's own pings keep the connection alive from its side
    driver.pump()
    driver.advance(1.5)
    assert server.pings == 1


def test_server_timeout_replaces_a_silent_connection():
    driver = started(user_driver(), Subscription.orders(7))
    driver.silent_server = True
    driver.events.clear()
    driver.advance(30.0)
    (disconnected,) = driver.take(Disconnected)
    assert "no data from the server" in disconnected.reason
    assert driver.closes
    assert driver.take(Reconnecting)


def test_quiet_user_hub_is_normal_while_pings_flow():
    driver = started(user_driver(), Subscription.orders(7), Subscription.positions(7))
    for _ in range(40):  # ten minutes of pings, no user events
        driver.server.ping()
        driver.pump()
        driver.advance(15.0)
    assert driver.take(Disconnected) == []
    assert driver.take(FeedStale) == []
    assert len(driver.opens) == 1


def test_stale_market_feed_is_detected_and_replaced():
    config = StreamConfig(stale_after=60.0)
    driver = started(market_driver(config), Subscription.quotes(ES))
    driver.events.clear()
    for _ in range(4):  # pings flow, quotes do not
        driver.server.ping()
        driver.pump()
        driver.advance(15.0)
    (stale,) = driver.take(FeedStale)
    assert stale.contract_ids == (ES,)
    assert stale.silent_for >= 60.0
    assert driver.take(Reconnecting)


def test_flowing_market_data_is_not_stale():
    driver = started(market_driver(StreamConfig(stale_after=60.0)), Subscription.quotes(ES))
    for _ in range(20):
        driver.server.send("GatewayQuote", ES, QUOTE)
        driver.pump()
        driver.advance(10.0)
    assert driver.take(FeedStale) == []
    assert len(driver.opens) == 1


def test_rejected_upgrade_refreshes_the_token_and_stops_after_repeated_refusals():
    driver = market_driver(StreamConfig(max_refusals=3))
    driver.reject_next = [401, 401, 401]
    started(driver, Subscription.quotes(ES))
    for _ in range(5):
        driver.advance(60.0)
    assert [f.fresh for f in driver.fetches] == [False, True, True]
    (stopped,) = driver.take(StreamStopped)
    assert isinstance(stopped.error, AuthenticationError)
    assert "401" in str(stopped.error)
    disconnects = driver.take(Disconnected)
    assert [d.will_reconnect for d in disconnects] == [True, True, False]
    assert driver.machine.state is StreamState.STOPPED
    assert driver.machine.next_deadline() is None


def test_one_refusal_then_success_carries_on_with_a_fresh_token():
    driver = market_driver()
    driver.reject_next = [401]
    started(driver, Subscription.quotes(ES))
    driver.advance(60.0)
    assert [f.fresh for f in driver.fetches] == [False, True]
    assert driver.take(Connected) == [Connected("market", 0)]
    assert driver.servers[-1].request.query[-1] == ("access_token", "tok-2")


def test_other_upgrade_failures_back_off_without_counting_as_refusals():
    driver = market_driver(StreamConfig(max_refusals=1))
    driver.reject_next = [503, 503]
    started(driver, Subscription.quotes(ES))
    driver.advance(120.0)
    assert driver.take(StreamStopped) == []
    assert driver.take(Connected) == [Connected("market", 0)]
    assert [f.fresh for f in driver.fetches] == [False]


def test_failing_token_fetch():
    driver = market_driver(StreamConfig(max_refusals=2))
    driver.fail_token_with = OSError("gateway unreachable")
    started(driver, Subscription.quotes(ES))
    driver.advance(120.0)
    assert driver.take(StreamStopped) == []  # network trouble is retried without end
    driver.fail_token_with = AuthenticationError("bad key", endpoint="Auth/loginKey", status=200)
    driver.advance(120.0)
    (stopped,) = driver.take(StreamStopped)
    assert stopped.error is driver.fail_token_with


def test_token_close_to_expiry_is_replaced_before_reconnecting():
    driver = market_driver(StreamConfig(token_margin=300.0))
    driver.token_lifetime = 400.0
    started(driver, Subscription.quotes(ES))
    driver.server.send("GatewayQuote", ES, QUOTE)
    driver.pump()
    driver.advance(150.0 - 1)  # the token now has less than the margin left
    driver.drop()
    driver.advance(60.0)
    assert len(driver.fetches) >= 2
    assert driver.fetches[1] == FetchToken(fresh=False)


def test_close_with_and_without_allow_reconnect():
    driver = started(market_driver(StreamConfig(max_refusals=2)), Subscription.quotes(ES))
    driver.server.close_hub("server restarting", allow_reconnect=True)
    driver.pump()
    driver.advance(60.0)
    assert [f.fresh for f in driver.fetches] == [False]
    assert driver.take(Connected)[-1] == Connected("market", 1)
    driver.server.close_hub("go away", allow_reconnect=False)
    driver.pump()
    driver.advance(60.0)
    assert driver.fetches[-1] == FetchToken(fresh=True)
    driver.server.close_hub("go away", allow_reconnect=False)
    driver.pump()
    (stopped,) = driver.take(StreamStopped)
    assert "go away" in str(stopped.error)


def test_refused_subscription_is_reported_and_forgotten():
    driver = market_driver()
    driver.machine.start(driver.now)
    driver.pump()
    driver.server.refuse["SubscribeContractMarketDepth"] = "not entitled"
    driver.machine.subscribe(Subscription.depth(ES), driver.now)
    driver.pump()
    (failed,) = driver.take(SubscriptionRefused)
    assert failed.error == "not entitled"
    assert driver.machine.desired == ()
    driver.drop()
    driver.advance(60.0)
    assert driver.servers[-1].subscribe_targets() == []


def test_malformed_frame_reconnects():
    driver = started(market_driver(), Subscription.quotes(ES))
    driver.events.clear()
    driver.server.raw("{not json\x1e")
    driver.pump()
    (disconnected,) = driver.take(Disconnected)
    assert "protocol error" in disconnected.reason
    driver.advance(60.0)
    assert driver.take(Connected) == [Connected("market", 1)]


def test_undecodable_event_is_reported_and_the_stream_goes_on():
    driver = started(market_driver(), Subscription.quotes(ES))
    driver.server.send("GatewayQuote", ES, {"bestBid": "not a price"})
    driver.server.send("GatewayQuote", ES, QUOTE)
    driver.pump()
    (dropped,) = driver.take(EventDropped)
    assert dropped.target == "GatewayQuote"
    assert len(driver.take(QuoteUpdated)) == 1
    assert driver.take(Disconnected) == []


def test_logout_event_reconnects_with_a_fresh_token():
    driver = started(user_driver(), Subscription.orders(7))
    driver.server.send("GatewayLogout")
    driver.pump()
    assert driver.take(SessionLoggedOut) == [SessionLoggedOut("user")]
    driver.advance(60.0)
    assert driver.fetches[-1] == FetchToken(fresh=True)
    assert driver.take(Connected)[-1] == Connected("user", 1)


def test_handshake_timeout():
    driver = market_driver()
    driver.silent_server = True
    started(driver, Subscription.quotes(ES))
    assert driver.machine.state is StreamState.HANDSHAKING
    driver.advance(15.0)
    assert driver.take(Reconnecting)
    assert driver.closes[0].reason == "handshake timed out"


def test_connect_failures_back_off_within_bounds_and_reset_once_healthy():
    config = StreamConfig(backoff_base=1.0, backoff_cap=8.0, healthy_after=60.0, stale_after=None)
    driver = market_driver(config, seed=5)
    driver.connect_fails = 6
    started(driver, Subscription.quotes(ES))
    driver.advance(35.0)  # the six delays add up to at most 1 + 2 + 4 + 8 + 8 + 8 seconds
    delays = driver.take(Reconnecting)
    assert [r.attempt for r in delays] == [1, 2, 3, 4, 5, 6]
    for r in delays:
        assert 0 <= r.delay <= min(8.0, 2.0 ** (r.attempt - 1))
    assert driver.machine.state is StreamState.CONNECTED
    assert driver.machine.attempt == 6
    driver.server.send("GatewayQuote", ES, QUOTE)
    driver.pump()
    driver.advance(60.0)
    assert driver.machine.attempt == 0
    driver.drop()
    assert driver.take(Reconnecting)[-1].attempt == 1


def test_stop_closes_cleanly():
    driver = started(market_driver(), Subscription.quotes(ES))
    server = driver.server
    driver.machine.stop(driver.now)
    driver.pump()
    assert server.closed or not server.open
    assert driver.closes[-1].reason == "stopping"
    assert driver.take(StreamStopped) == [StreamStopped("market", None)]
    assert driver.machine.state is StreamState.STOPPED
    driver.machine.stop(driver.now)  # twice is fine
    with pytest.raises(LocalProtocolError, match="stopped"):
        driver.machine.subscribe(Subscription.quotes(NQ), driver.now)


def test_stop_while_backing_off():
    driver = started(market_driver(), Subscription.quotes(ES))
    driver.drop()
    driver.machine.stop(driver.now)
    driver.pump()
    assert driver.take(StreamStopped) == [StreamStopped("market", None)]
    assert driver.machine.actions() == []


def test_misuse_is_refused():
    machine = StreamMachine(UserHub("https://h/hubs/user"))
    with pytest.raises(LocalProtocolError, match="does not serve"):
        machine.subscribe(Subscription.quotes(ES), T0)
    with pytest.raises(LocalProtocolError, match="no connection was requested"):
        machine.connection_made(T0)
    machine.start(T0)
    with pytest.raises(LocalProtocolError, match="cannot start"):
        machine.start(T0)
    with pytest.raises(LocalProtocolError, match="empty token"):
        machine.token_received(Secret(""), T0)
    # Reports that do not match the state are ignored, not fatal.
    machine.token_failed(OSError("late"), T0)
    machine.connection_failed(OSError("late"), T0)
    machine.connection_lost(T0)
    machine.receive_data(b"junk", T0)
    hubs = (UserHub("https://h/hubs/user"), MarketHub("https://h/hubs/market"))
    assert hub_for(hubs, Subscription.depth(ES)) is hubs[1]
    assert hub_for(hubs, Subscription.fills(3)) is hubs[0]


def test_stop_during_the_handshake():
    driver = market_driver()
    driver.silent_server = True
    started(driver, Subscription.quotes(ES))
    driver.machine.stop(driver.now)
    driver.pump()
    assert driver.take(StreamStopped) == [StreamStopped("market", None)]
    assert driver.closes[-1].reason == "stopping"


def test_tokens_and_timers_outside_their_moment_change_nothing():
    driver = started(market_driver(), Subscription.quotes(ES))
    driver.machine.token_received(Secret("pushed"), driver.now)  # kept for the next attempt
    driver.machine.token_failed(OSError("late"), driver.now)
    driver.machine.handle_timer(driver.now)  # nothing is due yet
    driver.pump()
    assert driver.machine.state is StreamState.CONNECTED
    driver.drop()
    driver.machine.handle_timer(driver.now)  # the backoff has not elapsed
    assert driver.machine.state is StreamState.BACKOFF
    driver.advance(60.0)
    assert driver.servers[-1].request.query[-1] == ("access_token", "pushed")
    assert len(driver.fetches) == 1


def test_handshake_timer_before_its_deadline():
    driver = market_driver()
    driver.silent_server = True
    started(driver)
    driver.machine.handle_timer(driver.now + 1)
    assert driver.machine.state is StreamState.HANDSHAKING


def test_healthy_timer_without_a_due_keepalive():
    driver = started(market_driver(StreamConfig(healthy_after=15.0, stale_after=None)))
    driver.advance(14.0)
    driver.machine.subscribe(Subscription.quotes(ES), driver.now)  # something was just sent
    driver.pump()
    pings = driver.server.pings
    driver.advance(1.0)  # healthy now, keep-alive not due for another 14 s
    assert driver.server.pings == pings
    assert driver.machine.attempt == 0


def test_server_closing_the_websocket():
    driver = started(market_driver(), Subscription.quotes(ES))
    driver.server.ws.close(4000, "maintenance")
    driver.pump()
    (disconnected,) = driver.take(Disconnected)
    assert "4000" in disconnected.reason
    assert "maintenance" in disconnected.reason
    driver.advance(60.0)
    assert driver.take(Connected)[-1] == Connected("market", 1)


def test_nothing_after_a_hub_close_in_the_same_read_is_processed():
    driver = started(market_driver(), Subscription.quotes(ES))
    driver.server.close_hub("bye", allow_reconnect=True)
    driver.server.raw('{"type":1,"target":"GatewayQuote","arguments":["X",{}]}\x1e')
    driver.pump()
    assert driver.take(QuoteUpdated) == []
    assert driver.take(Disconnected)


def test_nothing_after_a_logout_in_the_same_message_is_processed():
    driver = started(user_driver(), Subscription.orders(7))
    driver.server.raw(
        '{"type":1,"target":"GatewayLogout","arguments":[]}\x1e'
        '{"type":1,"target":"GatewayUserAccount","arguments":[{"id":1}]}\x1e'
    )
    driver.pump()
    assert driver.take(SessionLoggedOut) == [SessionLoggedOut("user")]
    assert driver.take(EventDropped) == []


def test_signalr_handshake_refused():
    driver = market_driver(StreamConfig(max_refusals=1))
    driver.refuse_handshake_next = ["protocol not supported"]
    started(driver, Subscription.quotes(ES))
    (stopped,) = driver.take(StreamStopped)
    assert "protocol not supported" in str(stopped.error)


def test_server_invocations_that_expect_an_answer_get_an_error_completion():
    driver = started(market_driver(), Subscription.quotes(ES))
    server = driver.server
    invocation_id = server.hub.invoke("GatewayQuote", ES, QUOTE)
    server._flush()
    driver.pump()
    assert len(driver.take(QuoteUpdated)) == 1
    (completion,) = server.completions
    assert completion.invocation_id == invocation_id
    assert completion.error == "client results are not supported"


def test_unknown_events_and_stray_completions_are_ignored():
    driver = started(market_driver(), Subscription.quotes(ES))
    driver.server.send("GatewaySomethingNew", ES, {})
    driver.server.raw('{"type":3,"invocationId":"999"}\x1e')
    driver.pump()
    assert driver.machine.state is StreamState.CONNECTED
    assert driver.take(EventDropped) == []


def test_unsubscribed_during_resubscription():
    driver = started(market_driver(), Subscription.quotes(ES), Subscription.trades(ES))
    driver.auto_ack = False
    driver.drop()
    driver.advance(60.0)
    server = driver.servers[-1]
    assert len(server.invocations) == 2  # both resubscriptions sent, neither acknowledged
    driver.machine.unsubscribe(Subscription.trades(ES), driver.now)
    driver.pump()
    for invocation in list(server.invocations):
        server.ack(invocation)
    driver.pump()
    (resubscribed,) = driver.take(Resubscribed)
    assert resubscribed.subscriptions == (Subscription.quotes(ES),)
    assert server.subscribe_targets()[-1] == ("UnsubscribeContractTrades", (ES,))


def test_websocket_pings_from_the_server_are_answered():
    driver = started(market_driver(), Subscription.quotes(ES))
    driver.server.ws.ping(b"are you there")
    driver.pump()
    assert driver.machine.state is StreamState.CONNECTED
    assert driver.take(Disconnected) == []


def test_no_hub_for_a_subscription():
    with pytest.raises(LocalProtocolError, match="no hub serves"):
        hub_for([UserHub("https://h/hubs/user")], Subscription.quotes(ES))


def test_unacknowledged_subscription_replaces_the_connection():
    driver = started(market_driver(StreamConfig(ack_timeout=10.0, stale_after=None)))
    driver.server.auto_ack = False
    driver.machine.subscribe(Subscription.quotes(ES), driver.now)
    driver.pump()
    driver.events.clear()
    driver.advance(9.0)
    assert driver.take(Disconnected) == []
    driver.advance(1.0)
    (lost,) = driver.take(Disconnected)
    assert "not acknowledged" in lost.reason
    driver.advance(60.0)
    assert driver.machine.active == (Subscription.quotes(ES),)


# --- holding and pausing, for the session's back-pressure ---------------------------------


def test_hold_closes_on_purpose_and_release_connects_at_once() -> None:
    driver = started(market_driver(), Subscription.quotes(ES))
    server = driver.server
    assert server is not None
    driver.take(Connected)
    driver.machine.hold(driver.now, "the reader is behind")
    driver.pump()
    assert driver.machine.state is StreamState.HELD
    assert driver.take(Disconnected) == [Disconnected("market", "the reader is behind", True)]
    assert driver.closes[-1].reason == "the reader is behind"
    assert server.closed  # the close frame went out before the socket closed
    assert driver.machine.next_deadline() is None  # nothing happens until released
    driver.advance(3600.0)
    assert driver.machine.state is StreamState.HELD
    driver.machine.hold(driver.now, "again")  # already held: nothing more
    opens = len(driver.opens)
    driver.machine.release(driver.now)
    driver.pump()
    assert len(driver.opens) == opens + 1  # at once, no backoff: holding was not a failure
    assert driver.machine.state is StreamState.CONNECTED
    assert driver.take(Resubscribed) == [Resubscribed("market", (Subscription.quotes(ES),))]
    driver.machine.release(driver.now)  # not held: nothing happens
    assert driver.machine.state is StreamState.CONNECTED


def test_hold_before_the_handshake_or_while_backing_off_closes_quietly() -> None:
    driver = market_driver()
    driver.silent_server = True  # the upgrade is never answered
    started(driver, Subscription.quotes(ES))
    assert driver.machine.state is StreamState.HANDSHAKING
    driver.machine.hold(driver.now, "held")
    driver.pump()
    assert driver.machine.state is StreamState.HELD
    assert driver.take(Disconnected) == []  # never connected: nothing to announce
    assert driver.closes[-1].reason == "held"
    backing_off = started(market_driver(), Subscription.quotes(ES))
    backing_off.drop()
    assert backing_off.machine.state is StreamState.BACKOFF
    backing_off.machine.hold(backing_off.now, "held")
    assert backing_off.machine.state is StreamState.HELD
    backing_off.machine.stop(backing_off.now)
    backing_off.machine.hold(backing_off.now, "too late")
    assert backing_off.machine.state is StreamState.STOPPED


def test_a_socket_that_arrives_after_its_request_was_withdrawn_is_refused() -> None:
    machine = StreamMachine(MarketHub("https://h/hubs/market"), rng=random.Random(1))
    machine.subscribe(Subscription.quotes(ES), T0)
    machine.start(T0)
    machine.token_received(Secret("tok"), T0)
    assert machine.state is StreamState.CONNECTING
    machine.stop(T0)
    assert machine.connection_made(T0) is False  # close it unused


def test_paused_reading_stops_the_receive_deadlines_and_keeps_pinging() -> None:
    config = StreamConfig(keepalive_interval=5.0, server_timeout=10.0)
    driver = started(market_driver(config), Subscription.quotes(ES))
    driver.server_keepalive = None  # the server says nothing at all
    machine = driver.machine
    machine.pause_reading(driver.now)
    machine.pause_reading(driver.now + 1.0)  # already paused: the first moment counts
    assert machine.reading_paused
    server = driver.server
    assert server is not None
    pings = server.pings
    driver.advance(60.0)  # silence far past server_timeout: ours, not the server's
    assert machine.state is StreamState.CONNECTED
    assert server.pings > pings  # keep-alive went on
    machine.resume_reading(driver.now)
    machine.resume_reading(driver.now)  # not paused: nothing happens
    assert not machine.reading_paused
    deadline = machine.next_deadline()
    assert deadline is not None
    driver.advance(config.server_timeout)
    assert driver.take(Disconnected)[0].reason.startswith("no data from the server")


def test_a_pause_during_the_handshake_moves_its_deadline() -> None:
    config = StreamConfig(handshake_timeout=5.0)
    driver = market_driver(config)
    driver.silent_server = True
    started(driver, Subscription.quotes(ES))
    machine = driver.machine
    machine.pause_reading(driver.now)
    assert machine.next_deadline() is None
    driver.advance(60.0)
    assert machine.state is StreamState.HANDSHAKING  # not our peer's fault: we did not read
    machine.resume_reading(driver.now)
    assert machine.next_deadline() == driver.now + 5.0
    driver.advance(5.0)
    assert machine.state is StreamState.BACKOFF
