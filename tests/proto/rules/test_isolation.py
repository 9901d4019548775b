"""The rules package is pure: it imports only the standard library, attrs and the core."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import tradeforge_proto.rules
from tradeforge_proto.rules import ProposedOrder

from .support import BUY

ROOT = Path(tradeforge_proto.rules.__file__).parent
ALLOWED = {
    "__future__",
    "collections",
    "datetime",
    "decimal",
    "enum",
    "types",
    "typing",
    "zoneinfo",
}
ALLOWED_CORE = {"core.enums", "core.models"}


def imports(path: Path) -> tuple[set[str], set[str]]:
    """The absolute top-level modules and the relative modules (from the package) imported."""
    absolute: set[str] = set()
    relative: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            absolute.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                relative.add(f"{'.' * (node.level - 1)}{node.module or ''}")
            else:
                absolute.add((node.module or "").split(".")[0])
    return absolute, relative


def test_the_rules_import_no_runtime() -> None:
    modules = sorted(ROOT.glob("*.py"))
    assert len(modules) >= 6
    for path in modules:
        absolute, relative = imports(path)
        assert absolute <= ALLOWED | {"attrs"}, path.name
        outside = {name for name in relative if name.startswith(".")}
        assert outside <= {f".{name}" for name in ALLOWED_CORE}, path.name


def test_a_proposed_order_has_a_positive_size() -> None:
    with pytest.raises(ValueError, match="size must be a positive whole number"):
        ProposedOrder("X", BUY, 0)
