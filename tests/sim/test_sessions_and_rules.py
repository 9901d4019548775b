"""The simulated gateway on a CME schedule with Combine accounts, driven by a scripted clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.sim.test_simulation import login, post
from tradeforge_proto.core.jsoncodec import loads
from tradeforge_proto.rules import OUTSIDE_HOURS, Hours, TradingCalendar
from tradeforge_sim.accounts import FIRST_ACCOUNT_ID, accounts_of
from tradeforge_sim.simulation import HubSession, SimConfig, Simulation

ACCOUNT = FIRST_ACCOUNT_ID
WEDNESDAY = datetime(2025, 11, 26, 15, 0, tzinfo=UTC).timestamp()  # 09:00 Chicago
SATURDAY = datetime(2025, 11, 29, 15, 0, tzinfo=UTC).timestamp()
FLATTEN = datetime(2025, 11, 26, 21, 10, tzinfo=UTC).timestamp()  # 15:10 Chicago
CME = TradingCalendar(Hours.CME)


def simulation(now: float, *, calendar: TradingCalendar = CME) -> Simulation:
    config = SimConfig(accounts=accounts_of(["50K"]), calendar=calendar)
    return Simulation(config, now=now)


def contract_of(sim: Simulation, token: str, now: float, symbol: str = "MES") -> str:
    found = post(sim, token, "/api/Contract/search", {"searchText": symbol, "live": False}, now)
    return str(found["contracts"][0]["id"])


def market_order(sim: Simulation, token: str, contract: str, size: int, now: float) -> Any:
    body = {"accountId": ACCOUNT, "contractId": contract, "type": 2, "side": 0, "size": size}
    return post(sim, token, "/api/Order/place", body, now)


def test_an_order_outside_the_session_is_refused_as_the_gateway_refuses_it() -> None:
    sim = simulation(SATURDAY)
    token = login(sim, SATURDAY)
    answer = market_order(sim, token, contract_of(sim, token, SATURDAY), 1, SATURDAY)
    assert answer["success"] is False
    assert answer["errorCode"] == 2
    assert answer["errorMessage"] == OUTSIDE_HOURS


def test_no_market_data_flows_while_the_market_is_closed() -> None:
    sim = simulation(SATURDAY)
    token = login(sim, SATURDAY)
    contract = contract_of(sim, token, SATURDAY)
    hub = sim.open_hub("/hubs/market", token, SATURDAY)
    assert isinstance(hub, HubSession)
    assert sim.invoke(hub, "SubscribeContractQuotes", (contract,), SATURDAY) is None
    hub.take()  # the snapshot a subscription answers with
    for step in range(1, 60):
        sim.advance(SATURDAY + step)
    assert hub.take() == ""


def test_market_data_flows_in_the_session() -> None:
    sim = simulation(WEDNESDAY)
    token = login(sim, WEDNESDAY)
    contract = contract_of(sim, token, WEDNESDAY)
    hub = sim.open_hub("/hubs/market", token, WEDNESDAY)
    assert isinstance(hub, HubSession)
    assert sim.invoke(hub, "SubscribeContractQuotes", (contract,), WEDNESDAY) is None
    hub.take()
    for step in range(1, 60):
        sim.advance(WEDNESDAY + step)
    assert "GatewayQuote" in hub.take()


def bar_times(sim: Simulation, token: str, contract: str, unit: int, now: float) -> list[datetime]:
    body = {
        "contractId": contract,
        "live": False,
        "startTime": "2025-11-27T00:00:00Z",
        "endTime": "2025-11-29T00:00:00Z",
        "unit": unit,
        "unitNumber": 1,
        "limit": 1000,
        "includePartialBar": False,
    }
    bars = post(sim, token, "/api/History/retrieveBars", body, now)["bars"]
    return [datetime.fromisoformat(bar["t"]) for bar in bars]


def test_history_has_gaps_where_the_market_was_closed() -> None:
    sim = simulation(SATURDAY)
    token = login(sim, SATURDAY)
    contract = contract_of(sim, token, SATURDAY)
    hours = bar_times(sim, token, contract, 3, SATURDAY)
    # Thursday 16:00-17:00 Chicago (22:00 UTC) is the halt; Friday 16:00 Chicago closes the week.
    assert datetime(2025, 11, 27, 22, tzinfo=UTC) not in hours
    assert datetime(2025, 11, 27, 21, tzinfo=UTC) in hours
    assert datetime(2025, 11, 27, 23, tzinfo=UTC) in hours
    assert max(hours) == datetime(2025, 11, 28, 21, tzinfo=UTC)
    always = simulation(SATURDAY, calendar=TradingCalendar())
    token = login(always, SATURDAY)
    assert len(bar_times(always, token, contract, 3, SATURDAY)) == 49  # both ends included
    days = bar_times(sim, token := login(sim, SATURDAY), contract, 4, SATURDAY)
    assert days == [datetime(2025, 11, 28, tzinfo=UTC), datetime(2025, 11, 27, tzinfo=UTC)]


def test_at_the_flatten_time_positions_close_and_new_risk_waits() -> None:
    start = FLATTEN - 60
    sim = simulation(start)
    token = login(sim, start)
    contract = contract_of(sim, token, start)
    assert market_order(sim, token, contract, 2, start)["success"] is True
    for step in range(1, 61):
        sim.advance(start + step)
    positions = post(sim, token, "/api/Position/searchOpen", {"accountId": ACCOUNT}, FLATTEN)
    assert positions["positions"] == []
    late = market_order(sim, token, contract, 1, FLATTEN + 5)
    assert late["errorCode"] == 2
    assert late["errorMessage"].startswith("Flatten time:")
    evening = FLATTEN + timedelta(hours=2).total_seconds()  # 17:10 Chicago: the next session
    sim.advance(evening)
    assert market_order(sim, token, contract, 1, evening)["success"] is True


def test_the_daily_loss_breach_reaches_the_user_hub_as_the_account_event() -> None:
    sim = simulation(WEDNESDAY, calendar=TradingCalendar())
    token = login(sim, WEDNESDAY)
    contract = next(c.id for c in sim.exchange.contracts() if ".EP." in c.id and c.active)
    hub = sim.open_hub("/hubs/user", token, WEDNESDAY)
    assert isinstance(hub, HubSession)
    assert sim.invoke(hub, "SubscribeAccounts", (), WEDNESDAY) is None
    assert market_order(sim, token, contract, 5, WEDNESDAY)["success"] is True
    touch = sim.market.touch(contract)
    fallen = touch.bid - 5  # five ES lose $250 a point: past the $1,000 daily limit only
    now = WEDNESDAY + 1
    sim.exchange.set_market(
        contract,
        bid=fallen,
        bid_size=20,
        ask=fallen + touch.ask - touch.bid,
        ask_size=20,
        last=fallen,
        now=now,
    )
    sim.publish_user_events()
    assert sim.exchange.accounts()[0].can_trade is False
    records = [loads(part) for part in hub.take().split("\x1e") if part]
    accounts = [r["arguments"][0]["data"] for r in records if r["target"] == "GatewayUserAccount"]
    assert accounts[-1]["canTrade"] is False
    assert (
        post(sim, token, "/api/Position/searchOpen", {"accountId": ACCOUNT}, now)["positions"] == []
    )
