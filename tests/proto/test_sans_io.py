"""tradeforge_proto does no I/O and no waiting: proven by walking its imports, two ways."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import tradeforge_proto

FORBIDDEN = frozenset(
    {"socket", "ssl", "select", "selectors", "asyncio", "anyio", "trio", "threading", "_thread"}
)
FORBIDDEN_CALLS = frozenset({("time", "sleep"), ("time", "time"), ("time", "monotonic")})
PACKAGE_DIR = Path(tradeforge_proto.__file__).parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def violations(source: str, module: str, *, is_package: bool = False) -> list[str]:
    """Forbidden imports and clock/sleep uses in one module's source."""
    found: list[str] = []
    tree = ast.parse(source)
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                names = [".".join([*base, node.module] if node.module else base)]
            else:
                names = [node.module or ""]
            if node.module == "time":
                found += [f"from time import {a.name}" for a in node.names if a.name != "timezone"]
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and (node.value.id, node.attr) in FORBIDDEN_CALLS
        ):
            found.append(f"{node.value.id}.{node.attr}")
        found += [name for name in names if name.split(".")[0] in FORBIDDEN]
    return found


def test_checker_detects_what_it_forbids():
    bad = textwrap.dedent(
        """
        import socket
        from asyncio import sleep
        import anyio.abc
        import time
        from time import sleep as nap
        def f():
            time.sleep(1)
            return time.time()
        """
    )
    assert violations(bad, "tradeforge_proto.x") == [
        "socket",
        "asyncio",
        "anyio.abc",
        "from time import sleep",
        "time.sleep",
        "time.time",
    ]
    assert violations("from . import http\nimport attrs\n", "tradeforge_proto.x") == []


def test_no_module_of_the_core_imports_io_or_concurrency():
    files = sorted(PACKAGE_DIR.rglob("*.py"))
    assert len(files) >= 15, "the walk must see the whole package"
    report = {}
    for path in files:
        found = violations(
            path.read_text(), _module_name(path), is_package=path.name == "__init__.py"
        )
        if found:
            report[str(path.relative_to(PACKAGE_DIR))] = found
    assert report == {}


IMPORT_PROBE = textwrap.dedent(
    """
    import builtins, importlib, pkgutil, sys
    forbidden = set(sys.argv[1].split(","))
    seen = []
    real_import = builtins.__import__

    def spy(name, globals=None, locals=None, fromlist=(), level=0):
        importer = (globals or {}).get("__name__", "")
        ours = importer.startswith("tradeforge_proto")
        if level == 0 and name.split(".")[0] in forbidden and ours:
            seen.append(f"{importer} -> {name}")
        return real_import(name, globals, locals, fromlist, level)

    builtins.__import__ = spy
    import tradeforge_proto
    modules = ["tradeforge_proto"]
    for info in pkgutil.walk_packages(tradeforge_proto.__path__, "tradeforge_proto."):
        importlib.import_module(info.name)
        modules.append(info.name)
    print(len(modules))
    print("\\n".join(seen))
    """
)


def test_importing_every_core_module_pulls_in_no_io_from_the_core():
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE, ",".join(sorted(FORBIDDEN))],
        capture_output=True,
        text=True,
        check=True,
    )
    count, *seen = result.stdout.strip().splitlines()
    assert int(count) >= 15
    assert seen == []
