"""The ``/ws/stream`` WebSocket against the embedded simulator, served by uvicorn on a real port."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, cast
from urllib.parse import urlsplit

import anyio
import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tradeforge_anyio.service import create_app
from tradeforge_anyio.service.fanout import Fanout
from tradeforge_anyio.service.ws import BEARER_PROTOCOL
from tradeforge_proto.core.subscriptions import Subscription
from tradeforge_sim.server import SimServer
from tradeforge_sim.simulation import SimConfig

from .harness import served, simulator_client

pytestmark = pytest.mark.anyio
ACCOUNT = 20258288
TOKEN = "ws-s3rvice-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Service:
    def __init__(self, sim: SimServer, fanout: Fanout, url: str, http: httpx.AsyncClient) -> None:
        self.sim = sim
        self.fanout = fanout
        self.url = url
        self.http = http

    def connect(self, *, token: str | None = TOKEN, query: bool = False, **options: Any) -> Any:
        if token is None:
            return connect(self.url, **options)
        if query:
            return connect(f"{self.url}?token={token}", **options)
        return connect(self.url, additional_headers={"Authorization": f"Bearer {token}"}, **options)

    async def mes(self) -> str:
        response = await self.http.get("/contracts/by-symbol/MES")
        assert response.status_code == 200, response.text
        return str(response.json()["id"])

    def market_sessions(self) -> list[Any]:
        return [s for s in self.sim.simulation.sessions if s.hub == "market"]


@asynccontextmanager
async def serving(
    *, client_queue_size: int = 1000, config: SimConfig | None = None
) -> AsyncIterator[Service]:
    async with SimServer(config) as sim:
        app = create_app(simulator_client(sim), token=TOKEN, client_queue_size=client_queue_size)
        async with served(app) as base, httpx.AsyncClient(base_url=base, headers=AUTH) as http:
            ws_url = base.replace("http://", "ws://", 1) + "/ws/stream"
            yield Service(sim, app.state.fanout, ws_url, http)


async def receive(ws: ClientConnection) -> dict[str, Any]:
    with anyio.fail_after(10):
        message = json.loads(await ws.recv())
    assert isinstance(message, dict)
    return message


async def send(ws: ClientConnection, message: object) -> None:
    await ws.send(message if isinstance(message, str) else json.dumps(message))


async def until(
    ws: ClientConnection, wanted: set[str], where: Callable[[dict[str, Any]], bool] = bool
) -> dict[str, dict[str, Any]]:
    """Read until one message of each wanted event type (matching ``where``) arrived."""
    seen: dict[str, dict[str, Any]] = {}
    while not wanted <= seen.keys():
        message = await receive(ws)
        if message["event_type"] in wanted and where(message):
            seen.setdefault(message["event_type"], message)
    return seen


async def ack(ws: ClientConnection, kind: str = "SUBSCRIBED_ACK") -> dict[str, Any]:
    """The next acknowledgement, skipping stream events that may come first."""
    while True:
        message = await receive(ws)
        assert message["event_type"] != "ERROR", message
        if message["event_type"] == kind:
            return message


async def error(ws: ClientConnection) -> str:
    """The next ERROR's message, skipping stream events that may come first."""
    while True:
        message = await receive(ws)
        if message["event_type"] == "ERROR":
            return str(message["data"]["message"])


async def read_until_closed(ws: ClientConnection) -> None:
    with anyio.fail_after(30):  # a safety net
        while True:
            await ws.recv()


async def eventually(check: Callable[[], bool]) -> None:
    with anyio.fail_after(30):  # a safety net: the checks hold long before on any machine
        while not check():
            await anyio.sleep(0.05)


def tiny(url: str) -> socket.socket:
    """A connected socket with a small receive buffer: a reader that stays away backs up fast."""
    parts = urlsplit(url)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((parts.hostname or "127.0.0.1", parts.port or 80))
    sock.setblocking(False)
    return sock


def market(contract_id: str, *types: str) -> dict[str, Any]:
    return {"provider_contract_ids": [contract_id], "data_types": list(types)}


async def test_quotes_and_depth() -> None:
    async with serving() as service:
        mes = await service.mes()
        async with service.connect() as ws:
            await send(ws, {"action": "subscribe", "market_data": market(mes, "QUOTE", "DEPTH")})
            first = await receive(ws)
            assert first["event_type"] == "SUBSCRIBED_ACK"
            assert first["data"]["market_data"] == {mes: ["DEPTH", "QUOTE"]}
            seen = await until(ws, {"QUOTE", "DEPTH"})
            quote = seen["QUOTE"]["data"]
            assert quote["contract_id"] == mes
            assert isinstance(quote["best_bid"], str | None)
            assert seen["DEPTH"]["data"]["contract_id"] == mes
            assert seen["DEPTH"]["data"]["updates"]


async def test_clients_share_one_upstream_subscription() -> None:
    async with serving() as service:
        mes = await service.mes()
        quotes = Subscription.quotes(mes)
        request = {"action": "subscribe", "market_data": market(mes, "QUOTE")}
        async with service.connect() as one, service.connect(query=True) as two:
            await send(one, request)
            await ack(one)
            await send(two, request)
            await ack(two)
            await until(one, {"QUOTE"})
            await until(two, {"QUOTE"})
            stream = service.fanout.stream
            assert stream is not None
            assert stream.subscriptions.count(quotes) == 1
            assert service.fanout.holders(quotes) == 2
            sessions = service.market_sessions()
            assert len(sessions) == 1
            assert ("quotes", mes) in sessions[0].subscriptions
            health = (await service.http.get("/ready")).json()["stream"]
            assert health["running"] is True
            assert health["market_hub"] == "connected"
            assert (health["clients"], health["subscriptions"]) == (2, 1)

            await send(one, {"action": "unsubscribe", "market_data": market(mes, "QUOTE")})
            assert (await ack(one, "UNSUBSCRIBED_ACK"))["data"]["market_data"] == {}
            assert service.fanout.holders(quotes) == 1
            assert quotes in stream.subscriptions
            await until(two, {"QUOTE"})
        # Both gone: released upstream and at the gateway.
        await eventually(lambda: service.fanout.holders(quotes) == 0)
        await eventually(lambda: quotes not in stream.subscriptions)
        await eventually(
            lambda: all(("quotes", mes) not in s.subscriptions for s in service.market_sessions())
        )
        assert not service.fanout.clients
        assert (await service.http.get("/ready")).json()["stream"]["clients"] == 0


async def test_user_events() -> None:
    async with serving() as service:
        mes = await service.mes()
        async with service.connect() as ws:
            user = {
                "provider_account_ids": [str(ACCOUNT)],
                "data_types": ["ORDER_UPDATE", "USER_TRADE", "ACCOUNT_UPDATE"],
            }
            await send(ws, {"action": "subscribe", "user_data": user})
            answer = await ack(ws)
            assert answer["data"]["user_data"] == {
                str(ACCOUNT): ["ACCOUNT_UPDATE", "ORDER_UPDATE", "USER_TRADE"]
            }
            stream = service.fanout.stream
            assert stream is not None
            await eventually(lambda: Subscription.fills(ACCOUNT) in stream.subscriptions)
            await eventually(lambda: stream.state("user").name == "CONNECTED")
            order = {
                "account_id": ACCOUNT,
                "contract_id": mes,
                "side": "BUY",
                "type": "MARKET",
                "size": 1,
            }
            placed = await service.http.post("/orders", json=order)
            assert placed.status_code == 201, placed.text
            order_id = placed.json()["order_id"]
            seen = await until(
                ws,
                {"ORDER_UPDATE", "USER_TRADE"},
                lambda m: m["data"].get("order_id", m["data"].get("id")) == order_id,
            )
            assert seen["ORDER_UPDATE"]["data"]["account_id"] == ACCOUNT
            assert seen["ORDER_UPDATE"]["data"]["side"] == "BUY"
            assert isinstance(seen["USER_TRADE"]["data"]["price"], str)


async def test_bad_messages_keep_the_connection() -> None:
    async with serving() as service:
        mes = await service.mes()
        async with service.connect() as ws:
            bad: list[object] = [
                "not json",
                [1, 2],
                {"action": "watch"},
                {"action": "subscribe", "market_data": market(mes, "BOOK")},
                {"action": "subscribe", "market_data": {"provider_contract_ids": mes}},
                {"action": "subscribe", "user_data": {"provider_account_ids": ["x"]}},
            ]
            await ws.send(b"binary")
            assert (await receive(ws))["event_type"] == "ERROR"
            for message in bad:
                await send(ws, message)
                answer = await receive(ws)
                assert answer["event_type"] == "ERROR", (message, answer)
                assert answer["data"]["message"]
            flood = {
                "provider_contract_ids": [f"CON.F.US.X{n}.Z26" for n in range(334)],
                "data_types": ["QUOTE", "DEPTH", "TRADE"],
            }
            await send(ws, {"action": "subscribe", "market_data": flood})
            refused = await receive(ws)
            assert refused["event_type"] == "ERROR"
            assert "at most 1000 subscriptions" in refused["data"]["message"]
            await send(ws, {"action": "subscribe", "market_data": market(mes, "QUOTE")})
            assert (await ack(ws))["data"]["market_data"] == {mes: ["QUOTE"]}
            await until(ws, {"QUOTE"})
            stream = service.fanout.stream
            assert stream is not None
            assert stream.subscriptions == (Subscription.quotes(mes),)


async def test_token_required() -> None:
    async with serving() as service:
        for options in ({"token": None}, {"token": "wrong"}, {"token": "wrong", "query": True}):
            with pytest.raises(InvalidStatus):
                async with service.connect(**options):
                    pass
        mes = await service.mes()
        async with service.connect(query=True) as ws:
            await send(ws, {"action": "subscribe", "market_data": market(mes, "QUOTE")})
            assert (await ack(ws))["event_type"] == "SUBSCRIBED_ACK"
        # A browser offers the token as a subprotocol: no URL carries it.
        offered = cast(Any, [BEARER_PROTOCOL, TOKEN])
        async with service.connect(token=None, subprotocols=offered) as ws:
            assert ws.subprotocol == BEARER_PROTOCOL
            await send(ws, {"action": "subscribe", "market_data": market(mes, "QUOTE")})
            assert (await ack(ws))["event_type"] == "SUBSCRIBED_ACK"
        for wrong in ([BEARER_PROTOCOL, "wrong"], [TOKEN], [BEARER_PROTOCOL]):
            with pytest.raises(InvalidStatus):
                async with service.connect(token=None, subprotocols=cast(Any, wrong)):
                    pass


async def test_slow_client_is_disconnected() -> None:
    async with serving(client_queue_size=4, config=SimConfig(rate=2000.0)) as service:
        service.sim.market_paused = True  # a fast market only once everyone is in place
        mes = await service.mes()
        slow_client = service.connect(max_queue=1, sock=tiny(service.url))
        quotes: list[dict[str, Any]] = []
        async with service.connect() as fast, slow_client as slow:
            await send(fast, {"action": "subscribe", "market_data": market(mes, "QUOTE")})
            await ack(fast)

            async def keep_reading() -> None:
                # The fast client reads all along, however long the slow one takes to drop.
                async for text in fast:
                    message = json.loads(text)
                    if message["event_type"] == "QUOTE":
                        quotes.append(message)

            async with anyio.create_task_group() as group:
                group.start_soon(keep_reading)
                service.sim.market_paused = False
                # Prints are never coalesced: a reader that stays away overflows its queue.
                everything = market(mes, "QUOTE", "DEPTH", "TRADE")
                await send(slow, {"action": "subscribe", "market_data": everything})
                # It stays away until the service has given up on it, however long that takes.
                await eventually(
                    lambda: (
                        len(service.fanout.clients) == 1
                        or any(c.overflowed for c in service.fanout.clients)
                    )
                )
                with pytest.raises(ConnectionClosed):
                    await read_until_closed(slow)
                assert slow.close_code == 1013
                assert slow.close_reason == "client too slow"
                await eventually(lambda: len(service.fanout.clients) == 1)
                await eventually(lambda: service.fanout.holders(Subscription.trades(mes)) == 0)
                seen = len(quotes)
                await eventually(lambda: len(quotes) >= seen + 3)  # the fast one carries on
                assert fast.close_code is None
                group.cancel_scope.cancel()


async def test_requests_that_name_nothing_or_an_unknown_account_are_errors() -> None:
    async with serving() as service:
        mes = await service.mes()
        async with service.connect() as ws:
            no_types = {"provider_contract_ids": [mes], "data_types": []}
            await send(ws, {"action": "subscribe", "market_data": no_types})
            assert "data_types is empty" in await error(ws)
            await send(ws, {"action": "subscribe"})
            assert "nothing to subscribe" in await error(ws)
            stranger = {"provider_account_ids": [424242], "data_types": ["ORDER_UPDATE"]}
            await send(ws, {"action": "subscribe", "user_data": stranger})
            assert await error(ws) == "no such account for this login: 424242"
            assert not service.fanout.holders(Subscription.orders(424242))
            # The connection stays open and a good request still works.
            await send(ws, {"action": "subscribe", "market_data": market(mes, "QUOTE")})
            assert (await ack(ws))["data"]["market_data"] == {mes: ["QUOTE"]}
