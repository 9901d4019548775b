"""The simulator keeps its state in SQLite: a restart finds the same accounts, orders, positions."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import attrs
import pytest

from tests.sim.test_simulation import login, post
from tradeforge_proto.core.enums import OrderStatus
from tradeforge_proto.rules import AccountStatus
from tradeforge_sim.accounts import FIRST_ACCOUNT_ID, accounts_of
from tradeforge_sim.contracts import default_catalogue
from tradeforge_sim.engine import Exchange
from tradeforge_sim.rest import now_utc
from tradeforge_sim.simulation import SimConfig, Simulation
from tradeforge_sim.store import SCHEMA_VERSION, StateStore, StoreError

T0 = 1_764_000_000.0  # 2025-11-24, a Monday
ACCOUNT = FIRST_ACCOUNT_ID
CONFIG = SimConfig(accounts=accounts_of(["50K", "PRACTICE-150K"]))


def place(sim: Simulation, token: str, now: float, **fields: Any) -> dict[str, Any]:
    body = {"accountId": ACCOUNT, "side": 0, "size": 1, **fields}
    return post(sim, token, "/api/Order/place", body, now)


def contract_of(sim: Simulation, token: str, now: float) -> str:
    found = post(sim, token, "/api/Contract/search", {"searchText": "MES", "live": False}, now)
    return str(found["contracts"][0]["id"])


def snapshot(sim: Simulation, token: str, now: float) -> dict[str, Any]:
    """What a trader sees of the account over REST."""
    accounts = post(sim, token, "/api/Account/search", {"onlyActiveAccounts": False}, now)
    orders = post(sim, token, "/api/Order/searchOpen", {"accountId": ACCOUNT}, now)
    positions = post(sim, token, "/api/Position/searchOpen", {"accountId": ACCOUNT}, now)
    trades = post(
        sim,
        token,
        "/api/Trade/search",
        {"accountId": ACCOUNT, "startTimestamp": "2025-01-01T00:00:00Z"},
        now,
    )
    return {
        "accounts": accounts["accounts"],
        "orders": orders["orders"],
        "positions": positions["positions"],
        "trades": trades["trades"],
    }


def test_a_restart_finds_the_same_accounts_orders_and_positions(tmp_path: Path) -> None:
    path = tmp_path / "sim.db"
    with StateStore(path) as store:
        sim = Simulation(CONFIG, now=T0, store=store)
        token = login(sim, T0)
        contract = contract_of(sim, token, T0)
        assert place(sim, token, T0 + 1, contractId=contract, type=2)["success"] is True
        working = place(
            sim, token, T0 + 2, contractId=contract, type=1, limitPrice=1000, customTag="dip"
        )
        assert working["success"] is True
        for step in range(1, 20):
            sim.advance(T0 + 2 + step * 0.5)
        before = snapshot(sim, token, T0 + 20)
    assert len(before["orders"]) == 1
    assert len(before["positions"]) == 1
    assert len(before["trades"]) == 1
    with StateStore(path) as store:
        later = T0 + 3600
        again = Simulation(
            SimConfig(accounts=accounts_of(["PRACTICE-50K"])), now=later, store=store
        )
        token = login(again, later)
        after = snapshot(again, token, later)
        assert after == before  # the saved accounts win over the configured ones
        duplicate = place(
            again, token, later, contractId=contract, type=1, limitPrice=1000, customTag="dip"
        )
        assert duplicate["errorCode"] == 2  # custom tags stay taken
        fresh = place(again, token, later + 1, contractId=contract, type=1, limitPrice=1000)
        assert fresh["orderId"] > working["orderId"]  # ids go on, never reused
        cancel = post(
            again,
            token,
            "/api/Order/cancel",
            {"accountId": ACCOUNT, "orderId": working["orderId"]},
            later + 2,
        )
        assert cancel["success"] is True
    with StateStore(path) as store:
        third = Simulation(CONFIG, now=T0 + 7200, store=store)
        open_ids = [o.id for o in third.exchange.open_orders(ACCOUNT)]
        assert open_ids == [fresh["orderId"]]


def test_rules_state_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "sim.db"
    with StateStore(path) as store:
        sim = Simulation(CONFIG, now=T0, store=store)
        state = sim.exchange.rule_state(ACCOUNT)
        assert state is not None
        sim.exchange.configure_account(ACCOUNT, auto_oco_brackets=True, now=T0 + 1)
        sim.exchange.flatten(ACCOUNT, T0 + 1)
        sim.advance(T0 + 2)
    with StateStore(path) as store:
        again = Simulation(CONFIG, now=T0 + 3, store=store)
        assert again.exchange.rule_state(ACCOUNT) == state
        assert again.exchange.rule_state(ACCOUNT).status is AccountStatus.ACTIVE  # type: ignore[union-attr]
        assert again.exchange.accounts()[0].name == "50KTC-V2-SIM-1"


def test_clear_starts_over(tmp_path: Path) -> None:
    path = tmp_path / "sim.db"
    with StateStore(path) as store:
        Simulation(CONFIG, now=T0, store=store)
        assert store.load() is not None
        store.clear()
        assert store.load() is None


def test_a_file_of_another_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "sim.db"
    with StateStore(path):
        pass
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (str(SCHEMA_VERSION + 1),))
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="schema version 2"):
        StateStore(path)


def test_a_file_that_is_not_a_state_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a database at all, just some words" * 100)
    with pytest.raises(StoreError, match="not a simulator state file"):
        StateStore(path)


def test_accounts_without_counters_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "sim.db"
    with StateStore(path) as store:
        Simulation(CONFIG, now=T0, store=store)
    db = sqlite3.connect(path)
    db.execute("DELETE FROM meta WHERE key = 'counters'")
    db.commit()
    db.close()
    with StateStore(path) as store, pytest.raises(StoreError, match="no id counters"):
        store.load()


def test_a_working_order_on_a_contract_no_longer_listed_comes_back_cancelled() -> None:
    sim = Simulation(CONFIG, now=T0)
    token = login(sim, T0)
    contract = contract_of(sim, token, T0)
    placed = place(sim, token, T0 + 1, contractId=contract, type=1, limitPrice=1000)
    saved = sim.exchange.saved_state()
    gone = "CON.F.US.MES.H20"
    orders = tuple(attrs.evolve(order, contract_id=gone) for order in saved.orders)
    catalogue = default_catalogue(now_utc(T0))
    restored = Exchange.restore(catalogue, attrs.evolve(saved, orders=orders), now=T0 + 2)
    order = restored.order(ACCOUNT, placed["orderId"])
    assert order.status is OrderStatus.CANCELLED
    assert order.contract_id == gone
    assert restored.open_orders(ACCOUNT) == []


def test_a_file_another_simulator_holds_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "sim.db"
    with StateStore(path), pytest.raises(StoreError, match="in use by another running simulator"):
        StateStore(path)
    with StateStore(path):  # free again once the first one closed it
        pass


def test_after_a_failed_write_the_whole_state_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "sim.db"
    with StateStore(path) as store:
        sim = Simulation(CONFIG, now=T0, store=store)
        token = login(sim, T0)
        contract = contract_of(sim, token, T0)
        write = store.write

        def full_disk(changes: object) -> None:
            raise sqlite3.OperationalError("database or disk is full")

        monkeypatch.setattr(store, "write", full_disk)
        first = place(sim, token, T0 + 1, contractId=contract, type=1, limitPrice=1000)
        assert first["success"] is True  # the trade goes on; the file catches up later
        assert "cannot write the state file" in caplog.text
        monkeypatch.setattr(store, "write", write)
        sim.advance(T0 + 2)
        assert "written whole again" in caplog.text
        saved = store.load()
        assert saved is not None
        assert [o.id for o in saved.orders] == [first["orderId"]]
