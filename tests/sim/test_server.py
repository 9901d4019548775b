"""The simulator over real loopback sockets, driven by the project's own sans-IO core."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal

import anyio
import pytest

from tradeforge_proto.core import (
    AccountUpdated,
    AuthenticationError,
    BarUnit,
    Connected,
    DepthReceived,
    FillReceived,
    OrderBook,
    OrderQuery,
    OrderSide,
    OrderStatus,
    OrderType,
    OrderUpdated,
    PositionUpdated,
    ProviderError,
    QuoteUpdated,
    RateLimited,
    Resynced,
    ServerError,
    Subscription,
    ValidationFailed,
)
from tradeforge_proto.core.operations import HttpRequest
from tradeforge_proto.providers import topstepx
from tradeforge_proto.providers.topstepx.hubs import MarketHub, UserHub
from tradeforge_sim.auth import DEFAULT_API_KEY, DEFAULT_USERNAME
from tradeforge_sim.server import SimServer

from .netclient import Hub, Rest

pytestmark = pytest.mark.anyio
ACCOUNT = 20258288


@pytest.fixture
def anyio_backend():
    return "asyncio"


async def logged_in(sim: SimServer) -> Rest:
    rest = Rest(sim.api_url)
    await rest.login(DEFAULT_USERNAME, DEFAULT_API_KEY)
    return rest


async def test_every_read_endpoint_answers():
    async with SimServer() as sim:
        assert sim.api_url.startswith("http://127.0.0.1:")
        rest = await logged_in(sim)
        accounts = await rest.run(topstepx.search_accounts())
        assert [a.id for a in accounts] == [20258288, 20258289]
        contracts = await rest.run(topstepx.available_contracts())
        mes = next(c for c in contracts if c.symbol_id == "F.US.MES")
        assert mes.tick_size == Decimal("0.25")
        assert mes.tick_value == Decimal("1.25")
        found = await rest.run(topstepx.search_contracts("MNQ"))
        assert found
        assert all("MNQ" in c.id for c in found)
        assert (await rest.run(topstepx.get_contract(mes.id))) == mes
        now = datetime.now(UTC)
        bars = await rest.run(
            topstepx.retrieve_bars(
                mes.id, BarUnit.MINUTE, 1, start=now - timedelta(hours=2), end=now, limit=30
            )
        )
        assert len(bars) == 30
        assert bars == sorted(bars, key=lambda b: b.time)
        assert await rest.run(topstepx.search_open_positions(ACCOUNT)) == []
        assert await rest.run(topstepx.search_open_orders(ACCOUNT)) == []
        assert await rest.run(topstepx.search_trades(ACCOUNT, now - timedelta(days=1))) == []
        assert (await rest.run(topstepx.ping())) == "pong"
        fresh = await rest.run(topstepx.validate())
        assert fresh.reveal() != rest.token
        await rest.aclose()


async def test_order_lifecycle_and_error_paths():
    async with SimServer() as sim:
        rest = await logged_in(sim)
        mes = next(c for c in await rest.run(topstepx.available_contracts()) if "MES" in c.id)
        order_id = await rest.run(
            topstepx.place_order(
                ACCOUNT, mes.id, OrderSide.BUY, OrderType.MARKET, 2, custom_tag="t1"
            )
        )
        order = await rest.run(topstepx.get_order(ACCOUNT, order_id))
        assert order.status is OrderStatus.FILLED
        assert order.fill_volume == 2
        (position,) = await rest.run(topstepx.search_open_positions(ACCOUNT))
        assert position.size == 2
        with pytest.raises(ProviderError) as duplicate:
            await rest.run(
                topstepx.place_order(
                    ACCOUNT, mes.id, OrderSide.BUY, OrderType.MARKET, 1, custom_tag="t1"
                )
            )
        assert duplicate.value.code_name == "OrderRejected"
        ticks = (position.average_price / mes.tick_size).to_integral_value(rounding=ROUND_FLOOR)
        far = ticks * mes.tick_size - 100
        resting = await rest.run(
            topstepx.place_order(
                ACCOUNT, mes.id, OrderSide.BUY, OrderType.LIMIT, 1, limit_price=far
            )
        )
        assert [o.id for o in await rest.run(topstepx.search_open_orders(ACCOUNT))] == [resting]
        await rest.run(topstepx.modify_order(ACCOUNT, resting, limit_price=far - 1))
        await rest.run(topstepx.cancel_order(ACCOUNT, resting))
        with pytest.raises(ProviderError) as gone:
            await rest.run(topstepx.cancel_order(ACCOUNT, resting))
        assert gone.value.code_name == "OrderNotFound"
        await rest.run(topstepx.partial_close_position(ACCOUNT, mes.id, 1))
        await rest.run(topstepx.close_position(ACCOUNT, mes.id))
        with pytest.raises(ProviderError) as flat:
            await rest.run(topstepx.close_position(ACCOUNT, mes.id))
        assert flat.value.code_name == "PositionNotFound"
        fills = await rest.run(
            topstepx.search_trades(ACCOUNT, datetime.now(UTC) - timedelta(hours=1))
        )
        assert sum(fill.size for fill in fills) == 4  # a market order may fill at several prices
        assert fills[-1].profit_and_loss is not None
        with pytest.raises(ProviderError) as unknown:
            await rest.run(
                topstepx.place_order(
                    ACCOUNT, "CON.F.US.XXX.Z25", OrderSide.BUY, OrderType.MARKET, 1
                )
            )
        assert unknown.value.code_name == "ContractNotFound"
        page = await rest.run(topstepx.query_orders(topstepx_query()))
        assert page.total_count == len(page.orders) >= 4
        await rest.aclose()


def topstepx_query() -> OrderQuery:
    return OrderQuery(ACCOUNT, include_total_count=True)


async def test_auth_validation_and_rate_limit_errors():
    async with SimServer() as sim:
        rest = Rest(sim.api_url)
        with pytest.raises(AuthenticationError) as bad:
            await rest.login(DEFAULT_USERNAME, "wrong")
        assert bad.value.code_name == "InvalidCredentials"
        with pytest.raises(AuthenticationError) as missing:
            await rest.run(topstepx.search_accounts())
        assert missing.value.status == 401
        await rest.login(DEFAULT_USERNAME.upper(), DEFAULT_API_KEY)
        response = await rest.send(
            HttpRequest(
                "POST",
                "/API/ORDER/PLACE",
                (("Content-Type", "application/json"),),
                b'{"accountId":1}',
            )
        )
        assert response.status == 400
        with pytest.raises(ValidationFailed) as invalid:
            topstepx.place_order(ACCOUNT, "C", OrderSide.BUY, OrderType.MARKET).parse_response(
                response
            )
        assert "contractId" in invalid.value.errors
        sim.expire_tokens()
        with pytest.raises(AuthenticationError):
            await rest.run(topstepx.search_accounts())
        await rest.login(DEFAULT_USERNAME, DEFAULT_API_KEY)
        sim.faults.rest_statuses.extend([503, 429])
        with pytest.raises(ServerError):
            await rest.run(topstepx.search_accounts())
        with pytest.raises(RateLimited) as limited:
            await rest.run(topstepx.search_accounts())
        assert limited.value.retry_after == 1.0
        assert await rest.run(topstepx.search_accounts())
        await rest.aclose()


async def test_history_budget_answers_429_with_retry_after():
    from tradeforge_proto.core.operations import RateBucket
    from tradeforge_proto.limits import RateBudget
    from tradeforge_sim.simulation import SimConfig

    config = SimConfig(
        budgets={RateBucket.GENERAL: RateBudget(200, 60), RateBucket.HISTORY: RateBudget(2, 30)}
    )
    async with SimServer(config) as sim:
        rest = await logged_in(sim)
        mes = next(c for c in await rest.run(topstepx.available_contracts()) if "MES" in c.id)
        now = datetime.now(UTC)
        op = topstepx.retrieve_bars(
            mes.id, BarUnit.HOUR, 1, start=now - timedelta(days=1), end=now, limit=5
        )
        await rest.run(op)
        await rest.run(op)
        with pytest.raises(RateLimited) as limited:
            await rest.run(op)
        assert limited.value.retry_after is not None
        assert 1 <= limited.value.retry_after <= 30
        assert await rest.run(topstepx.search_accounts())  # the general budget is separate
        await rest.aclose()


async def test_fill_reaches_the_user_hub_in_the_gateway_order():
    async with SimServer() as sim:
        rest = await logged_in(sim)
        hub = Hub(UserHub(sim.user_hub_url), rest.token)
        for sub in Subscription.user(ACCOUNT):
            hub.subscribe(sub)
        async with anyio.create_task_group() as tg:
            tg.start_soon(hub.run)
            await hub.wait_for(lambda e: isinstance(e, Resynced))  # subscribed and synced
            mes = next(c for c in await rest.run(topstepx.available_contracts()) if "MES" in c.id)
            order_id = await rest.run(
                topstepx.place_order(ACCOUNT, mes.id, OrderSide.BUY, OrderType.MARKET, 1)
            )
            await hub.wait_for(lambda e: isinstance(e, AccountUpdated) and not e.recovered)
            user_events = [
                e
                for e in hub.events
                if isinstance(e, OrderUpdated | FillReceived | PositionUpdated | AccountUpdated)
                and not e.recovered
            ]
            kinds = [type(e).__name__ for e in user_events]
            assert kinds[:5] == [
                "OrderUpdated",
                "FillReceived",
                "OrderUpdated",
                "PositionUpdated",
                "AccountUpdated",
            ]
            pending, _, filled, position = user_events[:4]
            assert isinstance(pending, OrderUpdated)
            assert isinstance(filled, OrderUpdated)
            assert isinstance(position, PositionUpdated)
            assert pending.order.status is OrderStatus.PENDING
            assert filled.order.status is OrderStatus.FILLED
            assert filled.order.id == order_id
            assert position.position.size == 1
            tg.cancel_scope.cancel()
        await rest.aclose()


async def test_depth_snapshot_and_updates_rebuild_the_simulators_book():
    async with SimServer() as sim:
        rest = await logged_in(sim)
        mes = next(c for c in await rest.run(topstepx.available_contracts()) if "MES" in c.id)
        hub = Hub(MarketHub(sim.market_hub_url), rest.token)
        hub.subscribe(Subscription.depth(mes.id))
        async with anyio.create_task_group() as tg:
            tg.start_soon(hub.run)
            await hub.wait_for(lambda e: isinstance(e, DepthReceived))
            # Updates flow on top of the snapshot.
            await hub.wait_for(lambda _: count(hub, DepthReceived) >= 5, timeout=15)
            sim.market_paused = True
            bids, asks = sim.simulation.market.levels(mes.id)

            def rebuilt() -> OrderBook:
                book = OrderBook(mes.id)
                for event in hub.events:
                    if isinstance(event, DepthReceived):
                        book.apply_all(event.updates)
                return book

            def matches() -> bool:
                book = rebuilt()
                return [(lv.price, lv.volume) for lv in book.bids()] == bids and [
                    (lv.price, lv.volume) for lv in book.asks()
                ] == asks

            # Whatever was pushed before the pause arrives, and then the books agree.
            await hub.wait_for(lambda _: matches(), timeout=10)
            tg.cancel_scope.cancel()
        depth = [e for e in hub.events if isinstance(e, DepthReceived)]
        assert len(depth) > 2
        assert depth[0].updates[0].type.name == "RESET"
        await rest.aclose()


async def with_market_hub(sim: SimServer, rest: Rest, *subs: Subscription, config=None) -> Hub:
    hub = Hub(MarketHub(sim.market_hub_url), rest.token, config)
    for sub in subs:
        hub.subscribe(sub)
    return hub


async def mes_of(rest: Rest) -> str:
    return next(c.id for c in await rest.run(topstepx.available_contracts()) if "MES" in c.id)


def count(hub: Hub, kind: type) -> int:
    return sum(isinstance(e, kind) for e in hub.events)


async def test_fault_drop_after_n_messages_makes_the_client_reconnect():
    from tradeforge_proto.core import Disconnected, Resubscribed

    async with SimServer() as sim:
        rest = await logged_in(sim)
        hub = await with_market_hub(sim, rest, Subscription.quotes(await mes_of(rest)))
        async with anyio.create_task_group() as tg:
            tg.start_soon(hub.run)
            await hub.wait_for(lambda e: isinstance(e, QuoteUpdated))
            sim.faults.drop_hub_after = 5
            await hub.wait_for(lambda e: isinstance(e, Disconnected))
            sim.faults.drop_hub_after = None
            await hub.wait_for(lambda e: isinstance(e, Resubscribed), timeout=10)
            before = count(hub, QuoteUpdated)
            await hub.wait_for(lambda _: count(hub, QuoteUpdated) > before)  # events resume
            tg.cancel_scope.cancel()
        await rest.aclose()


async def test_fault_hub_close_with_and_without_reconnect():
    from tradeforge_proto.core import Disconnected

    async with SimServer() as sim:
        rest = await logged_in(sim)
        hub = await with_market_hub(sim, rest, Subscription.quotes(await mes_of(rest)))
        async with anyio.create_task_group() as tg:
            tg.start_soon(hub.run)
            await hub.wait_for(lambda e: isinstance(e, QuoteUpdated))
            sim.faults.hub_close = ("maintenance", True)
            (first,) = await hub.wait_for(lambda e: isinstance(e, Disconnected))
            assert isinstance(first, Disconnected)
            assert "maintenance" in first.reason
            await hub.wait_for(lambda e: isinstance(e, Connected) and e.attempt == 1, timeout=10)
            assert hub.token_fetches == 1  # allowed to reconnect: the token was kept
            sim.faults.hub_close = ("go away", False)
            await hub.wait_for(lambda e: isinstance(e, Connected) and e.attempt == 2, timeout=10)
            assert hub.token_fetches == 2  # a refusal: a fresh token was asked for
            tg.cancel_scope.cancel()
        await rest.aclose()


async def test_fault_malformed_frame_reconnects_without_crashing():
    from tradeforge_proto.core import Disconnected

    async with SimServer() as sim:
        rest = await logged_in(sim)
        hub = await with_market_hub(sim, rest, Subscription.quotes(await mes_of(rest)))
        async with anyio.create_task_group() as tg:
            tg.start_soon(hub.run)
            await hub.wait_for(lambda e: isinstance(e, QuoteUpdated))
            sim.faults.malformed_frames = 1
            (lost,) = await hub.wait_for(lambda e: isinstance(e, Disconnected))
            assert isinstance(lost, Disconnected)
            assert "protocol error" in lost.reason
            await hub.wait_for(lambda e: isinstance(e, Connected) and e.attempt == 1, timeout=10)
            tg.cancel_scope.cancel()
        await rest.aclose()


async def test_fault_silent_server_is_detected():
    from tradeforge_proto.core import Disconnected
    from tradeforge_proto.realtime.machine import StreamConfig

    async with SimServer() as sim:
        rest = await logged_in(sim)
        config = StreamConfig(server_timeout=0.6, keepalive_interval=0.2)
        hub = await with_market_hub(
            sim, rest, Subscription.quotes(await mes_of(rest)), config=config
        )
        async with anyio.create_task_group() as tg:
            tg.start_soon(hub.run)
            await hub.wait_for(lambda e: isinstance(e, QuoteUpdated))
            sim.faults.silent = True
            (lost,) = await hub.wait_for(lambda e: isinstance(e, Disconnected))
            assert isinstance(lost, Disconnected)
            assert "no data from the server" in lost.reason
            sim.faults.silent = False
            await hub.wait_for(lambda e: isinstance(e, Connected) and e.attempt >= 1, timeout=10)
            tg.cancel_scope.cancel()
        await rest.aclose()


async def test_fault_refused_and_delayed_connections():
    async with SimServer() as sim:
        sim.faults.refuse_connections = 1
        rest = Rest(sim.api_url)
        with pytest.raises(Exception, match="closed the connection"):
            await rest.login(DEFAULT_USERNAME, DEFAULT_API_KEY)
        rest.stream = None
        sim.faults.connect_delay = 0.2
        started = anyio.current_time()
        await rest.login(DEFAULT_USERNAME, DEFAULT_API_KEY)
        assert anyio.current_time() - started >= 0.2
        sim.faults.rest_delay = 0.1
        started = anyio.current_time()
        await rest.run(topstepx.search_accounts())
        assert anyio.current_time() - started >= 0.1
        await rest.aclose()


async def test_hub_refuses_bad_tokens_and_unknown_hubs():
    from tradeforge_proto.websocket import Rejected, WebSocketClient, WsEvent

    async with SimServer() as sim:
        for target, status in (
            ("/hubs/user?access_token=nope", 401),
            ("/hubs/other?access_token=x", 404),
        ):
            stream = await anyio.connect_tcp("127.0.0.1", sim.port)
            client = WebSocketClient(f"127.0.0.1:{sim.port}", target)
            await stream.send(client.data_to_send())
            events: list[WsEvent] = []
            while not events:
                events = client.receive_data(await stream.receive())
            assert isinstance(events[0], Rejected)
            assert events[0].status == status
            await stream.aclose()
