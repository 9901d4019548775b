"""The blocking stream against the simulator (on its own thread), including its faults."""

from __future__ import annotations

import contextlib
import ssl
import threading
import time
from collections.abc import Callable

import pytest
import trustme

from tradeforge_anyio.sim.auth import DEFAULT_API_KEY, DEFAULT_USERNAME
from tradeforge_anyio.sim.server import SimServer
from tradeforge_anyio.stream import TradingStream as AsyncTradingStream
from tradeforge_proto.core import (
    AccountUpdated,
    Connected,
    DepthReceived,
    Disconnected,
    FillReceived,
    OrderSide,
    OrderType,
    OrderUpdated,
    PositionUpdated,
    QuoteUpdated,
    Resubscribed,
    StreamEvent,
    StreamStopped,
)
from tradeforge_proto.core.errors import LocalProtocolError
from tradeforge_proto.core.secret import Secret
from tradeforge_proto.realtime.machine import StreamConfig, StreamState
from tradeforge_sync.client import TradingClient
from tradeforge_sync.stream import TradingStream

from . import running_sim

ACCOUNT = 20258288
Until = Callable[[list[StreamEvent]], bool]


def client_for(sim: SimServer) -> TradingClient:
    return TradingClient.for_simulator(sim.api_url, DEFAULT_USERNAME, DEFAULT_API_KEY)


def collect(stream: TradingStream, until: Until, timeout: float = 10.0) -> list[StreamEvent]:
    seen: list[StreamEvent] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        event = stream.get(timeout=deadline - time.monotonic())
        if event is None:
            break
        seen.append(event)
        if until(seen):
            return seen
    pytest.fail(f"gave up after {timeout} s; saw {[type(e).__name__ for e in seen][-20:]}")


def has(kind: type, count: int = 1) -> Until:
    return lambda seen: sum(isinstance(e, kind) for e in seen) >= count


def live_threads() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name.startswith("tradeforge-")}


def test_the_public_methods_mirror_the_async_stream() -> None:
    def public(cls: type) -> set[str]:
        return {name for name in dir(cls) if not name.startswith("_")}

    blocking_only = {"close", "events", "get", "lock"}
    assert public(TradingStream) - blocking_only == public(AsyncTradingStream) - {"aclose"}


def test_market_data_and_a_live_book() -> None:
    with running_sim() as sim, client_for(sim) as client:
        mes = client.resolve_contract("MES")
        with client.stream(books=True) as stream:
            stream.subscribe_market(mes.id, quotes=True, trades=True, depth=True)
            seen = collect(stream, lambda s: has(QuoteUpdated, 5)(s) and has(DepthReceived, 5)(s))
            assert isinstance(seen[0], Connected)
            quotes = [e for e in seen if isinstance(e, QuoteUpdated)]
            assert all(q.quote.contract_id == mes.id for q in quotes)
            with stream.lock:
                book = stream.book(mes.id)
                assert book is not None
                assert book.best_bid is not None
                assert book.best_ask is not None
                assert book.best_bid.price < book.best_ask.price
            assert stream.state("market") is StreamState.CONNECTED
            assert stream.state("user") is StreamState.IDLE  # no user subscription: not connected
            assert live_threads() == {"tradeforge-market-hub"}
            assert len(stream.subscriptions) == 3
        assert stream.state("market") is StreamState.STOPPED
        assert live_threads() == set()
        rest = list(stream)  # what arrived before closing, then the iteration ends
        assert isinstance(rest[-1], StreamStopped)
        with pytest.raises(LocalProtocolError, match="closed"):
            stream.subscribe_market(mes.id)


def test_user_events_of_a_fill_in_order_and_callbacks() -> None:
    with running_sim() as sim, client_for(sim) as client:
        mes = client.resolve_contract("MES")
        calls: list[StreamEvent] = []
        threads: set[str] = set()

        def record(event: StreamEvent) -> None:
            calls.append(event)
            if not isinstance(event, StreamStopped):  # an unused hub stops on close()'s thread
                threads.add(threading.current_thread().name)

        with client.stream() as stream:
            stream.on(record)
            stream.on(lambda event: 1 / 0)  # a broken callback does not stop anything
            stream.subscribe_user(ACCOUNT)
            collect(stream, has(Connected))
            time.sleep(0.2)  # subscriptions acknowledged
            client.place_order(ACCOUNT, mes.id, OrderSide.BUY, OrderType.MARKET, 1)
            seen = collect(stream, has(AccountUpdated))
            kinds = [
                type(e)
                for e in seen
                if isinstance(e, OrderUpdated | FillReceived | PositionUpdated | AccountUpdated)
            ]
            assert kinds[:5] == [
                OrderUpdated,
                FillReceived,
                OrderUpdated,
                PositionUpdated,
                AccountUpdated,
            ]
        assert any(isinstance(e, FillReceived) for e in calls)
        assert threads == {"tradeforge-user-hub"}  # callbacks run on the driver thread
        assert stream.callback_errors > 0


def test_dropped_hub_reconnects_resubscribes_and_resumes() -> None:
    with running_sim() as sim, client_for(sim) as client:
        mes = client.resolve_contract("MES")
        with client.stream() as stream:
            stream.subscribe_market(mes.id, quotes=True, trades=True)
            collect(stream, has(QuoteUpdated, 3))
            sim.faults.drop_hub_after = 3
            collect(stream, has(Disconnected))
            sim.faults.drop_hub_after = None
            seen = collect(stream, has(Resubscribed))
            (resubscribed,) = [e for e in seen if isinstance(e, Resubscribed)]
            assert len(resubscribed.subscriptions) == 2
            collect(stream, has(QuoteUpdated, 3))


def test_silent_server_and_expired_token() -> None:
    config = StreamConfig(server_timeout=0.8, keepalive_interval=0.3)
    with running_sim() as sim, client_for(sim) as client:
        mes = client.resolve_contract("MES")
        with client.stream(config=config) as stream:
            stream.subscribe_market(mes.id)
            collect(stream, has(QuoteUpdated))
            sim.faults.silent = True
            seen = collect(stream, has(Disconnected))
            lost = next(e for e in seen if isinstance(e, Disconnected))
            assert "no data from the server" in lost.reason
            sim.faults.silent = False
            sim.expire_tokens()
            collect(stream, has(Connected))
            collect(stream, has(QuoteUpdated))


def test_malformed_frame_and_a_restarted_simulator() -> None:
    with contextlib.ExitStack() as first:
        sim = first.enter_context(running_sim())
        with client_for(sim) as client, client.stream() as stream:
            mes = client.resolve_contract("MES")
            stream.subscribe_market(mes.id)
            collect(stream, has(QuoteUpdated))
            sim.faults.malformed_frames = 1
            collect(stream, has(Disconnected))
            collect(stream, has(QuoteUpdated))
            first.close()  # the gateway goes away...
            collect(stream, has(Disconnected))
            with running_sim(port=sim.port):  # ...and comes back on the same port
                seen = collect(stream, has(QuoteUpdated), timeout=20)
                assert any(isinstance(e, Connected) for e in seen)
                stream.close()


def test_events_with_a_timeout_stop_when_nothing_comes() -> None:
    with running_sim() as sim, client_for(sim) as client:
        mes = client.resolve_contract("MES")
        stream = client.stream()
        try:
            assert stream.get(timeout=0.05) is None
            started = time.monotonic()
            assert list(stream.events(timeout=0.2)) == []  # nothing subscribed: nothing comes
            assert 0.15 <= time.monotonic() - started < 1.0
            stream.subscribe_market(mes.id)
            seen = []
            for event in stream.events(timeout=2.0):
                seen.append(event)
                if has(QuoteUpdated, 2)(seen):
                    stream.unsubscribe_market(mes.id)
                    break
            assert has(QuoteUpdated, 2)(seen)
        finally:
            stream.close()
        assert live_threads() == set()
        stream.close()  # closing twice is fine


def test_both_hubs_over_tls() -> None:
    authority = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server)
    trusting = ssl.create_default_context()
    authority.configure_trust(trusting)
    with running_sim(ssl_context=server) as sim:
        client = TradingClient.for_simulator(
            sim.api_url, DEFAULT_USERNAME, DEFAULT_API_KEY, ssl_context=trusting
        )
        with client, client.stream(ssl_context=trusting) as stream:
            assert sim.api_url.startswith("https://")
            mes = client.resolve_contract("MES")
            stream.subscribe_market(mes.id)
            stream.subscribe_user(ACCOUNT)
            seen = collect(stream, lambda s: has(Connected, 2)(s) and has(QuoteUpdated, 3)(s))
            assert {e.hub for e in seen if isinstance(e, Connected)} == {"user", "market"}


def test_a_slow_reader_gets_coalesced_quotes_and_depth() -> None:
    with running_sim() as sim, client_for(sim) as client:
        mes = client.resolve_contract("MES")
        with client.stream(max_events=40) as stream:
            stream.subscribe_market(mes.id, quotes=True, trades=True, depth=True)
            time.sleep(0.6)  # nobody reads: quotes and depth merge per contract while waiting
            assert len(stream.queue) <= 40
            assert stream.queue.coalesced_quotes > 0
            assert stream.queue.coalesced_depth > 0
            seen = collect(stream, has(QuoteUpdated, 5))
            assert isinstance(seen[0], Connected)
            assert stream.overflowed == 0


class Broken(BaseException):
    """Not an Exception: nothing in the driver may swallow it."""


def test_a_failed_driver_surfaces_to_the_reader() -> None:
    with running_sim() as sim, client_for(sim) as client:
        mes = client.resolve_contract("MES")

        def refuse(*, force: bool = False) -> Secret:
            raise Broken

        client.fresh_token = refuse  # type: ignore[method-assign]
        stream = client.stream()
        try:
            stream.subscribe_market(mes.id)
            with pytest.raises(Broken):
                list(stream.events(timeout=5))
            assert stream.get(timeout=0) is None  # raised once
        finally:
            stream.close()
        assert live_threads() == set()
