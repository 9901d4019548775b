"""The stream against the simulator: market data, books, user events, callbacks, faults, TLS."""

from __future__ import annotations

import inspect
import ssl
import threading
from typing import Any

import anyio
import pytest
import trustme

from tradeforge_anyio.stream import TradingStream as AsyncStream
from tradeforge_proto.core.events import (
    AccountUpdated,
    Connected,
    DepthReceived,
    Disconnected,
    FillReceived,
    MarketTradeReceived,
    OrderUpdated,
    PositionUpdated,
    QuoteUpdated,
    Resubscribed,
    Resynced,
    StreamEvent,
    StreamStopped,
)
from tradeforge_proto.realtime import StreamConfig, StreamState
from tradeforge_sim.server import SimServer
from tradeforge_sim.simulation import SimConfig
from tradeforge_sync.stream import TradingStream as SyncStream

from .facade import ACCOUNT, opened

pytestmark = pytest.mark.anyio


def count(kind: type, seen: list[StreamEvent]) -> int:
    return sum(isinstance(e, kind) for e in seen)


def has(kind: type, n: int = 1) -> Any:
    return lambda seen: count(kind, seen) >= n


@pytest.mark.parametrize("runtime", ["either"])
def test_both_runtimes_offer_the_same_stream_with_the_same_signatures(runtime: str) -> None:
    def public(cls: type) -> dict[str, str]:
        found = {}
        for name, member in inspect.getmembers(cls):
            if name.startswith("_"):
                continue
            if callable(member):  # the parameters: return types differ (awaitables)
                signature = inspect.signature(member).replace(return_annotation=None)
                found[name] = str(signature)
            else:
                found[name] = "attribute"
        return found

    asynchronous, blocking = public(AsyncStream), public(SyncStream)
    assert blocking.pop("close") == asynchronous.pop("aclose")
    for name in ("__iter__", "__aiter__"):
        blocking.pop(name, None)
        asynchronous.pop(name, None)
    assert blocking == asynchronous


async def test_market_data_and_a_live_book(runtime: str) -> None:
    async with SimServer() as sim, opened(runtime, sim, books=True) as face:
        mes = (await face.client_call("resolve_contract", "MES")).id
        await face.stream_call("subscribe_market", mes, quotes=True, trades=True, depth=True)
        seen = await face.read_until(
            lambda s: has(QuoteUpdated, 5)(s) and has(DepthReceived, 5)(s), "quotes and depth"
        )
        assert isinstance(seen[0], Connected)
        assert all(e.quote.contract_id == mes for e in seen if isinstance(e, QuoteUpdated))
        lock = face.stream.lock if face.blocking else threading.Lock()
        with lock:
            book = face.stream.book(mes)
            assert book is not None
            assert book.best_bid is not None
            assert book.best_ask is not None
            assert book.best_bid.price < book.best_ask.price
        assert face.stream.state("market") is StreamState.CONNECTED
        assert face.stream.state("user") is StreamState.IDLE  # nothing subscribed: no connection
        assert len(face.stream.subscriptions) == 3
        await face.close()
        assert face.stream.state("market") is StreamState.STOPPED
        rest = []
        while (event := await face.next(1.0)) is not None:
            rest.append(event)
        assert isinstance(rest[-1], StreamStopped)  # what came before closing, then the end


async def test_user_events_of_a_fill_in_order_and_callbacks(runtime: str) -> None:
    async with SimServer() as sim, opened(runtime, sim) as face:
        mes = (await face.client_call("resolve_contract", "MES")).id
        calls: list[StreamEvent] = []
        threads: set[str] = set()

        def record(event: StreamEvent) -> None:
            calls.append(event)
            threads.add(threading.current_thread().name)

        face.stream.on(record)
        face.stream.on(lambda event: 1 / 0)  # a broken callback stops nothing and is logged
        await face.stream_call("subscribe_user", ACCOUNT)
        await face.buy(mes)
        seen = await face.read_until(has(PositionUpdated), "the position")
        kinds = [
            type(e)
            for e in seen
            if isinstance(e, OrderUpdated | FillReceived | PositionUpdated | AccountUpdated)
            and not e.recovered
        ]
        assert kinds[:4] == [OrderUpdated, FillReceived, OrderUpdated, PositionUpdated]
        await face.read_until(has(AccountUpdated, 3), "the balance after the fill")
        assert [e for e in calls if not isinstance(e, StreamStopped)] == face.seen[: len(calls)]
        assert face.stream.callback_errors >= len(calls)
        if face.blocking:
            assert threads == {"tradeforge-user-hub"}  # callbacks run on the hub's driver


async def test_callbacks_see_each_event_before_the_reader_gets_it(runtime: str) -> None:
    async with SimServer(SimConfig(rate=2000.0)) as sim, opened(runtime, sim) as face:
        handed: set[int] = set()
        kept: list[StreamEvent] = []  # alive, so that no id is reused

        def record(event: StreamEvent) -> None:
            handed.add(id(event))
            kept.append(event)

        face.stream.on(record)
        mes = (await face.client_call("resolve_contract", "MES")).id
        await face.stream_call("subscribe_market", mes, quotes=True, trades=True)

        def checked(event: StreamEvent | None) -> list[StreamEvent]:
            # Looked at the moment the reader has it, before anything else can run.
            if event is None:
                return []
            assert id(event) in handed, f"the reader got {event!r} before the callbacks"
            return [event]

        got: list[StreamEvent] = []
        with anyio.fail_after(60):  # a safety net: a busy market gives 400 events in a second
            if face.blocking:

                def read() -> None:
                    while len(got) < 400:
                        got.extend(checked(face.stream.get(0.5)))

                await anyio.to_thread.run_sync(read)
            else:
                while len(got) < 400:
                    got.extend(checked(await face.stream.get(0.5)))
        assert count(QuoteUpdated, got)  # both kinds were checked, coalesced or not
        assert count(MarketTradeReceived, got)


async def test_a_broken_callback_is_logged_with_its_traceback(
    runtime: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with SimServer() as sim, opened(runtime, sim) as face:
        face.stream.on(lambda event: 1 / 0)
        with caplog.at_level("ERROR", logger="tradeforge.stream"):
            await face.stream_call("subscribe_user", ACCOUNT)
            await face.read_until(has(Resynced), "the first resync")
        failures = [r for r in caplog.records if "callback" in r.getMessage()]
        assert failures
        assert failures[0].exc_info is not None
        assert failures[0].exc_info[0] is ZeroDivisionError


async def test_dropped_hub_reconnects_resubscribes_and_resumes(runtime: str) -> None:
    async with SimServer() as sim, opened(runtime, sim) as face:
        mes = (await face.client_call("resolve_contract", "MES")).id
        await face.stream_call("subscribe_market", mes, quotes=True, trades=True)
        await face.read_until(has(QuoteUpdated, 3), "quotes")
        sim.faults.drop_hub_after = 3
        await face.read_until(has(Disconnected), "the drop")
        sim.faults.drop_hub_after = None
        seen = await face.read_until(has(Resubscribed), "the resubscription")
        (resubscribed,) = [e for e in seen if isinstance(e, Resubscribed)]
        assert len(resubscribed.subscriptions) == 2
        mark = len(seen)
        await face.read_until(lambda s: count(QuoteUpdated, s[mark:]) >= 3, "quotes again")


async def test_silent_server_and_expired_token(runtime: str) -> None:
    config = StreamConfig(server_timeout=0.8, keepalive_interval=0.3)
    async with SimServer() as sim, opened(runtime, sim, config=config) as face:
        mes = (await face.client_call("resolve_contract", "MES")).id
        await face.stream_call("subscribe_market", mes, quotes=True, trades=True)
        await face.read_until(has(QuoteUpdated), "a quote")
        sim.faults.silent = True
        seen = await face.read_until(has(Disconnected), "the silence noticed")
        lost = next(e for e in seen if isinstance(e, Disconnected))
        assert "no data from the server" in lost.reason
        sim.faults.silent = False
        sim.expire_tokens()
        await face.read_until(has(Connected, 2), "a new connection")
        mark = len(face.seen)
        await face.read_until(lambda s: count(QuoteUpdated, s[mark:]) >= 1, "quotes again")


async def serve(
    port: int, stop: anyio.Event, gone: anyio.Event, *, task_status: Any = anyio.TASK_STATUS_IGNORED
) -> None:
    async with SimServer(port=port) as sim:
        task_status.started(sim)
        await stop.wait()
    gone.set()  # its port is free again


async def test_malformed_frame_and_a_restarted_simulator(runtime: str) -> None:
    async with anyio.create_task_group() as tg:
        first, first_gone = anyio.Event(), anyio.Event()
        sim = await tg.start(serve, 0, first, first_gone)
        async with opened(runtime, sim) as face:
            mes = (await face.client_call("resolve_contract", "MES")).id
            await face.stream_call("subscribe_market", mes, quotes=True, trades=True)
            await face.read_until(has(QuoteUpdated), "a quote")
            sim.faults.malformed_frames = 1
            await face.read_until(has(Disconnected), "the malformed frame")
            mark = len(face.seen)
            await face.read_until(lambda s: count(QuoteUpdated, s[mark:]) >= 1, "quotes again")
            first.set()  # the gateway goes away...
            await face.read_until(has(Disconnected, 2), "the gateway gone")
            await first_gone.wait()
            second = anyio.Event()
            await tg.start(serve, sim.port, second, anyio.Event())  # ...back on the same port
            mark = len(face.seen)
            seen = await face.read_until(lambda s: count(QuoteUpdated, s[mark:]) >= 1, "back")
            assert any(isinstance(e, Connected) for e in seen[mark:])
            second.set()


async def test_get_with_a_timeout_returns_none_when_nothing_comes(runtime: str) -> None:
    async with SimServer() as sim, opened(runtime, sim) as face:
        assert await face.next(0.05) is None  # nothing subscribed: nothing comes
        mes = (await face.client_call("resolve_contract", "MES")).id
        await face.stream_call("subscribe_market", mes, quotes=True)
        await face.read_until(has(QuoteUpdated, 2), "quotes")
        await face.stream_call("unsubscribe_market", mes)
        assert face.stream.subscriptions == ()


async def test_both_hubs_over_tls(runtime: str) -> None:
    authority = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server)
    trusting = ssl.create_default_context()
    authority.configure_trust(trusting)
    async with SimServer(ssl_context=server) as sim:
        assert sim.api_url.startswith("https://")
        async with opened(runtime, sim, ssl_context=trusting, client_ssl=trusting) as face:
            mes = (await face.client_call("resolve_contract", "MES")).id
            await face.stream_call("subscribe_market", mes, quotes=True, trades=True)
            await face.stream_call("subscribe_user", ACCOUNT)
            seen = await face.read_until(
                lambda s: has(Connected, 2)(s) and has(QuoteUpdated, 3)(s), "both hubs"
            )
            assert {e.hub for e in seen if isinstance(e, Connected)} == {"user", "market"}


async def test_a_slow_reader_gets_coalesced_quotes_and_depth(runtime: str) -> None:
    async with SimServer() as sim, opened(runtime, sim, max_events=40) as face:
        mes = (await face.client_call("resolve_contract", "MES")).id
        await face.stream_call("subscribe_market", mes, quotes=True, trades=False, depth=True)
        queue = face.stream.queue
        # Nobody reads: quotes and depth merge per contract while they wait.
        await face.until(
            lambda: queue.coalesced_quotes > 0 and queue.coalesced_depth > 0, "coalescing"
        )
        assert len(queue) <= 40
        await face.read_until(has(QuoteUpdated, 5), "quotes")
        assert face.stream.stats.coalesced_quotes == queue.coalesced_quotes


async def test_the_stream_logs_its_life_and_never_a_token(
    runtime: str, caplog: pytest.LogCaptureFixture
) -> None:
    config = StreamConfig(backoff_cap=0.2)
    with caplog.at_level("INFO", logger="tradeforge"):
        async with SimServer() as sim, opened(runtime, sim, config=config, max_events=8) as face:
            await face.stream_call("subscribe_user", ACCOUNT)
            await face.until(lambda: face.stream.stats.pauses >= 1, "a pause for the reader")
            sim.faults.drop_hub_after = 1
            mes = (await face.client_call("resolve_contract", "MES")).id
            await face.buy(mes)
            await face.read_until(has(Resynced, 2), "a reconnect and its recovery")
            sim.faults.drop_hub_after = None
            token = face.client.token.reveal()
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("tradeforge")]
    text = "\n".join(messages)
    for expected in (
        "user hub connected",
        "user hub disconnected",
        "reconnect attempt",
        "resubscribed",
        "reading paused",
        "resynced:",
        "fills",
    ):
        assert expected in text, expected
    assert token not in text
    assert all(token not in str(r.args) for r in caplog.records)
