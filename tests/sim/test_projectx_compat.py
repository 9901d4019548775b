"""Every payload the simulator sends carries what project-x-py 4.4.1 needs to parse it.

The SDK is not a dependency: ``projectx_fields`` records its expectations (see its docstring
for the source). One simulator session collects real payloads, raw JSON off loopback sockets:
REST bodies, and the user and market hubs' SignalR invocations; each test checks one kind.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import anyio
import anyio.abc
import pytest

from tradeforge_proto.core.operations import HttpRequest
from tradeforge_proto.signalr import (
    CompletionReceived,
    HandshakeCompleted,
    HubConnection,
    HubEvent,
    HubRole,
    InvocationReceived,
)
from tradeforge_proto.websocket import Accepted, TextReceived, WebSocketClient
from tradeforge_sim.auth import DEFAULT_API_KEY, DEFAULT_USERNAME
from tradeforge_sim.server import SimServer

from . import projectx_fields as px
from .netclient import Rest

ACCOUNT = 20258288
SAFETY = 30.0  # seconds: a generous bound on waits that normally end within a second or two
USER_TARGETS = frozenset(px.USER_EVENTS)
MARKET_TARGETS = frozenset({"GatewayQuote", "GatewayTrade", "GatewayDepth"})
TRADE, BEST_BID, BEST_ASK = 5, 4, 3  # DomType codes


# --- checking ---


def json_type(value: Any) -> str:
    """The JSON type name of a decoded value, in projectx_fields' vocabulary."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return type(value).__name__


def accepts(allowed: tuple[str, ...], value: Any) -> bool:
    kind = json_type(value)
    return kind in allowed or (kind == "integer" and "number" in allowed)


def problems(name: str, payload: Any, model: px.Model) -> list[str]:
    """What keeps project-x-py from parsing ``payload`` as ``name`` (empty when nothing)."""
    if not isinstance(payload, dict):
        return [f"{name}: expected an object, got {json_type(payload)}"]
    found: list[str] = []
    aliases = px.ALIASES.get(name, {})
    for key, allowed in model["required"].items():
        source = key if key in payload else aliases.get(key, key)
        if source not in payload:
            found.append(f"{name}: missing required key {key!r}")
        elif not accepts(allowed, payload[source]):
            found.append(f"{name}.{source}: {payload[source]!r} is not {'/'.join(allowed)}")
    for key, allowed in model["optional"].items():
        if key in payload and not accepts(allowed, payload[key]):
            found.append(f"{name}.{key}: {payload[key]!r} is not {'/'.join(allowed)}")
    for key, members in px.ENUMS.get(name, {}).items():
        value = payload.get(key)
        if value is not None and value not in members:
            found.append(f"{name}.{key}: {value!r} is not one of {sorted(members)}")
    return found


def assert_parses(name: str, payloads: list[Any], model: px.Model | None = None) -> None:
    assert payloads, f"no {name} payload was collected"
    found = [p for payload in payloads for p in problems(name, payload, model or px.MODELS[name])]
    assert not found, "\n".join(dict.fromkeys(found))


# --- collecting ---


class RawHub:
    """One hub connection over a real socket, made of the core's WebSocket and SignalR roles."""

    def __init__(self, stream: anyio.abc.SocketStream, port: int, path: str, token: str):
        self.stream = stream
        self.ws = WebSocketClient(f"127.0.0.1:{port}", f"{path}?access_token={token}")
        self.hub = HubConnection(HubRole.CLIENT)
        self.open = False
        self.events: list[HubEvent] = []

    @classmethod
    async def connect(cls, sim: SimServer, path: str, token: str) -> RawHub:
        stream = await anyio.connect_tcp("127.0.0.1", sim.port)
        hub = cls(stream, sim.port, path, token)
        await hub.flush()  # the upgrade request
        await hub.read_until(lambda: hub.open)
        await hub.flush()  # the SignalR handshake
        await hub.read_until(lambda: HandshakeCompleted() in hub.events)
        return hub

    async def flush(self) -> None:
        if self.open and (text := self.hub.data_to_send()):
            self.ws.send_text(text)
        await self.stream.send(self.ws.data_to_send())

    async def read_until(self, condition: Callable[[], bool]) -> None:
        with anyio.fail_after(SAFETY):
            while not condition():
                for event in self.ws.receive_data(await self.stream.receive()):
                    if isinstance(event, Accepted):
                        self.open = True
                    elif isinstance(event, TextReceived):
                        self.events.extend(self.hub.receive(event.data))

    async def subscribe(self, calls: list[tuple[Any, ...]]) -> None:
        """Invoke each ``(method, *arguments)`` and wait until every one completed cleanly."""
        for method, *arguments in calls:
            self.hub.invoke(method, *arguments)
        await self.flush()
        await self.read_until(
            lambda: sum(isinstance(e, CompletionReceived) for e in self.events) == len(calls)
        )
        errors = [e.error for e in self.events if isinstance(e, CompletionReceived) and e.error]
        assert not errors

    def pushes(self, target: str) -> Iterator[tuple[Any, ...]]:
        for event in self.events:
            if isinstance(event, InvocationReceived) and event.target == target:
                yield event.arguments

    def targets(self) -> set[str]:
        return {e.target for e in self.events if isinstance(e, InvocationReceived)}


class Collected:
    """Raw payloads from one simulator session."""

    def __init__(self) -> None:
        self.rest: dict[str, list[dict[str, Any]]] = {}
        self.contract: dict[str, Any] = {}
        self.user: dict[str, list[Any]] = {}
        self.market: dict[str, list[tuple[Any, ...]]] = {}


def depth_types(hub: RawHub) -> set[Any]:
    return {
        entry.get("type")
        for _, entries in hub.pushes("GatewayDepth")
        for entry in (entries if isinstance(entries, list) else [entries])
        if isinstance(entry, dict)
    }


async def collect() -> Collected:
    got = Collected()
    async with SimServer() as sim:
        rest = Rest(sim.api_url)
        token = await rest.login(DEFAULT_USERNAME, DEFAULT_API_KEY)

        async def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
            headers = (("content-type", "application/json"),)
            response = await rest.send(
                HttpRequest("POST", path, headers, json.dumps(body).encode())
            )
            assert response.status == 200, (path, response.status, response.body)
            answer: dict[str, Any] = json.loads(response.body)
            got.rest.setdefault(path, []).append(answer)
            return answer

        user = await RawHub.connect(sim, "/hubs/user", token)
        await user.subscribe(
            [
                ("SubscribeAccounts",),
                ("SubscribeOrders", ACCOUNT),
                ("SubscribePositions", ACCOUNT),
                ("SubscribeTrades", ACCOUNT),
            ]
        )

        now = datetime.now(UTC)
        since = (now - timedelta(days=1)).isoformat()
        await post("/api/Account/search", {"onlyActiveAccounts": True})
        found = await post("/api/Contract/search", {"searchText": "MES", "live": False})
        contract = next(c for c in found["contracts"] if c.get("symbolId") == "F.US.MES")
        got.contract = contract
        await post("/api/Contract/searchById", {"contractId": contract["id"]})
        bars = await post(
            "/api/History/retrieveBars",
            {
                "contractId": contract["id"],
                "live": False,
                "startTime": (now - timedelta(hours=2)).isoformat(),
                "endTime": now.isoformat(),
                "unit": 2,
                "unitNumber": 1,
                "limit": 30,
                "includePartialBar": True,
            },
        )
        tick = Decimal(str(contract["tickSize"]))
        far = (Decimal(str(bars["bars"][0]["c"])) * Decimal("0.8") // tick) * tick
        limit = await post(
            "/api/Order/place",
            {
                "accountId": ACCOUNT,
                "contractId": contract["id"],
                "type": 1,
                "side": 0,
                "size": 1,
                "limitPrice": float(far),
            },
        )
        market = await post(
            "/api/Order/place",
            {"accountId": ACCOUNT, "contractId": contract["id"], "type": 2, "side": 0, "size": 2},
        )
        assert limit["success"]
        assert market["success"]
        await post("/api/Order/searchOpen", {"accountId": ACCOUNT})
        await post("/api/Order/search", {"accountId": ACCOUNT, "startTimestamp": since})
        await post("/api/Position/searchOpen", {"accountId": ACCOUNT})
        await post("/api/Trade/search", {"accountId": ACCOUNT, "startTimestamp": since})

        def user_done() -> bool:
            orders = [a[0].get("data", {}) for a in user.pushes("GatewayUserOrder")]
            statuses = {(o.get("id"), o.get("status")) for o in orders}
            return (
                user.targets() >= USER_TARGETS
                and (limit["orderId"], 1) in statuses
                and (market["orderId"], 2) in statuses
            )

        await user.read_until(user_done)
        got.user = {target: [a[0] for a in user.pushes(target)] for target in USER_TARGETS}

        quotes = await RawHub.connect(sim, "/hubs/market", token)
        await quotes.subscribe(
            [
                ("SubscribeContractQuotes", contract["id"]),
                ("SubscribeContractTrades", contract["id"]),
                ("SubscribeContractMarketDepth", contract["id"]),
            ]
        )
        await quotes.read_until(
            lambda: (
                quotes.targets() >= MARKET_TARGETS
                and {TRADE, BEST_BID, BEST_ASK} <= depth_types(quotes)
            )
        )
        got.market = {target: list(quotes.pushes(target)) for target in MARKET_TARGETS}
        for stream in (user.stream, quotes.stream):
            await stream.aclose()
        await rest.aclose()
    return got


@pytest.fixture(scope="module")
def payloads() -> Collected:
    return anyio.run(collect)


# --- REST ---


@pytest.mark.parametrize("path", sorted(px.RESPONSES))
def test_rest_payloads_parse_as_project_x_py_models(payloads: Collected, path: str):
    key, shape, model = px.RESPONSES[path]
    answers = payloads.rest[path]
    assert all(a.get("success") is True for a in answers)
    items: list[Any] = []
    for answer in answers:
        assert key in answer, f"{path}: no {key!r} in the answer"
        items.extend(answer[key] if shape == "list" else [answer[key]])
    assert_parses(model, items)


def test_bar_times_are_iso_8601_and_history_is_not_empty(payloads: Collected):
    (answer,) = payloads.rest["/api/History/retrieveBars"]
    assert answer["bars"]
    for bar in answer["bars"]:
        assert datetime.fromisoformat(bar["t"]).tzinfo is not None


def test_searches_hold_the_open_limit_order_the_position_and_the_fills(payloads: Collected):
    (open_orders,) = payloads.rest["/api/Order/searchOpen"]
    assert [(o["type"], o["status"]) for o in open_orders["orders"]] == [(1, 1)]
    (orders,) = payloads.rest["/api/Order/search"]
    assert {(o["type"], o["status"]) for o in orders["orders"]} == {(1, 1), (2, 2)}
    (positions,) = payloads.rest["/api/Position/searchOpen"]
    assert [(p["type"], p["size"]) for p in positions["positions"]] == [(1, 2)]
    (trades,) = payloads.rest["/api/Trade/search"]
    assert trades["trades"]


# --- user hub ---


@pytest.mark.parametrize("target", sorted(px.USER_EVENTS))
def test_user_hub_events_unwrap_and_parse(payloads: Collected, target: str):
    wrapped = payloads.user[target]
    assert wrapped, f"no {target} arrived"
    for argument in wrapped:
        assert isinstance(argument, dict)
        assert set(argument) >= {"action", "data"}, argument
        assert "id" not in argument  # else the order tracker would take the wrapper as the order
        assert isinstance(argument["data"], dict)
    model = {
        "GatewayUserAccount": "Account",
        "GatewayUserOrder": "Order",
        "GatewayUserPosition": "Position",
        "GatewayUserTrade": "Trade",
    }[target]
    data = [argument["data"] for argument in wrapped]
    found = [p for d in data for p in problems(model, d, px.USER_EVENTS[target])]
    assert not found, "\n".join(dict.fromkeys(found))
    if target == "GatewayUserOrder":
        assert all(d["status"] in px.USER_ORDER_STATUS_RANGE for d in data)


# --- market hub ---


def market_payloads(payloads: Collected, target: str) -> list[Any]:
    pushes = payloads.market[target]
    assert pushes, f"no {target} arrived"
    contract_id = payloads.contract["id"]
    for arguments in pushes:
        assert len(arguments) == 2, arguments  # [contractId, payload]
        assert arguments[0] == contract_id
    return [arguments[1] for arguments in pushes]


def entries(payload: Any) -> list[Any]:
    return payload if isinstance(payload, list) else [payload]


def base_symbol(symbol: str) -> str:
    """The part project-x-py compares with its instrument: "F.US.MES" -> "MES"."""
    return symbol.rsplit(".", maxsplit=1)[-1]


def instrument_symbol(payloads: Collected) -> str:
    return base_symbol(payloads.contract["symbolId"])


def test_quotes_parse_and_match_the_instrument(payloads: Collected):
    quotes = market_payloads(payloads, "GatewayQuote")
    assert_parses("Quote", quotes)
    assert {base_symbol(q["symbol"]) for q in quotes} == {instrument_symbol(payloads)}
    assert any(q.get("lastPrice") is not None for q in quotes)
    assert all(q.get("bestBid") is not None or q.get("bestAsk") is not None for q in quotes)


def test_market_trades_parse_and_match_the_instrument(payloads: Collected):
    trades = [t for p in market_payloads(payloads, "GatewayTrade") for t in entries(p)]
    assert_parses("MarketTrade", trades)
    assert {base_symbol(t["symbolId"]) for t in trades} == {instrument_symbol(payloads)}
    assert all(t.get("type") in px.TRADE_LOG_TYPE for t in trades)


def test_depth_entries_parse_and_carry_trades_and_best_prices(payloads: Collected):
    depth = [e for p in market_payloads(payloads, "GatewayDepth") for e in entries(p)]
    assert_parses("DepthEntry", depth)
    for entry in depth:
        int(entry["volume"])  # the order book reads volume with int()
    types = {entry["type"] for entry in depth}
    assert TRADE in types  # project-x-py builds its trade tape from depth TRADE entries
    assert BEST_BID in types
    assert BEST_ASK in types


def test_the_checker_flags_what_project_x_py_would_trip_on():
    order = {
        "id": 1,
        "accountId": 2,
        "contractId": "CON.F.US.MES.Z26",
        "creationTimestamp": "2026-01-01T00:00:00Z",
        "updateTimestamp": None,
        "status": 1,
        "type": 1,
        "side": 0,
        "size": 1,
        "filledSize": 0,
    }
    assert problems("Order", order, px.ORDER) == []
    assert problems("Order", {k: v for k, v in order.items() if k != "updateTimestamp"}, px.ORDER)
    assert problems("Order", {**order, "size": True}, px.ORDER)  # a boolean is no integer
    assert problems("Order", {**order, "status": 9}, px.ORDER)
    assert problems("Order", {**order, "limitPrice": "1"}, px.ORDER)
    trade = {"id": 1, "accountId": 2, "contractId": "c", "creationTimestamp": "t", "price": 1.5}
    trade |= {"side": 1, "size": 1, "voided": False, "orderId": 3, "commissions": 0.25}
    assert problems("Trade", trade, px.TRADE) == ["Trade: missing required key 'profitAndLoss'"]
