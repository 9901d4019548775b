"""The runtimes serve any provider: none of their modules imports one.

A provider is reached through the core (``Provider``, its hubs and ``tradeforge_proto.registry``),
so a second provider needs no runtime code. The simulator, the service and the command line are
built on the TopStepX gateway protocol on purpose and are not runtimes.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import tradeforge_anyio
import tradeforge_sync

NOT_RUNTIME = ("sim", "service", "cli.py")


def runtime_modules() -> list[Path]:
    found: list[Path] = []
    for package in (tradeforge_anyio, tradeforge_sync):
        root = Path(package.__file__).parent
        paths = sorted(root.rglob("*.py"))
        found.extend(p for p in paths if p.relative_to(root).parts[0] not in NOT_RUNTIME)
    return found


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_no_runtime_module_imports_a_provider() -> None:
    modules = runtime_modules()
    assert {p.name for p in modules} >= {"client.py", "net.py", "stream.py"}
    offending = {
        str(path): sorted(n for n in imported(path) if n.startswith("tradeforge_proto.providers"))
        for path in modules
    }
    assert {k: v for k, v in offending.items() if v} == {}


def test_the_checker_sees_such_an_import(tmp_path: Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text("from tradeforge_proto.providers.topstepx.hubs import hubs_for\n")
    assert "tradeforge_proto.providers.topstepx.hubs" in imported(module)
    module.write_text("from tradeforge_proto import providers\n")
    assert "tradeforge_proto.providers" in imported(module)


def test_no_runtime_module_names_a_provider_endpoint() -> None:
    endpoint = re.compile(r"""["'](?:Auth|Account|Contract|History|Order|Position|Trade|Status)/""")
    named = {str(path): endpoint.findall(path.read_text()) for path in runtime_modules()}
    assert {k: v for k, v in named.items() if v} == {}
