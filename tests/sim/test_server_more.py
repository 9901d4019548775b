"""More of the simulator over sockets: TLS, every endpoint's 401, logout, hub auth, random drops."""

from __future__ import annotations

import contextlib
import ssl
from datetime import UTC, datetime
from typing import Any

import anyio
import pytest
import trustme

from tradeforge_proto.core import (
    AuthenticationError,
    BarUnit,
    Connected,
    Disconnected,
    OrderQuery,
    OrderSide,
    OrderType,
    ProviderError,
    QuoteUpdated,
    Subscription,
)
from tradeforge_proto.core.operations import HttpRequest, Operation
from tradeforge_proto.http import HttpClientConnection
from tradeforge_proto.providers import topstepx
from tradeforge_proto.providers.topstepx.hubs import MarketHub
from tradeforge_proto.websocket import Accepted, WebSocketClient, WsEvent
from tradeforge_sim.auth import DEFAULT_API_KEY, DEFAULT_USERNAME
from tradeforge_sim.server import SimServer

from .netclient import Hub, Rest

pytestmark = pytest.mark.anyio
T0 = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture
def anyio_backend():
    return "asyncio"


AUTHENTICATED: list[Operation[Any]] = [
    topstepx.validate(),
    topstepx.logout(),
    topstepx.search_accounts(),
    topstepx.search_contracts("ES"),
    topstepx.get_contract("CON.F.US.EP.Z25"),
    topstepx.available_contracts(),
    topstepx.retrieve_bars("CON.F.US.EP.Z25", BarUnit.MINUTE, 1, start=T0, end=T0),
    topstepx.search_orders(1, T0),
    topstepx.search_open_orders(1),
    topstepx.get_order(1, 2),
    topstepx.query_orders(OrderQuery(1)),
    topstepx.place_order(1, "C", OrderSide.BUY, OrderType.MARKET, 1),
    topstepx.cancel_order(1, 2),
    topstepx.modify_order(1, 2, size=1),
    topstepx.search_open_positions(1),
    topstepx.close_position(1, "C"),
    topstepx.partial_close_position(1, "C", 1),
    topstepx.search_trades(1, T0),
]


async def test_every_authenticated_endpoint_answers_401_without_a_token():
    async with SimServer() as sim:
        rest = Rest(sim.api_url)
        for operation in AUTHENTICATED:
            with pytest.raises(AuthenticationError) as refused:
                await rest.run(operation)
            assert refused.value.status == 401, operation.name
        with pytest.raises(AuthenticationError) as app:
            await rest.run(topstepx.login_app("u", "p", "d", "a", "v"))
        assert app.value.code_name == "AppNotFound"
        assert await rest.run(topstepx.ping()) == "pong"
        await rest.aclose()


async def test_logout_ends_the_token_and_unknown_ids_give_their_codes():
    async with SimServer() as sim:
        rest = Rest(sim.api_url)
        await rest.login(DEFAULT_USERNAME, DEFAULT_API_KEY)
        with pytest.raises(ProviderError) as missing_contract:
            await rest.run(topstepx.get_contract("CON.F.US.NOPE.Z25"))
        assert missing_contract.value.code_name == "ContractNotFound"
        with pytest.raises(ProviderError) as missing_order:
            await rest.run(topstepx.get_order(20258288, 42))
        assert missing_order.value.code_name == "OrderNotFound"
        with pytest.raises(ProviderError) as missing_account:
            await rest.run(topstepx.search_open_orders(999))
        assert missing_account.value.code_name == "AccountNotFound"
        await rest.run(topstepx.logout())
        with pytest.raises(AuthenticationError):
            await rest.run(topstepx.search_accounts())
        await rest.aclose()


async def test_tls_when_given_a_certificate():
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)
    async with SimServer(ssl_context=server_context) as sim:
        assert sim.api_url.startswith("https://127.0.0.1:")
        stream = await anyio.connect_tcp(
            "127.0.0.1", sim.port, ssl_context=client_context, tls_hostname="127.0.0.1"
        )
        http = HttpClientConnection(f"127.0.0.1:{sim.port}")
        await stream.send(http.send_request(HttpRequest("GET", "/api/Status/ping")))
        response = None
        while response is None:
            response = http.receive_data(await stream.receive())
        assert response.status == 200
        assert response.body == b"pong"
        with contextlib.suppress(anyio.BrokenResourceError):
            await stream.aclose()
        untrusting = ssl.create_default_context()  # does not know the test authority
        with pytest.raises(ssl.SSLCertVerificationError):
            await anyio.connect_tcp(
                "127.0.0.1", sim.port, ssl_context=untrusting, tls_hostname="127.0.0.1"
            )


async def test_hub_accepts_the_token_in_an_authorization_header():
    async with SimServer() as sim:
        rest = Rest(sim.api_url)
        token = await rest.login(DEFAULT_USERNAME, DEFAULT_API_KEY)
        await rest.aclose()
        stream = await anyio.connect_tcp("127.0.0.1", sim.port)
        client = WebSocketClient(
            f"127.0.0.1:{sim.port}", "/hubs/user", headers=(("Authorization", f"Bearer {token}"),)
        )
        await stream.send(client.data_to_send())
        events: list[WsEvent] = []
        while not events:
            events = client.receive_data(await stream.receive())
        assert isinstance(events[0], Accepted)
        await stream.aclose()


async def test_random_drops_are_survived():
    async with SimServer() as sim:
        rest = Rest(sim.api_url)
        token = await rest.login(DEFAULT_USERNAME, DEFAULT_API_KEY)
        contract = next(
            c.id for c in await rest.run(topstepx.available_contracts()) if "MES" in c.id
        )
        await rest.aclose()
        hub = Hub(MarketHub(sim.market_hub_url), token)
        hub.subscribe(Subscription.quotes(contract))
        async with anyio.create_task_group() as tg:
            tg.start_soon(hub.run)
            await hub.wait_for(lambda e: isinstance(e, QuoteUpdated))
            sim.faults.drop_probability = 0.2
            await hub.wait_for(lambda e: isinstance(e, Disconnected), timeout=10)
            sim.faults.drop_probability = 0.0
            await hub.wait_for(lambda e: isinstance(e, Connected) and e.attempt >= 1, timeout=10)
            tg.cancel_scope.cancel()
