"""The entry points a new user meets first: connect() on both runtimes, serve, and their errors."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import anyio
import pytest

import tradeforge_anyio
import tradeforge_sync
from tradeforge_proto import ConfigurationError, ProviderError
from tradeforge_proto.config import Backend, Settings

SAFETY = 60

INCOMPLETE = [
    ({"TS_USERNAME": "trader"}, "TS_USERNAME is set but TS_API_KEY is not"),
    (
        {"TS_USERNAME": "trader", "TS_APIKEY": "k", "TS_ENVIRONMENT": "TOPSTEPX"},
        "(TS_APIKEY is not a setting: TS_API_KEY?)",
    ),
    ({"TS_API_KEY": "k"}, "TS_API_KEY is set but TS_USERNAME is not"),
    ({"TS_ENVIRONMENT": "DEMO"}, "TS_ENVIRONMENT=DEMO needs TS_USERNAME and TS_API_KEY"),
    ({"TS_API_URL": "https://example.invalid"}, "TS_API_URL needs TS_USERNAME and TS_API_KEY"),
    ({"TS_APIKEY": "k"}, "a live profile needs TS_USERNAME and TS_API_KEY"),
]


@pytest.mark.parametrize(("environ", "message"), INCOMPLETE)
def test_incomplete_live_settings_are_an_error_naming_what_is_missing(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigurationError) as refused:
        Settings.from_env(environ).profile().backend()
    assert message in str(refused.value)


@pytest.mark.parametrize(
    ("environ", "backend", "in_process"),
    [
        ({}, Backend.EMBEDDED, True),
        ({"TS_NODE_OPTIONS": "--x"}, Backend.EMBEDDED, True),  # not a setting, nor like one
        ({"TS_ENVIRONMENT": "SIM"}, Backend.SIMULATOR, True),
        ({"TS_ENVIRONMENT": "SIM", "TS_API_URL": "http://127.0.0.1:1"}, Backend.SIMULATOR, False),
        ({"TS_USERNAME": "u", "TS_API_KEY": "k"}, Backend.LIVE, False),
    ],
)
def test_where_a_profile_trades(
    environ: dict[str, str], backend: Backend, in_process: bool
) -> None:
    profile = Settings.from_env(environ).profile()
    assert profile.backend() is backend
    assert profile.in_process_simulator() is in_process


def clean_environment(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    for name in list(os.environ):
        if name.startswith(("TS_", "TRADEFORGE_")):
            monkeypatch.delenv(name)
    for name, value in values.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_async_connect_refuses_incomplete_settings_and_never_trades_on_paper(
    monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    clean_environment(monkeypatch, TS_USERNAME="trader", TS_APIKEY="k")

    async def main() -> None:
        async with tradeforge_anyio.connect(env_file=None):
            raise AssertionError("connected")

    with pytest.raises(ConfigurationError, match="TS_API_KEY is not"):
        anyio.run(main, backend=backend)


def test_blocking_connect_refuses_incomplete_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    clean_environment(monkeypatch, TS_ENVIRONMENT="TOPSTEPX")
    with (
        pytest.raises(ConfigurationError, match="TS_ENVIRONMENT=TOPSTEPX needs"),
        tradeforge_sync.connect(env_file=None),
    ):
        raise AssertionError("connected")


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_an_error_inside_connect_is_the_library_s_own_type(
    monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    clean_environment(monkeypatch)

    async def main() -> None:
        async with tradeforge_anyio.connect(env_file=None) as client:
            with pytest.raises(ProviderError, match="no active contract for ZZZ"):
                await client.resolve_contract("ZZZ")
            async with client.stream():
                await client.resolve_contract("ZZZ")

    with pytest.raises(ProviderError) as raised:  # not an ExceptionGroup around it
        anyio.run(main, backend=backend)
    assert str(raised.value) == "no active contract for ZZZ (answer of the contract catalogue)"


def test_blocking_connect_runs_a_simulator_when_nothing_is_configured(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    clean_environment(monkeypatch)
    with tradeforge_sync.connect(env_file=None) as client:
        accounts = client.get_accounts()
        with pytest.raises(ProviderError, match="no active contract for ZZZ"):
            client.resolve_contract("ZZZ")
    assert [a.name for a in accounts] == ["PRAC-V2-150K-SIM-1", "PRAC-V2-50K-SIM-2"]
    assert "trading on an in-process simulator" in caplog.text  # announced


def test_serve_refuses_incomplete_settings() -> None:
    env = {"PATH": "/usr/bin:/bin", "TS_USERNAME": "trader"}
    refused = subprocess.run(
        [sys.executable, "-m", "tradeforge_anyio.cli", "serve", "--port", "0", "--no-state"],
        capture_output=True,
        text=True,
        check=False,
        timeout=SAFETY,
        cwd=tempfile.gettempdir(),
        env=env,
    )
    assert refused.returncode == 1
    assert "TS_USERNAME is set but TS_API_KEY is not" in refused.stderr
