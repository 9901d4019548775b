"""What a new user reads first reads right: the settings file template and the command help."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tradeforge_proto.config import SETTING_NAMES, Backend, Settings

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / ".env.example"
OTHER_SETTINGS = {"TRADEFORGE_PROFILES", "TRADEFORGE_PROFILE", "TRADEFORGE_SERVICE_TOKEN"}


def test_the_env_example_lists_every_setting_with_a_comment() -> None:
    text = EXAMPLE.read_text()
    assigned = re.compile(r"^#? ?([A-Z][A-Z_]+)=")
    every = {f"TS_{name}" for name in SETTING_NAMES} | OTHER_SETTINGS
    assert {name for name in every if not re.search(rf"\b{name}\b", text)} == set()
    lines = text.splitlines()
    for index, line in enumerate(lines):
        match = assigned.match(line)
        if match is None:
            continue
        assert match.group(1) in every, f"{match.group(1)} is no setting"
        above = next(lines[i] for i in range(index - 1, -1, -1) if not assigned.match(lines[i]))
        assert above.startswith("# "), f"{line} has no comment above it"


def test_the_env_example_as_it_stands_means_the_in_process_simulator() -> None:
    settings = Settings.from_sources({}, EXAMPLE.read_text())
    assert settings.profile().backend() is Backend.EMBEDDED


@pytest.mark.parametrize("command", [[], ["sim"], ["serve"]])
def test_help_reads_as_plain_text(command: list[str]) -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "tradeforge_anyio.cli", *command, "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert "usage: tradeforge" in shown
    assert "``" not in shown
    assert ":mod:" not in shown


@pytest.mark.parametrize("example", sorted(p.name for p in (ROOT / "examples").glob("*.py")))
def test_every_example_answers_help(example: str) -> None:
    shown = subprocess.run(
        [sys.executable, str(ROOT / "examples" / example), "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert shown.startswith("usage: ")
