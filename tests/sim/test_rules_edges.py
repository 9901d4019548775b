"""Edges of the paper exchange's rules, hours and state: restarts, thin books, rolls, gaps."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest

from tests.sim.test_simulation import login, post
from tradeforge_proto.core.enums import OrderSide, OrderType
from tradeforge_proto.rules import AccountStatus, Hours, TradingCalendar
from tradeforge_sim.accounts import FIRST_ACCOUNT_ID, accounts_of
from tradeforge_sim.contracts import default_catalogue
from tradeforge_sim.engine import Exchange, Rejection, SimAccount
from tradeforge_sim.simulation import SimConfig, Simulation
from tradeforge_sim.store import StateStore

MONDAY = datetime(2025, 11, 24, 15, 0, tzinfo=UTC).timestamp()  # 09:00 Chicago
TUESDAY = MONDAY + 86_400
FLATTEN = datetime(2025, 11, 24, 21, 10, tzinfo=UTC).timestamp()  # 15:10 Chicago
CATALOGUE = default_catalogue(datetime.fromtimestamp(MONDAY, UTC))
ES = "CON.F.US.EP.Z25"
RULED, PRACTICE = FIRST_ACCOUNT_ID, FIRST_ACCOUNT_ID + 1
BUY, SELL = OrderSide.BUY, OrderSide.SELL
MARKET, LIMIT, STOP = OrderType.MARKET, OrderType.LIMIT, OrderType.STOP


def two_accounts() -> list[SimAccount]:
    return list(accounts_of(["50K", "PRACTICE-50K"]))


def market(
    ex: Exchange,
    bid: str,
    now: float,
    *,
    size: int = 50,
    bids: int | None = None,
    thin: bool = False,
) -> None:
    """A one-tick market; ``thin``: nothing behind the touch (else every level holds ``size``)."""
    price = Decimal(bid)
    ask = price + Decimal("0.25")
    bid_size = size if bids is None else bids
    ex.set_market(
        ES,
        bid=price,
        bid_size=bid_size,
        ask=ask,
        ask_size=size,
        last=price,
        now=now,
        depth=([(price, bid_size)], [(ask, size)]) if thin else None,
    )


def test_a_day_suspension_ends_at_the_next_day_even_across_a_restart() -> None:
    ex = Exchange(CATALOGUE, two_accounts(), now=MONDAY)
    market(ex, "6000.00", MONDAY + 1)
    ex.place(RULED, ES, MARKET, BUY, 4, now=MONDAY + 2)
    market(ex, "5994.00", MONDAY + 3)
    assert ex.rule_state(RULED).status is AccountStatus.DISABLED_FOR_DAY  # type: ignore[union-attr]
    restored = Exchange.restore(CATALOGUE, ex.saved_state(), now=TUESDAY)
    market(restored, "5994.00", TUESDAY + 1)
    restored.place(RULED, ES, MARKET, BUY, 1, now=TUESDAY + 2)
    restored.place(RULED, ES, MARKET, BUY, 1, now=TUESDAY + 3)
    assert restored.accounts()[0].can_trade is True
    assert [p.size for p in restored.positions(RULED)] == [2]


def test_working_orders_that_reduce_are_counted_together() -> None:
    ex = Exchange(CATALOGUE, two_accounts(), now=MONDAY)
    market(ex, "6000.00", MONDAY + 1)
    ex.place(RULED, ES, MARKET, BUY, 5, now=MONDAY + 2)
    stop = Decimal("5990.00")
    ex.place(RULED, ES, STOP, SELL, 5, stop_price=stop, now=MONDAY + 3)  # closes the five
    ex.place(RULED, ES, STOP, SELL, 5, stop_price=stop, now=MONDAY + 4)  # would go short five
    with pytest.raises(Rejection) as refused:  # would go short ten
        ex.place(RULED, ES, STOP, SELL, 5, stop_price=stop, now=MONDAY + 5)
    assert "counting 10 contracts in working orders" in str(refused.value)


def test_the_flatten_time_keeps_closing_until_flat_even_on_a_thin_book() -> None:
    calendar = TradingCalendar(Hours.CME)
    ex = Exchange(CATALOGUE, two_accounts(), now=FLATTEN - 60, calendar=calendar)
    market(ex, "6000.00", FLATTEN - 59, size=40)
    ex.place(PRACTICE, ES, MARKET, BUY, 20, now=FLATTEN - 58)
    market(ex, "6000.00", FLATTEN, bids=0)  # no bids at all: nothing can close yet
    ex.review(FLATTEN)
    assert [p.size for p in ex.positions(PRACTICE)] == [20]
    market(ex, "6000.00", FLATTEN + 1, size=5, thin=True)  # five bids: five close
    ex.review(FLATTEN + 1)
    assert [p.size for p in ex.positions(PRACTICE)] == [15]
    for step in range(2, 8):
        market(ex, "6000.00", FLATTEN + step, size=5, thin=True)
        ex.review(FLATTEN + step)
    assert ex.positions(PRACTICE) == []


def test_a_modify_in_the_flatten_window_may_not_add_risk() -> None:
    calendar = TradingCalendar(Hours.CME)
    ex = Exchange(CATALOGUE, two_accounts(), now=FLATTEN - 60, calendar=calendar)
    market(ex, "6000.00", FLATTEN - 59)
    ex.place(PRACTICE, ES, MARKET, BUY, 1, now=FLATTEN - 58)
    market(ex, "6000.00", FLATTEN + 600, bids=0)  # the flatten finds no bids
    ex.review(FLATTEN + 600)
    order_id = ex.place(PRACTICE, ES, LIMIT, SELL, 1, limit_price=Decimal(6100), now=FLATTEN + 601)
    with pytest.raises(Rejection) as refused:
        ex.modify(PRACTICE, order_id, size=10, now=FLATTEN + 602)
    assert (refused.value.message or "").startswith("Flatten time:")


def test_a_contract_that_expired_during_a_restart_is_settled(tmp_path: Path) -> None:
    ex = Exchange(CATALOGUE, two_accounts(), now=MONDAY)
    market(ex, "6000.00", MONDAY + 1)
    ex.place(RULED, ES, MARKET, BUY, 1, now=MONDAY + 2)
    ex.place(RULED, ES, LIMIT, BUY, 1, limit_price=Decimal(5000), now=MONDAY + 3)
    path = tmp_path / "sim.db"
    with StateStore(path) as store:
        store.save(ex.saved_state())
    january = datetime(2026, 1, 6, 15, 0, tzinfo=UTC).timestamp()  # Z25 expired in December
    with StateStore(path) as store:
        sim = Simulation(SimConfig(accounts=accounts_of(["50K", "PRACTICE-50K"])), now=january,
                         store=store)  # fmt: skip
        assert sim.exchange.positions(RULED) == []
        assert sim.exchange.open_orders(RULED) == []
        settled = [f for f in sim.exchange.fills(RULED, MONDAY) if f.side is SELL]
        assert len(settled) == 1
        assert settled[0].fees == 0
        token = login(sim, january + 1)
        found = post(sim, token, "/api/Contract/search", {"searchText": "MES", "live": False},
                     january + 1)  # fmt: skip
        mes = next(c["id"] for c in found["contracts"] if c["activeContract"])
        body = {"accountId": RULED, "contractId": mes, "type": 2, "side": 0, "size": 1}
        assert post(sim, token, "/api/Order/place", body, january + 2)["success"] is True


def test_a_flatten_that_fails_on_a_practice_account_leaves_ruled_ones_judged() -> None:
    ex = Exchange(CATALOGUE, two_accounts(), now=MONDAY)
    market(ex, "6000.00", MONDAY + 1)
    ex.place(PRACTICE, ES, MARKET, BUY, 1, now=MONDAY + 2)
    market(ex, "6000.00", MONDAY + 3, bids=0)
    ex.flatten(PRACTICE, MONDAY + 3)  # no bids: nothing to close into, nothing breaks
    ex.review(MONDAY + 4)
    assert [p.size for p in ex.positions(PRACTICE)] == [1]


def test_a_failed_rewrite_leaves_the_last_good_state(tmp_path: Path) -> None:
    path = tmp_path / "sim.db"
    ex = Exchange(CATALOGUE, two_accounts(), now=MONDAY)
    with StateStore(path) as store:
        store.save(ex.saved_state())
        market(ex, "6000.00", MONDAY + 1)
        ex.place(RULED, ES, MARKET, BUY, 1, now=MONDAY + 2)
        broken: Any = object()  # a row that cannot be written: the save fails half-way
        full = attrs.evolve(ex.saved_state(), fills=(*ex.saved_state().fills, broken))
        with pytest.raises(Exception, match="object"):
            store.save(full)
        kept = store.load()
    assert kept is not None
    assert kept.orders == ()  # the first state, whole


def test_the_bracket_mode_flag_reaches_restored_accounts(tmp_path: Path) -> None:
    path = tmp_path / "sim.db"
    with StateStore(path) as store:
        Simulation(SimConfig(accounts=accounts_of(["50K"])), now=MONDAY, store=store)
    with StateStore(path) as store:
        config = SimConfig(accounts=accounts_of(["50K"]), auto_oco_brackets=True)
        sim = Simulation(config, now=MONDAY + 1, store=store)
        saved = sim.exchange.saved_state()
        assert [a.auto_oco_brackets for a in saved.accounts] == [True]
    with StateStore(path) as store:
        assert [a.auto_oco_brackets for a in store.load().accounts] == [True]  # type: ignore[union-attr]


def test_a_limit_of_intraday_bars_is_filled_from_before_a_closed_stretch() -> None:
    saturday = datetime(2025, 11, 29, 15, 0, tzinfo=UTC).timestamp()
    sim = Simulation(SimConfig(calendar=TradingCalendar(Hours.CME)), now=saturday)
    token = login(sim, saturday)
    found = post(sim, token, "/api/Contract/search", {"searchText": "MES", "live": False}, saturday)
    body = {
        "contractId": found["contracts"][0]["id"],
        "live": False,
        "startTime": "2025-11-01T00:00:00Z",
        "endTime": "2025-11-29T12:00:00Z",
        "unit": 2,
        "unitNumber": 1,
        "limit": 5,
        "includePartialBar": False,
    }
    bars = post(sim, token, "/api/History/retrieveBars", body, saturday)["bars"]
    times = [datetime.fromisoformat(bar["t"]) for bar in bars]
    friday_close = datetime(2025, 11, 28, 22, 0, tzinfo=UTC)  # 16:00 Chicago
    assert times == [friday_close - timedelta(minutes=m) for m in range(1, 6)]


def test_a_flatten_time_past_the_close_is_refused_plainly() -> None:
    refused = subprocess.run(
        [sys.executable, "-m", "tradeforge_anyio.cli", "sim", "--flatten-time", "16:30"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        "tradeforge: --flatten-time: flatten_time 16:30:00 must be before close_time 16:00:00"
    )
