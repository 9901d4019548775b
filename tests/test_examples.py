"""The examples run as documented and print what they promise."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(name: str, *args: str) -> str:
    # From an empty folder and without TS_* variables: no .env, so the simulator is used.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TS_", "TRADEFORGE_"))}
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        check=True,
        cwd=tempfile.gettempdir(),
        env=env,
        timeout=120,
    )
    return result.stdout


def test_core_walkthrough():
    out = run("core_walkthrough.py")
    assert "account 20258288 150KTC-V2-478426-52758441: balance 150175.38" in out
    assert '"limitPrice":5000.25' in out
    assert "rejected: OrderRejected (2) 'Invalid order size specified.', order id 9057" in out


def test_realtime_replay():
    out = run("realtime_replay.py")
    assert "handshake answer: ['HandshakeCompleted']" in out
    assert "depth  11 entries -> book 6012.0 x 6012.25" in out
    assert "trade  1 @ 6012.25 (BUY aggressor)" in out  # the record split across two messages
    assert "bar    14:30 6012.25-6012.25 V 4" in out
    assert "     6 6012.25  |  6012.5 23" in out


def test_list_accounts():
    out = run("list_accounts.py")
    assert "environment: simulator" in out
    assert "20258288  PRAC-V2-150K-SIM-1" in out


def test_contract_bars():
    out = run("contract_bars.py", "MES")
    assert "MES -> CON.F.US.MES." in out
    assert out.count(" O ") == 12


def test_place_and_cancel():
    out = run("place_and_cancel.py")
    assert "status OPEN, tag tf-" in out
    assert "after cancel: status CANCELLED" in out


def test_stream_book():
    out = run("stream_book.py", "2")
    assert "connected to the market hub" in out
    assert "top 5 levels:" in out


def test_fill_bot():
    out = run("fill_bot.py")
    assert "bought 1 at market" in out
    assert "P&L None" in out
    assert "flat again: done" in out


def test_service_client():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TS_", "TRADEFORGE_"))}
    env["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="tradeforge-data-")  # a state file of its own
    token = "examples-service-token"
    command = ["tradeforge_anyio.cli", "serve", "--port", str(port), "--token", token]
    service = subprocess.Popen(
        [sys.executable, "-m", *command],
        stdout=subprocess.DEVNULL,
        cwd=tempfile.gettempdir(),
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{base}/docs", timeout=5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the service did not come up"
                time.sleep(0.1)
        out = run("service_client.py", base, token)
    finally:
        service.terminate()
        service.wait(timeout=10)
    assert "service on topstepx (simulator)" in out
    assert "account 20258288 PRAC-V2-150K-SIM-1, contract CON.F.US.MES." in out
    assert "FILLED at " in out
    assert ": BUY 1 @ " in out
    assert "flat: True" in out
