"""The trading commands of ``tradeforge`` as a trader types them, against the simulator."""

from __future__ import annotations

import io
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest

from tradeforge_anyio.cli import main
from tradeforge_anyio.client import TradingClient
from tradeforge_sim import SimConfig, accounts_of
from tradeforge_sim.auth import DEFAULT_API_KEY, DEFAULT_USERNAME
from tradeforge_sim.server import SimServer

from ..sync import running_sim

SAFETY = 30.0
"""Seconds a command run in its own process may take before a test gives up on it."""
FIRST = 20258288  # the simulator's two practice accounts
SECOND = 20258289
DECIMAL = re.compile(r"^\d+(\.\d+)?$")
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
Runner = Callable[..., "Ran"]
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith(("TS_", "TRADEFORGE_"))}


@attrs.frozen
class Ran:
    """What one command did: its exit code, standard output and standard error."""

    code: int
    out: str
    err: str

    def lines(self) -> list[dict[str, Any]]:
        """The JSON lines it printed."""
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]


class Terminal(io.StringIO):
    """Standard input that is a terminal where someone types ``typed``."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def no_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No TS_* settings from the environment, and no .env where the commands run."""
    for name in list(os.environ):
        if name.startswith(("TS_", "TRADEFORGE_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # not a terminal


@pytest.fixture
def sim() -> Iterator[SimServer]:
    with running_sim() as server:
        yield server


@pytest.fixture
def tradeforge(capsys: pytest.CaptureFixture[str]) -> Runner:
    """Run ``tradeforge ARGS...`` in this process."""

    def run(*argv: object) -> Ran:
        with pytest.raises(SystemExit) as ended:
            main([str(arg) for arg in argv])
        captured = capsys.readouterr()
        code = ended.value.code
        return Ran(code if isinstance(code, int) else 1, captured.out, captured.err)

    return run


@pytest.fixture
def on_sim(sim: SimServer, tradeforge: Runner) -> Runner:
    """Run a command against the simulator (``--sim URL``)."""

    def run(*argv: object) -> Ran:
        return tradeforge(*argv, "--sim", sim.api_url)

    return run


def live_env(path: Path, sim: SimServer, *, key: str = DEFAULT_API_KEY) -> Path:
    """A settings file for the simulator's URL that does not say it is a simulator: to the
    commands it is TopStepX, where changes need a confirmation."""
    path.write_text(
        f"TS_USERNAME={DEFAULT_USERNAME}\nTS_API_KEY={key}\nTS_API_URL={sim.api_url}\n"
        f"TS_CAPTURE_ACCOUNT_ID={SECOND}\n"
    )
    return path


def clean_error(ran: Ran, code: int, *words: str) -> None:
    assert ran.code == code, ran
    assert ran.err.startswith("tradeforge: "), ran.err
    assert "Traceback" not in ran.err
    for word in words:
        assert word in ran.err, ran.err


def test_accounts_as_a_table_and_as_json(on_sim: Runner) -> None:
    shown = on_sim("accounts")
    assert shown.code == 0
    assert re.search(rf"{FIRST}\s+PRAC-V2-150K-SIM-1\s+150000\s+yes", shown.out), shown.out
    listed = on_sim("accounts", "--json").lines()
    assert [a["id"] for a in listed] == [FIRST, SECOND]
    assert listed[0]["balance"] == "150000"
    assert listed[0]["can_trade"] is True


def test_contracts_search_as_a_table_and_as_json(on_sim: Runner) -> None:
    shown = on_sim("contracts", "ES")
    assert shown.code == 0
    assert re.search(r"CON\.F\.US\.EP\.\w+\s+ESZ?\w*\s+E-mini S&P 500", shown.out), shown.out
    found = on_sim("contracts", "ES", "--json").lines()
    es = next(c for c in found if c["id"].startswith("CON.F.US.EP."))
    assert (es["tick_size"], es["tick_value"]) == ("0.25", "12.5")
    clean_error(on_sim("contracts", "NOSUCH"), 1, "no contract matches 'NOSUCH'")


def test_quote_prints_one_live_quote_then_exits(on_sim: Runner) -> None:
    shown = on_sim("quote", "MES")
    assert shown.code == 0
    assert re.search(r"contract\s+MES\w+ \(CON\.F\.US\.MES\.\w+\)", shown.out), shown.out
    assert re.search(r"bid\s+\d+(\.\d+)?\s", shown.out)
    (quote,) = on_sim("quote", "MES", "--json").lines()
    assert quote["contract_id"].startswith("CON.F.US.MES.")
    assert DECIMAL.match(quote["best_bid"])
    assert DECIMAL.match(quote["best_ask"])
    assert ISO_Z.match(quote["timestamp"]), quote


def test_quote_says_when_none_comes_in_time(sim: SimServer, on_sim: Runner) -> None:
    sim.faults.hubs_down = {"market"}
    clean_error(on_sim("quote", "MES", "--timeout", "0.5"), 4, "no quote for MES", "0.5 s")


def test_bars_are_the_most_recent_oldest_first(on_sim: Runner) -> None:
    bars = on_sim("bars", "MES", "--limit", "3", "--json").lines()
    assert len(bars) == 3
    times = [bar["time"] for bar in bars]
    assert times == sorted(times)
    assert all(ISO_Z.match(t) for t in times)
    assert all(DECIMAL.match(bar["close"]) for bar in bars)
    assert {bar["contract_id"] for bar in bars} == {bars[0]["contract_id"]}
    shown = on_sim("bars", "ES", "--unit", "hour", "--size", "2", "--limit", "4")
    assert shown.code == 0
    assert "2 hour bars" in shown.out
    assert len(re.findall(r"^\s+\d{4}-\d\d-\d\dT\d\d:00:00Z\s", shown.out, re.M)) == 4
    # The widest request the options allow is answered, not a traceback.
    widest = on_sim("bars", "MES", "--unit", "month", "--size", "1440", "--limit", "10000")
    assert widest.code == 0, widest.err


@pytest.mark.parametrize(
    "options",
    [["--limit", "0"], ["--limit", "10001"], ["--size", "0"], ["--unit", "fortnight"]],
)
def test_bar_options_are_bounded(tradeforge: Runner, options: list[str]) -> None:
    ran = tradeforge("bars", "MES", *options, "--sim", "http://127.0.0.1:9")
    assert ran.code == 2
    assert "Traceback" not in ran.err


def test_a_limit_buy_is_listed_in_orders_until_cancelled(on_sim: Runner) -> None:
    (placed,) = on_sim("buy", "MES", 1, "--limit", "1000", "--account", FIRST, "--json").lines()
    assert placed["status"] == "OPEN"
    assert placed["custom_tag"]
    assert placed["order"]["custom_tag"] == placed["custom_tag"]
    assert placed["order"]["limit_price"] == "1000"
    order_id = placed["order_id"]
    working = on_sim("orders", "--account", FIRST, "--json").lines()
    assert [o["id"] for o in working] == [order_id]
    assert ISO_Z.match(working[0]["created_at"])
    table = on_sim("orders", "--account", FIRST).out
    assert re.search(rf"{order_id}\s.*BUY\s+LIMIT\s+1\s+0\s+1000\s+OPEN", table), table

    cancelled = on_sim("cancel", order_id, "--account", FIRST)
    assert cancelled.code == 0
    assert re.search(rf"cancelled\s+order {order_id} \(BUY 1 .* LIMIT limit 1000", cancelled.out)
    assert re.search(r"status\s+CANCELLED", cancelled.out), cancelled.out
    assert on_sim("orders", "--account", FIRST, "--json").lines() == []
    assert f"no working orders on account {FIRST}" in on_sim("orders", "--account", FIRST).out
    clean_error(on_sim("cancel", order_id, "--account", FIRST), 1, "already CANCELLED")


def test_a_stop_sell_prints_its_id_tag_and_status(on_sim: Runner) -> None:
    tag = "[b]stop:x:"  # shown as it is: no markup, no emoji
    shown = on_sim("sell", "MES", 2, "--stop", "1000.25", "--tag", tag, "--account", FIRST)
    assert shown.code == 0
    order_id = re.search(r"order\s+(\d+)", shown.out)
    assert order_id is not None, shown.out
    assert re.search(rf"custom tag\s+{re.escape(tag)}\s", shown.out), shown.out
    assert re.search(r"status\s+OPEN", shown.out)
    (working,) = on_sim("orders", "--account", FIRST, "--json").lines()
    assert (working["side"], working["type"], working["stop_price"]) == ("SELL", "STOP", "1000.25")
    (cancelled,) = on_sim("cancel", order_id.group(1), "--account", FIRST, "--json").lines()
    assert cancelled["status"] == "CANCELLED"


def test_a_market_buy_shows_in_positions_until_flattened(on_sim: Runner) -> None:
    bought = on_sim("buy", "MES", 2, "--account", SECOND)
    assert bought.code == 0
    assert re.search(r"status\s+FILLED", bought.out), bought.out
    assert re.search(r"filled\s+2 @ \d+", bought.out)
    (held,) = on_sim("positions", "--account", SECOND, "--json").lines()
    assert (held["side"], held["size"]) == ("LONG", 2)
    assert DECIMAL.match(held["mark"])
    points = Decimal(held["mark"]) - Decimal(held["average_price"])
    assert Decimal(held["unrealized_pnl"]) == points * 5 * 2  # MES: $5 a point, 2 contracts
    table = on_sim("positions", "--account", SECOND).out
    assert "open P&L" in table
    assert re.search(r"MES\w+\s+LONG\s+2\s+\d+", table), table

    flat = on_sim("flatten", "MES", "--account", SECOND)
    assert flat.code == 0
    assert re.search(r"closed positions\s+CON\.F\.US\.MES\.", flat.out), flat.out
    assert on_sim("positions", "--account", SECOND, "--json").lines() == []
    assert f"no open positions on account {SECOND}" in on_sim("positions", "--account", SECOND).out
    (again,) = on_sim("flatten", "--account", SECOND, "--json").lines()
    assert again == {
        "account_id": SECOND,
        "contract_id": None,
        "cancelled": [],
        "closed": [],
        "failed": [],
        "complete": True,
    }


def test_flatten_cancels_working_orders_too(on_sim: Runner) -> None:
    (placed,) = on_sim("buy", "MES", 1, "--limit", "1000", "--account", FIRST, "--json").lines()
    assert on_sim("buy", "ES", 1, "--account", FIRST).code == 0
    (done,) = on_sim("flatten", "--account", FIRST, "--json").lines()
    assert done["cancelled"] == [placed["order_id"]]
    assert len(done["closed"]) == 1
    assert done["closed"][0].startswith("CON.F.US.EP.")
    assert done["complete"] is True
    assert on_sim("orders", "--account", FIRST, "--json").lines() == []


def test_watch_stops_after_the_updates_asked_for(on_sim: Runner) -> None:
    updates = on_sim("watch", "MES", "--updates", 4, "--depth", 3, "--json").lines()
    assert len(updates) == 4
    assert {u["event"] for u in updates} <= {"quote", "book"}
    book = next(u for u in updates if u["event"] == "book")
    assert 0 < len(book["bids"]) <= 3
    assert 0 < len(book["asks"]) <= 3
    assert DECIMAL.match(book["bids"][0]["price"])
    assert isinstance(book["bids"][0]["volume"], int)
    assert Decimal(book["bids"][0]["price"]) < Decimal(book["asks"][0]["price"])
    shown = on_sim("watch", "MES", "--updates", 3)
    assert shown.code == 0
    assert re.search(r"bid size\s+bid\s+ask\s+ask size", shown.out), shown.out
    assert "3 updates" in shown.out


def test_bad_symbols_and_unknown_orders_are_clean_errors(on_sim: Runner) -> None:
    clean_error(on_sim("quote", "XYZ"), 1, "no active contract for 'XYZ'")
    clean_error(on_sim("bars", "CON.F.US.XYZ.Z26"), 1, "no contract 'CON.F.US.XYZ.Z26'")
    clean_error(on_sim("buy", "XYZ", 1, "--account", FIRST), 1, "XYZ")
    clean_error(
        on_sim("cancel", 123456, "--account", FIRST), 1, f"no order 123456 on account {FIRST}"
    )
    clean_error(on_sim("buy", "MES", 1, "--limit", "1000.1", "--account", FIRST), 1, "tick")
    assert on_sim("orders", "--account", FIRST, "--json").lines() == []


def test_the_account_is_chosen_or_asked_for(tradeforge: Runner, on_sim: Runner) -> None:
    clean_error(on_sim("orders"), 1, "2 active accounts", str(FIRST), str(SECOND), "--account")
    clean_error(on_sim("positions", "--account", 99), 1, "account 99 (--account)", str(FIRST))
    with running_sim(config=SimConfig(accounts=accounts_of(["PRACTICE-50K"]))) as single:
        listed = tradeforge("orders", "--sim", single.api_url)
    assert listed.code == 0
    assert f"no working orders on account {FIRST}" in listed.out


def test_without_live_settings_the_commands_name_what_is_missing(tradeforge: Runner) -> None:
    clean_error(tradeforge("accounts"), 1, "TS_USERNAME", "TS_API_KEY", "--sim URL")
    Path(".env").write_text("TS_USERNAME=someone\n")
    clean_error(tradeforge("orders"), 1, "TS_API_KEY is not", "--sim URL")


def test_a_refused_login_and_an_unreachable_backend(
    tmp_path: Path, sim: SimServer, tradeforge: Runner
) -> None:
    wrong = live_env(tmp_path / "wrong.env", sim, key="not-the-key")
    clean_error(tradeforge("accounts", "--env-file", wrong), 3, "refused the login")
    with socket.socket() as probe:  # a port nothing listens on once it is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    clean_error(tradeforge("accounts", "--sim", f"http://127.0.0.1:{port}"), 4, "could not reach")


def test_a_live_change_is_refused_without_a_terminal(
    tmp_path: Path, sim: SimServer, tradeforge: Runner, on_sim: Runner
) -> None:
    env = live_env(tmp_path / "live.env", sim)
    ran = subprocess.run(
        [sys.executable, "-m", "tradeforge_anyio.cli", "buy", "MES", "1", "--env-file", env],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=CLEAN_ENV,
        timeout=SAFETY,
        check=False,
    )
    clean_error(Ran(ran.returncode, ran.stdout, ran.stderr), 5, "not a terminal", "--yes")
    assert "BUY 1 MES" in ran.stderr
    assert f"account {SECOND}" in ran.stderr
    assert on_sim("positions", "--account", SECOND, "--json").lines() == []

    (placed,) = on_sim("buy", "MES", 1, "--limit", "1000", "--account", SECOND, "--json").lines()
    for command in (["cancel", placed["order_id"]], ["flatten"]):
        clean_error(tradeforge(*command, "--env-file", env), 5, "not a terminal", "--yes")
    (still,) = on_sim("orders", "--account", SECOND, "--json").lines()
    assert still["id"] == placed["order_id"]


def test_a_terminal_confirms_or_declines_a_live_change(
    tmp_path: Path,
    sim: SimServer,
    monkeypatch: pytest.MonkeyPatch,
    tradeforge: Runner,
    on_sim: Runner,
) -> None:
    env = live_env(tmp_path / "live.env", sim)
    monkeypatch.setattr(sys, "stdin", Terminal("n\n"))
    declined = tradeforge("buy", "MES", 1, "--env-file", env)
    assert declined.code == 5
    # The question names what would be sent and where; the answer ends it (a terminal echoes
    # the typed "n" and its newline between the two).
    prompt, said = declined.err.split("[y/N] ")
    assert said == "tradeforge: not confirmed: nothing was sent\n"
    assert re.search(
        rf"BUY 1 MES\w+ \(CON\.F\.US\.MES\.\w+\) at market on account {SECOND}", prompt
    )
    assert f"on TOPSTEPX at {sim.api_url} as {DEFAULT_USERNAME}. Send it?" in prompt
    assert on_sim("positions", "--account", SECOND, "--json").lines() == []

    monkeypatch.setattr(sys, "stdin", Terminal("y\n"))
    (placed,) = tradeforge("buy", "MES", 1, "--env-file", env, "--json").lines()
    assert placed["status"] == "FILLED"
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    (done,) = tradeforge("flatten", "--env-file", env, "--yes", "--json").lines()
    assert len(done["closed"]) == 1
    assert on_sim("positions", "--account", SECOND, "--json").lines() == []


def test_an_unknown_outcome_is_said_plainly_and_not_sent_again(
    sim: SimServer, monkeypatch: pytest.MonkeyPatch, on_sim: Runner
) -> None:
    place = TradingClient.place_order

    async def answer_lost(self: TradingClient, *args: Any, **kwargs: Any) -> int:
        sim.faults.rest_drops = 1  # the gateway carries the order out; its answer is lost
        return await place(self, *args, **kwargs)

    monkeypatch.setattr(TradingClient, "place_order", answer_lost)
    lost = on_sim("buy", "MES", 1, "--tag", "lost-answer", "--account", FIRST)
    clean_error(lost, 6, "unknown", "lost-answer", "was not sent again")
    assert lost.out == ""
    monkeypatch.undo()
    (held,) = on_sim("positions", "--account", FIRST, "--json").lines()
    assert held["size"] == 1  # placed once: never retried


def test_watch_stops_cleanly_on_ctrl_c(sim: SimServer, tmp_path: Path) -> None:
    starter = (
        "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "from tradeforge_anyio.cli import main; main(sys.argv[1:])"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", starter, "watch", "MES", "--sim", sim.api_url, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=CLEAN_ENV,
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], SAFETY)
        assert ready, "watch printed nothing"
        first = process.stdout.readline()  # the feed is live
        assert json.loads(first)["event"] in {"quote", "book"}
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=SAFETY)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "Traceback" not in err


def test_watch_stops_quietly_when_its_reader_does(sim: SimServer, tmp_path: Path) -> None:
    command = ["watch", "MES", "--sim", sim.api_url, "--json"]
    process = subprocess.Popen(
        [sys.executable, "-m", "tradeforge_anyio.cli", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=CLEAN_ENV,
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], SAFETY)
        assert ready, "watch printed nothing"
        process.stdout.readline()
        process.stdout.close()  # like "| head -1"
        process.wait(timeout=SAFETY)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.stderr is not None
    err = process.stderr.read()
    process.stderr.close()
    assert process.returncode == 0, err
    assert err == ""


def test_help_documents_exit_codes_and_the_json_rule(tradeforge: Runner) -> None:
    shown = tradeforge("buy", "--help")
    assert shown.code == 0
    assert "exit codes:" in shown.out
    assert re.search(r"^\s+6\s+a change was sent but its outcome is unknown", shown.out, re.M)
    assert "one object per line" in shown.out
    assert "--yes" in shown.out
