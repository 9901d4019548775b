"""The audit trail: every change asked of the service, as a log line and a journal row."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tradeforge_anyio.service import create_app
from tradeforge_anyio.service.journal import Journal
from tradeforge_anyio.service.logs import JsonFormatter
from tradeforge_sim.auth import DEFAULT_API_KEY
from tradeforge_sim.server import SimServer

from .harness import served, simulator_client

pytestmark = pytest.mark.anyio
ACCOUNT = 20258288
TOKEN = "audit-s3cret-token"
JOURNAL_COMMAND = [sys.executable, "-m", "tradeforge_anyio.cli", "journal", "--journal"]


@asynccontextmanager
async def serving(journal: Journal | None) -> AsyncIterator[httpx.AsyncClient]:
    async with SimServer() as sim:
        app = create_app(simulator_client(sim, DEFAULT_API_KEY), token=TOKEN, journal=journal)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with served(app) as base, httpx.AsyncClient(base_url=base, headers=headers) as http:
            yield http


def ok(response: httpx.Response, status: int) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


async def every_change(http: httpx.AsyncClient) -> dict[str, int]:
    """Each write route once, plus a refused attempt; the order ids they made."""
    mes = ok(await http.get("/contracts/by-symbol/MES"), 200)["id"]
    market = {"account_id": ACCOUNT, "contract_id": mes, "side": "BUY", "type": "MARKET"}
    bought = ok(await http.post("/orders", json={**market, "size": 2}), 201)["order_id"]
    (position,) = ok(await http.get("/positions", params={"account_id": ACCOUNT}), 200)["positions"]
    price = int(Decimal(position["average_price"])) - 50
    limit = {**market, "type": "LIMIT", "limit_price": str(price), "custom_tag": "audit-1"}
    resting = ok(await http.post("/orders", json=limit), 201)["order_id"]
    change = {"limit_price": str(price - 1)}
    ok(await http.patch(f"/orders/{resting}", params={"account_id": ACCOUNT}, json=change), 204)
    ok(await http.delete(f"/orders/{resting}", params={"account_id": ACCOUNT}), 204)
    reduce = {"account_id": ACCOUNT, "contract_id": mes, "size": 1}
    ok(await http.post("/positions/partial-close", json=reduce), 204)
    ok(await http.post("/positions/close", json={"account_id": ACCOUNT, "contract_id": mes}), 204)
    ok(await http.post("/orders", json={**market, "size": 0}), 422)  # refused before it is sent
    anonymous = await http.post("/orders", json=market, headers={"Authorization": "Bearer no"})
    assert anonymous.status_code == 401
    return {"bought": bought, "resting": resting}


async def test_every_change_is_journaled_and_logged_without_the_token(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    journal = Journal(tmp_path / "journal.sqlite3")
    with caplog.at_level(logging.INFO, logger="tradeforge.audit"):
        async with serving(journal) as http:
            ids = await every_change(http)
            answer = ok(await http.get("/journal", params={"limit": 50}), 200)
            mine = ok(await http.get("/journal", params={"account_id": ACCOUNT}), 200)
            assert (await http.get("/journal", headers={"Authorization": ""})).status_code == 401
    assert answer["kept"] is True
    rows = list(reversed(answer["entries"]))  # oldest first
    assert [(r["method"], r["route"], r["status"], r["outcome"]) for r in rows] == [
        ("POST", "/orders", 201, "ok"),
        ("POST", "/orders", 201, "ok"),
        ("PATCH", "/orders/{id}", 204, "ok"),
        ("DELETE", "/orders/{id}", 204, "ok"),
        ("POST", "/positions/partial-close", 204, "ok"),
        ("POST", "/positions/close", 204, "ok"),
        ("POST", "/orders", 422, "refused"),
        ("POST", "/orders", 401, "refused"),
    ]
    assert [r["order_id"] for r in rows[:4]] == [ids["bought"], *[ids["resting"]] * 3]
    assert rows[0]["custom_tag"].startswith("tf-")  # the tag the service made for it
    assert rows[1]["custom_tag"] == "audit-1"
    # A caller without the token is refused unread: when and from where is all that is known.
    assert [r["account_id"] for r in rows] == [ACCOUNT] * 7 + [None]
    assert {r["contract_id"] for r in rows[4:6]} == {rows[0]["contract_id"]}
    assert rows[6]["detail"]  # why it was refused
    assert all(r["client"].startswith("127.0.0.1:") for r in rows)
    assert all(r["latency_ms"] >= 0 for r in rows)
    assert len(mine["entries"]) == 7
    # One log line per change, with the entry's fields; the token appears nowhere.
    lines = [r for r in caplog.records if r.name == "tradeforge.audit"]
    assert len(lines) == 8
    assert "PATCH /orders/{id} -> 204 (ok)" in lines[2].getMessage()
    assert json.loads(JsonFormatter().format(lines[0]))["audit"]["order_id"] == ids["bought"]
    everything = (
        json.dumps(answer) + caplog.text + "".join(JsonFormatter().format(r) for r in lines)
    )
    assert TOKEN not in everything
    assert TOKEN.encode() not in (tmp_path / "journal.sqlite3").read_bytes()
    journal.close()

    for form in ([], ["--json"]):
        shown = subprocess.run(
            [*JOURNAL_COMMAND, str(tmp_path / "journal.sqlite3"), *form],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert TOKEN not in shown
        if form:
            parsed = [json.loads(line) for line in shown.splitlines()]
            assert [p["order_id"] for p in parsed][-1] == ids["bought"]  # newest first
            assert len(parsed) == 8
        else:
            table = shown.splitlines()
            assert table[0].startswith("time (UTC)")
            assert len(table) == 9
            assert "PATCH /orders/{id}" in table[3]
            assert "audit-1" in table[2]


async def test_without_a_journal_changes_are_still_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="tradeforge.audit"):
        async with serving(None) as http:
            await every_change(http)
            answer = ok(await http.get("/journal"), 200)
    assert answer == {"entries": [], "kept": False}
    assert len([r for r in caplog.records if r.name == "tradeforge.audit"]) == 8


def test_the_journal_command_says_when_there_is_no_journal(tmp_path: Path) -> None:
    done = subprocess.run(
        [*JOURNAL_COMMAND, str(tmp_path / "none.sqlite3")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "no journal at" in done.stderr


def test_the_journal_keeps_its_newest_rows_within_its_bound(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from tradeforge_anyio.service.journal import JournalEntry

    journal = Journal(tmp_path / "j.sqlite3", max_rows=10)
    for n in range(2_000):
        journal.record(
            JournalEntry(datetime.now(UTC), "127.0.0.1:1", "POST", "/orders", 201, 1.0, "ok")
            if n % 2
            else JournalEntry(
                datetime.now(UTC), "127.0.0.1:1", "POST", "/orders", 201, 1.0, "ok", order_id=n
            )
        )
    kept = journal.entries(limit=1_000)
    assert 10 <= len(kept) <= 1_010  # pruned every thousand writes
    assert kept[1].order_id == 1_998
    journal.close()
