"""The README's quick starts run as written: they subscribe, place an order and print its fill."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from tradeforge_sim.auth import DEFAULT_API_KEY, DEFAULT_USERNAME

from .sync import running_sim

README = Path(__file__).resolve().parent.parent / "README.md"


def snippet(name: str) -> str:
    """The Python block that follows ``<!-- snippet: name -->`` in the README."""
    found = re.search(
        rf"<!-- snippet: {re.escape(name)} -->\s*```python\n(.*?)```", README.read_text(), re.S
    )
    assert found is not None, f"no snippet {name!r} in the README"
    return found.group(1)


def run(code: str, **env: str) -> str:
    # From an empty folder: no .env is found, only what ``env`` sets.
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TS_", "TRADEFORGE_"))}
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tempfile.gettempdir(),
        env={**base, **env},
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_async_quick_start_prints_a_fill_on_the_embedded_simulator() -> None:
    out = run(snippet("async-quick-start"))
    assert re.search(r"^filled BUY 1 @ \d+(\.\d+)?$", out, re.M), out


def test_the_blocking_quick_start_prints_a_fill_on_the_embedded_simulator() -> None:
    out = run(snippet("blocking-quick-start"))
    assert re.search(r"^filled BUY 1 @ \d+(\.\d+)?$", out, re.M), out


def test_the_blocking_quick_start_prints_a_fill_with_settings_for_a_simulator() -> None:
    with running_sim() as sim:
        out = run(
            snippet("blocking-quick-start"),
            TS_ENVIRONMENT="SIM",
            TS_API_URL=sim.api_url,
            TS_USERNAME=DEFAULT_USERNAME,
            TS_API_KEY=DEFAULT_API_KEY,
        )
    assert re.search(r"^filled BUY 1 @ \d+(\.\d+)?$", out, re.M), out


def test_the_combine_rules_snippet_prints_the_refusal_naming_the_rule() -> None:
    out = run(snippet("combine-rules"))
    assert out.startswith("refused: Maximum position size: order would hold 6 contracts"), out


def test_the_risk_guard_snippet_refuses_before_sending_and_reports_what_is_left() -> None:
    out = run(snippet("risk-guard"))
    assert out.startswith("refused: max_position 6\n"), out
    assert re.search(r"^daily loss left: \d+", out, re.M), out


def test_the_helpers_snippet_trades_measures_and_flattens() -> None:
    out = run(snippet("helpers"))
    assert re.search(r"^a point up: 5(\.0+)? \| today so far: -?\d", out, re.M), out
    assert "cancelled 1 closed 1 ok True" in out


def test_the_core_snippet_builds_a_request_and_parses_an_answer_fed_in_pieces() -> None:
    out = run(snippet("core"))
    assert out.splitlines() == ["POST /api/Order/place retryable: False", "order id: 9056"]


def test_the_replay_snippet_decodes_records_into_a_book() -> None:
    out = run(snippet("replay"))
    assert out.splitlines() == ["quote 6000.25 6000.5", "book 6000.25 9 | 6000.5 12"]


def test_every_python_block_in_the_readme_is_a_tested_snippet() -> None:
    text = README.read_text()
    blocks = text.count("```python")
    named = re.findall(r"<!-- snippet: ([a-z-]+) -->\s*```python", text)
    assert len(named) == blocks
    tested = set(re.findall(r'snippet\("([a-z-]+)"\)', Path(__file__).read_text()))
    assert set(named) == tested
