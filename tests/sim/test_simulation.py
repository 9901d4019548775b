"""The simulation as pure state: determinism, hub sessions and what they receive."""

from __future__ import annotations

from typing import Any

import pytest

from tradeforge_proto.core import DepthReceived, OrderBook
from tradeforge_proto.core.jsoncodec import dumps, loads
from tradeforge_proto.core.operations import HttpRequest, RateBucket
from tradeforge_proto.limits import RateBudget
from tradeforge_proto.providers.topstepx.hubs import MarketHub
from tradeforge_proto.signalr import Invocation, decode
from tradeforge_sim.auth import DEFAULT_API_KEY, DEFAULT_USERNAME
from tradeforge_sim.simulation import ClientBudgets, HubSession, SimConfig, Simulation

T0 = 1_764_000_000.0  # 2025-11-24


def login(sim: Simulation, now: float) -> str:
    body = dumps({"userName": DEFAULT_USERNAME, "apiKey": DEFAULT_API_KEY})
    response = sim.handle_rest(HttpRequest("POST", "/api/Auth/loginKey", (), body), now)
    return str(loads(response.body)["token"])


def post(sim: Simulation, token: str, path: str, body: object, now: float) -> dict[str, Any]:
    headers = (("Authorization", f"Bearer {token}"),)
    response = sim.handle_rest(HttpRequest("POST", path, headers, dumps(body)), now)
    assert response.status == 200, response.body
    data: dict[str, Any] = loads(response.body)
    return data


def session_stream(seed: int) -> list[str]:
    """Everything two hub sessions receive over a scripted minute, as wire text."""
    sim = Simulation(SimConfig(seed=seed), now=T0)
    token = login(sim, T0)
    contract = post(sim, token, "/api/Contract/available", {"live": False}, T0)["contracts"][0]
    market = sim.open_hub("/hubs/market", token, T0)
    user = sim.open_hub("/hubs/user", token, T0)
    assert isinstance(market, HubSession)
    assert isinstance(user, HubSession)
    for method in (
        "SubscribeContractQuotes",
        "SubscribeContractTrades",
        "SubscribeContractMarketDepth",
    ):
        assert sim.invoke(market, method, (contract["id"],), T0) is None
    for method in ("SubscribeOrders", "SubscribePositions", "SubscribeTrades"):
        assert sim.invoke(user, method, (20258288,), T0) is None
    assert sim.invoke(user, "SubscribeAccounts", (), T0) is None
    out: list[str] = []
    now = T0
    for step in range(120):
        now += 0.5
        sim.advance(now)
        if step == 10:
            post(
                sim,
                token,
                "/api/Order/place",
                {
                    "accountId": 20258288,
                    "contractId": contract["id"],
                    "type": 2,
                    "side": 0,
                    "size": 1,
                },
                now,
            )
        if step == 80:
            post(
                sim,
                token,
                "/api/Position/closeContract",
                {"accountId": 20258288, "contractId": contract["id"]},
                now,
            )
        out.append(market.take())
        out.append(user.take())
    return out


def test_same_seed_and_clock_give_the_same_event_stream():
    first, second = session_stream(11), session_stream(11)
    assert first == second
    assert sum(len(chunk) for chunk in first) > 10_000
    assert any("GatewayUserTrade" in chunk for chunk in first)
    assert session_stream(12) != first


def test_depth_pushes_rebuild_the_market_book():
    sim = Simulation(now=T0)
    token = login(sim, T0)
    contract_id = post(sim, token, "/api/Contract/available", {"live": False}, T0)["contracts"][0][
        "id"
    ]
    session = sim.open_hub("/hubs/market", token, T0)
    assert isinstance(session, HubSession)
    sim.invoke(session, "SubscribeContractMarketDepth", (contract_id,), T0)
    hub = MarketHub("https://sim/hubs/market")
    book = OrderBook(contract_id)
    now = T0
    for _ in range(200):
        now += 0.25
        sim.advance(now)
        for record in session.take().split("\x1e")[:-1]:
            message = decode(record)
            assert isinstance(message, Invocation)
            for event in hub.decode(message.target, message.arguments):
                assert isinstance(event, DepthReceived)
                book.apply_all(event.updates)
        bids, asks = sim.market.levels(contract_id)
        assert [(level.price, level.volume) for level in book.bids()] == bids
        assert [(level.price, level.volume) for level in book.asks()] == asks


def test_hub_invocations_are_checked():
    sim = Simulation(now=T0)
    token = login(sim, T0)
    assert sim.open_hub("/hubs/user", "bad", T0) == 401
    assert sim.open_hub("/hubs/nothing", token, T0) == 404
    user = sim.open_hub("/HUBS/USER", token, T0)
    assert isinstance(user, HubSession)
    assert (
        sim.invoke(user, "SubscribeContractQuotes", ("X",), T0)
        == "Method does not exist: SubscribeContractQuotes"
    )
    assert (
        sim.invoke(user, "SubscribeOrders", ("7",), T0) == "SubscribeOrders: invalid argument '7'"
    )
    assert sim.invoke(user, "SubscribeOrders", (), T0) == "SubscribeOrders takes one argument"
    assert sim.invoke(user, "subscribeorders", (20258288,), T0) is None
    assert ("orders", 20258288) in user.subscriptions
    assert sim.invoke(user, "UnsubscribeOrders", (20258288,), T0) is None
    assert not user.subscriptions
    market = sim.open_hub("/hubs/market", token, T0)
    assert isinstance(market, HubSession)
    unknown = sim.invoke(market, "SubscribeContractQuotes", ("CON.F.US.NOPE.Z25",), T0)
    assert unknown is not None
    assert unknown.startswith("SubscribeContractQuotes: unknown contract")
    sim.close_hub(user)
    assert [s.id for s in sim.sessions] == [market.id]


def test_client_budgets_are_kept_for_the_most_recent_clients_only() -> None:
    budgets = ClientBudgets(SimConfig().budgets, capacity=2)
    first = budgets.of(None, "10.0.0.1")
    assert budgets.of("token-a", "10.0.0.1") is not first  # a logged-in client has its own
    assert budgets.of(None, "10.0.0.1") is first  # and is now the most recent
    budgets.of(None, "10.0.0.2")  # a third client: the least recent (token-a) makes room
    assert len(budgets) == 2
    assert budgets.of(None, "10.0.0.1") is first
    assert len(budgets) == 2
    with pytest.raises(ValueError, match="capacity"):
        ClientBudgets(SimConfig().budgets, capacity=0)


def test_logins_count_against_the_address_whatever_bearer_string_they_carry() -> None:
    config = SimConfig(budgets={RateBucket.GENERAL: RateBudget(3, 60)})
    sim = Simulation(config, now=T0)
    body = dumps({"userName": DEFAULT_USERNAME, "apiKey": "wrong"})
    statuses = [
        sim.handle_rest(
            HttpRequest("POST", "/api/Auth/loginKey", (("Authorization", f"Bearer {n}"),), body),
            T0,
            peer="127.0.0.1",
        ).status
        for n in range(5)
    ]
    assert statuses == [200, 200, 200, 429, 429]
    other = HttpRequest("POST", "/api/Auth/loginKey", (), body)
    assert sim.handle_rest(other, T0, peer="127.0.0.2").status == 200
    assert len(sim.budgets) == 2
