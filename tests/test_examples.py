"""The examples run as documented and print what they promise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(name: str) -> str:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name)], capture_output=True, text=True, check=True
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
