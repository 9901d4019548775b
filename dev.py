#!/usr/bin/env python3
"""Set up the development environment and run the project's jobs.

    python3 dev.py test     # install into .venv, then lint, type-check and run every test
    python3 dev.py run      # install into .venv, then run the service (tradeforge serve)
    python3 dev.py sim      # install into .venv, then run the gateway simulator
    python3 dev.py bench    # install into .venv, then run the benchmarks

Only Python >= 3.11 and git are needed: the virtual environment and every pinned dependency
(constraints.txt) are installed on first use and again whenever pyproject.toml or
constraints.txt change.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".tradeforge-installed"
PACKAGES = ["tradeforge_proto", "tradeforge_anyio", "tradeforge_sync", "tradeforge_sim"]
CHROMIUM = Path("/usr/bin/chromium")
BROWSER_PACKAGES = ["chromium", "chromium-driver"]
"""The Debian packages the browser tests drive: nothing else is downloaded for them."""


def _fingerprint(extras: str) -> str:
    digest = hashlib.sha256(extras.encode())
    for name in ("pyproject.toml", "constraints.txt"):
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def _run(*args: str | Path) -> None:
    print("+", " ".join(str(a) for a in args), flush=True)
    result = subprocess.run([str(a) for a in args], cwd=ROOT, check=False)
    if result.returncode != 0:
        sys.exit(result.returncode)


def ensure_env(extras: str = "dev") -> None:
    """Create .venv and install the project with ``extras`` and pinned dependencies when needed
    (``dev``: everything; ``service``: what the service and the simulator need)."""
    if sys.version_info < (3, 11):  # noqa: UP036 - this script may be run by an older python3
        sys.exit("TradeForge needs Python >= 3.11")
    if not PYTHON.exists():
        print(f"creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    fingerprint = _fingerprint(extras)
    done = STAMP.read_text().splitlines() if STAMP.exists() else []
    if fingerprint in done or _fingerprint("dev") in done:  # dev holds every other set
        return
    print(f"installing tradeforge[{extras}] and its pinned dependencies into {VENV}", flush=True)
    _run(PYTHON, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    _run(
        PYTHON, "-m", "pip", "install", "--progress-bar", "on",
        "-c", ROOT / "constraints.txt", "-e", f"{ROOT}[{extras}]",
    )  # fmt: skip
    current = {_fingerprint(name) for name in set(EXTRAS.values())}
    STAMP.write_text("\n".join([*(f for f in done if f in current), fingerprint]))


def _has_chromium() -> bool:
    return CHROMIUM.exists() or shutil.which("chromium") is not None


def ensure_browser() -> None:
    """Make sure the system Chromium the browser tests (tests/browser) run is installed: as
    root on Debian, install it with apt-get; anywhere else, stop and say what to install."""
    if _has_chromium():
        return
    packages = " ".join(BROWSER_PACKAGES)
    if not Path("/etc/debian_version").exists() or shutil.which("apt-get") is None:
        sys.exit("the browser tests need Chromium: install it so that `chromium` is on PATH")
    if os.geteuid() != 0:
        sys.exit(f"the browser tests need Chromium: sudo apt-get install {packages}")
    print(f"installing {packages} with apt-get for the browser tests", flush=True)
    apt = ("env", "DEBIAN_FRONTEND=noninteractive", "apt-get")
    _run(*apt, "update")
    _run(*apt, "install", "-y", "--no-install-recommends", *BROWSER_PACKAGES)
    if not _has_chromium():
        sys.exit(f"apt-get installed {packages}, yet no chromium is on PATH")


def test(extra: list[str]) -> None:
    """Lint, format check, strict type check, then the whole test suite with core coverage
    (the browser tests in headless Chromium, installed first if it is missing)."""
    _run(PYTHON, "-m", "ruff", "check", ".")
    _run(PYTHON, "-m", "ruff", "format", "--check", ".")
    _run(PYTHON, "-m", "mypy", *PACKAGES, "examples", "bench", "fuzz", "tools")
    ensure_browser()
    workers = str(min(os.cpu_count() or 1, 4))  # tests wait on I/O: one worker per core
    _run(
        PYTHON, "-m", "pytest", "-p", "no:cacheprovider", "-n", workers,
        "--cov=tradeforge_proto", "--cov-branch", "--cov-report=term-missing:skip-covered",
        *extra,
    )  # fmt: skip


def run(extra: list[str]) -> None:
    """The main job: the web service, on the embedded simulator unless .env has credentials."""
    _run(PYTHON, "-m", "tradeforge_anyio.cli", "serve", *extra)


def sim(extra: list[str]) -> None:
    """The gateway simulator, in the foreground (Ctrl-C stops it)."""
    _run(PYTHON, "-m", "tradeforge_sim", *extra)


def bench(extra: list[str]) -> None:
    """Every benchmark in bench/, each printing its side-by-side table."""
    for script in sorted((ROOT / "bench").glob("bench_*.py")):
        _run(PYTHON, script, *extra)


JOBS = {"test": test, "run": run, "sim": sim, "bench": bench}
EXTRAS = {"test": "dev", "run": "service", "sim": "service", "bench": "dev"}
"""What each job installs: the service and the simulator need no development tools."""


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in JOBS:
        sys.exit(f"usage: python3 dev.py {{{'|'.join(JOBS)}}} [args...]")
    ensure_env(EXTRAS[sys.argv[1]])
    JOBS[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()
