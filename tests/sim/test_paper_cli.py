"""``tradeforge sim`` as a trader starts it: Combine accounts, their rules and a state file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio

from tradeforge_proto.core.jsoncodec import dumps, loads
from tradeforge_proto.core.operations import HttpRequest
from tradeforge_sim.auth import DEFAULT_API_KEY, DEFAULT_USERNAME

from .netclient import Rest

SAFETY = 60  # seconds; a net for a process that never answers
ACCOUNT = 20258288


def start(*options: str) -> tuple[subprocess.Popen[str], str, list[str]]:
    """The simulator with ``options``; its process, REST URL and banner."""
    command = [sys.executable, "-m", "tradeforge_anyio.cli", "sim", "--port", "0", "--rate", "5"]
    process = subprocess.Popen([*command, *options], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    banner: list[str] = []
    for line in process.stdout:
        banner.append(line)
        if line.startswith("Ctrl-C"):
            break
    api_url = next(line.split()[-1] for line in banner if "REST API" in line)
    return process, api_url, banner


def stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    process.wait(timeout=SAFETY)
    assert process.stdout is not None
    process.stdout.close()


async def call(rest: Rest, path: str, body: dict[str, Any]) -> dict[str, Any]:
    headers = (("Content-Type", "application/json"),)
    response = await rest.send(HttpRequest("POST", path, headers, dumps(body)))
    assert response.status == 200, response.body
    answer: dict[str, Any] = loads(response.body)
    return answer


async def contract_id(rest: Rest, symbol: str) -> str:
    found = await call(rest, "/api/Contract/search", {"searchText": symbol, "live": False})
    return next(c["id"] for c in found["contracts"] if f".{symbol}." in c["id"])


def test_a_50k_combine_refuses_oversize_orders_and_keeps_its_state(tmp_path: Path) -> None:
    state = tmp_path / "sim.db"
    process, api_url, banner = start("--account", "50K", "--state", str(state))
    seen: dict[str, Any] = {}
    try:
        text = "".join(banner)
        assert "50KTC-V2-SIM-1 ($50,000.00; 50K Combine, $2,000 trailing max loss" in text
        assert f"state        {state}" in text

        async def trade() -> None:
            with anyio.fail_after(SAFETY):
                await trading()

        async def trading() -> None:
            rest = Rest(api_url)
            await rest.login(DEFAULT_USERNAME, DEFAULT_API_KEY)
            es, mes = await contract_id(rest, "EP"), await contract_id(rest, "MES")
            order = {"accountId": ACCOUNT, "type": 2, "side": 0}
            huge = await call(
                rest, "/api/Order/place", {**order, "contractId": mes, "size": 100_000}
            )
            assert huge["success"] is False
            assert huge["errorCode"] == 2
            six = await call(rest, "/api/Order/place", {**order, "contractId": es, "size": 6})
            assert six["errorMessage"].startswith("Maximum position size:")
            one = await call(rest, "/api/Order/place", {**order, "contractId": mes, "size": 1})
            assert one["success"] is True
            limit = {**order, "type": 1, "contractId": mes, "size": 1, "limitPrice": 1000}
            assert (await call(rest, "/api/Order/place", limit))["success"] is True
            seen["orders"] = (await call(rest, "/api/Order/searchOpen", {"accountId": ACCOUNT}))[
                "orders"
            ]
            seen["positions"] = (
                await call(rest, "/api/Position/searchOpen", {"accountId": ACCOUNT})
            )["positions"]
            await rest.aclose()

        anyio.run(trade)
    finally:
        stop(process)
    assert len(seen["orders"]) == 1
    assert len(seen["positions"]) == 1

    process, api_url, _ = start("--state", str(state))  # no --account: the file's accounts
    try:

        async def look() -> None:
            rest = Rest(api_url)
            await rest.login(DEFAULT_USERNAME, DEFAULT_API_KEY)
            orders = await call(rest, "/api/Order/searchOpen", {"accountId": ACCOUNT})
            positions = await call(rest, "/api/Position/searchOpen", {"accountId": ACCOUNT})
            assert orders["orders"] == seen["orders"]
            assert positions["positions"] == seen["positions"]
            await rest.aclose()

        anyio.run(look)
    finally:
        stop(process)

    refused = subprocess.run(
        [sys.executable, "-m", "tradeforge_anyio.cli", "sim", "--port", "0", "--account", "100K",
         "--state", str(state)],
        check=False, capture_output=True, text=True, timeout=SAFETY,
    )  # fmt: skip
    assert refused.returncode == 1
    assert "add --fresh to start over" in refused.stderr
    process, _, banner = start("--account", "100K", "--state", str(state), "--fresh")
    stop(process)
    assert "100KTC-V2-SIM-1 ($100,000.00; 100K Combine" in "".join(banner)


def test_a_bad_flag_value_is_refused_with_the_choices() -> None:
    refused = subprocess.run(
        [sys.executable, "-m", "tradeforge_anyio.cli", "sim", "--account", "75K"],
        check=False,
        capture_output=True,
        text=True,
        timeout=SAFETY,
    )
    assert refused.returncode == 2
    assert "choose from 50K, 100K, 150K" in refused.stderr


def test_cme_hours_are_announced(tmp_path: Path) -> None:
    process, _, banner = start("--hours", "cme", "--holiday", "2026-12-25", "--no-state")
    stop(process)
    text = "".join(banner)
    assert "hours        CME Globex, Chicago time" in text
    assert "state        in memory only" in text
