"""Each package loads only what it needs, checked in a fresh interpreter per package."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROBE = """
import json, sys
import {package}
print(json.dumps(sorted(sys.modules)))
"""


def loaded(package: str) -> set[str]:
    """Every module a fresh interpreter holds after ``import package``."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(package=package)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return set(json.loads(result.stdout))


def roots(modules: set[str], *names: str) -> list[str]:
    return sorted(m for m in modules if any(m == n or m.startswith(f"{n}.") for n in names))


def test_the_blocking_runtime_loads_no_async_runtime_simulator_or_service() -> None:
    modules = loaded("tradeforge_sync")
    assert "tradeforge_sync.client" in modules
    assert roots(modules, "anyio", "trio", "sniffio", "tradeforge_anyio", "fastapi") == []


def test_the_async_runtime_loads_no_blocking_runtime_simulator_or_service() -> None:
    modules = loaded("tradeforge_anyio")
    assert "tradeforge_anyio.client" in modules
    unwanted = ("tradeforge_sync", "tradeforge_sim", "tradeforge_anyio.service", "fastapi")
    assert roots(modules, *unwanted) == []


@pytest.mark.parametrize("package", ["tradeforge_proto", "tradeforge_proto.rules"])
def test_the_core_loads_no_runtime(package: str) -> None:
    modules = loaded(package)
    unwanted = ("anyio", "trio", "tradeforge_anyio", "tradeforge_sync", "socket", "ssl", "sqlite3")
    assert roots(modules, *unwanted) == []


def test_the_probe_sees_what_a_package_loads() -> None:
    assert "json" in loaded("json")
    assert roots({"anyio.abc", "anyiox", "trio"}, "anyio", "trio") == ["anyio.abc", "trio"]
