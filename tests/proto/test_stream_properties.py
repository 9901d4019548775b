"""Any interleaving of user intentions, faults and time ends with the desired subscriptions."""

from __future__ import annotations

import random
from collections import Counter

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from tradeforge_proto.core import Reconnecting, StreamStopped, Subscription
from tradeforge_proto.providers.topstepx.hubs import MarketHub
from tradeforge_proto.realtime.machine import StreamConfig, StreamMachine, StreamState

from .stream_harness import Driver

ES = "CON.F.US.EP.Z25"
NQ = "CON.F.US.ENQ.Z25"
POOL = [
    Subscription.quotes(ES),
    Subscription.trades(ES),
    Subscription.depth(ES),
    Subscription.quotes(NQ),
    Subscription.depth(NQ),
]
# The in-memory hub sends no market data, so stale-feed detection is covered by its own tests.
CONFIG = StreamConfig(max_refusals=10_000, backoff_base=0.5, backoff_cap=20.0, stale_after=None)
SUBSCRIBE = {
    "SubscribeContractQuotes": "quotes",
    "SubscribeContractTrades": "trades",
    "SubscribeContractMarketDepth": "depth",
}
UNSUBSCRIBE = {"Un" + k[0].lower() + k[1:]: v for k, v in SUBSCRIBE.items()}


class StreamUnderFaults(RuleBasedStateMachine):
    """The stream machine driven by random intentions, faults and the passing of time."""

    def __init__(self) -> None:
        super().__init__()
        self.seed = random.Random(0)
        self.driver = Driver(
            StreamMachine(
                MarketHub("https://rtc.example/hubs/market"), config=CONFIG, rng=self.seed
            )
        )
        self.driver.token_lifetime = 3_600.0
        self.driver.machine.start(self.driver.now)
        self.driver.pump()

    @rule(sub=st.sampled_from(POOL))
    def subscribe(self, sub: Subscription) -> None:
        self.driver.machine.subscribe(sub, self.driver.now)
        self.driver.pump()

    @rule(sub=st.sampled_from(POOL))
    def unsubscribe(self, sub: Subscription) -> None:
        self.driver.machine.unsubscribe(sub, self.driver.now)
        self.driver.pump()

    @rule()
    def connection_drops(self) -> None:
        if self.driver.server is not None:
            self.driver.drop()

    @rule(status=st.sampled_from([401, 403, 500, 404]))
    def next_upgrade_is_rejected(self, status: int) -> None:
        self.driver.reject_next.append(status)

    @rule()
    def next_handshake_is_refused(self) -> None:
        self.driver.refuse_handshake_next.append("refused")

    @rule()
    def next_connect_fails(self) -> None:
        self.driver.connect_fails += 1

    @rule(lifetime=st.sampled_from([30.0, 400.0, 3_600.0]))
    def tokens_expire_sooner(self, lifetime: float) -> None:
        self.driver.token_lifetime = lifetime

    @rule(silent=st.booleans())
    def server_goes_silent(self, silent: bool) -> None:
        self.driver.silent_server = silent

    @rule(hold=st.booleans())
    def acknowledgements_held(self, hold: bool) -> None:
        self.driver.auto_ack = not hold
        server = self.driver.server
        if server is not None:
            server.auto_ack = not hold
            if not hold:
                self._release(server)

    @rule(message=st.sampled_from(["{junk\x1e", '{"type":7,"allowReconnect":true}\x1e']))
    def server_sends(self, message: str) -> None:
        server = self.driver.server
        if server is not None and server.open and not self.driver.silent_server:
            server.raw(message)
            self.driver.pump()

    @rule(seconds=st.floats(min_value=0.0, max_value=45.0))
    def time_passes(self, seconds: float) -> None:
        self.driver.advance(seconds)

    def _release(self, server) -> None:
        for invocation in server.invocations:
            if invocation.invocation_id not in server.acked and server.open:
                server.ack(invocation)
        self.driver.pump()

    @invariant()
    def never_two_subscribes_for_one_subscription_on_one_connection(self) -> None:
        for server in self.driver.servers:
            live: Counter[tuple[str, tuple[object, ...]]] = Counter()
            for invocation in server.invocations:
                if invocation.target in SUBSCRIBE:
                    key = (SUBSCRIBE[invocation.target], invocation.arguments)
                    assert live[key] == 0, f"subscribed twice on one connection: {key}"
                    live[key] += 1
                elif invocation.target in UNSUBSCRIBE:
                    live[(UNSUBSCRIBE[invocation.target], invocation.arguments)] -= 1

    @invariant()
    def delays_stay_inside_the_backoff_bounds(self) -> None:
        for event in self.driver.events:
            if isinstance(event, Reconnecting):
                assert 0.0 <= event.delay <= CONFIG.backoff_bound(event.attempt)
                assert event.delay <= CONFIG.backoff_cap

    @invariant()
    def never_stops_by_itself(self) -> None:
        assert not any(isinstance(e, StreamStopped) for e in self.driver.events)

    def teardown(self) -> None:
        driver = self.driver
        driver.reject_next.clear()
        driver.refuse_handshake_next.clear()
        driver.connect_fails = 0
        driver.silent_server = False
        driver.auto_ack = True
        driver.token_lifetime = 3_600.0
        machine = driver.machine
        for _ in range(200):
            server = driver.server
            if server is not None:
                server.auto_ack = True
                self._release(server)
            settled = (
                machine.state is StreamState.CONNECTED
                and server is not None
                and all(i.invocation_id in server.acked for i in server.invocations)
            )
            if settled and set(machine.active) == set(machine.desired):
                break
            driver.advance(5.0)
        assert machine.state is StreamState.CONNECTED
        assert set(machine.active) == set(machine.desired)


StreamUnderFaults.TestCase.settings = settings(
    max_examples=150, stateful_step_count=40, deadline=None, derandomize=True, database=None
)
TestStreamUnderFaults = StreamUnderFaults.TestCase
