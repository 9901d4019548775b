"""Both runtimes are one library: the blocking client is generated from the async one, and the
public names and signatures of each runtime match the other's."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import tradeforge_anyio
import tradeforge_sync

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import unasync  # noqa: E402

BLOCKING_NAMES = {"aclose": "close", "__aenter__": "__enter__", "__aexit__": "__exit__"}
"""Async names and the names their blocking twins have."""
ALLOWED = {("TradingStream", "__exit__")}
"""Differences by design: the async stream's exit returns what its task group's exit returns (a
cancellation the group absorbed), the blocking one has no task group."""


def test_the_generated_blocking_client_is_up_to_date() -> None:
    checked = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "unasync.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_rewrites_turn_async_code_into_blocking_code() -> None:
    source = (
        "from tradeforge_anyio.net import X\n"
        "async def f(x: AsyncIterator[int]) -> None:\n"
        "    async with x as y:\n"
        "        async for z in y:\n"
        "            await z.aclose()\n"
    )
    assert unasync.rewrite_tokens(source) == (
        "from tradeforge_sync.net import X\n"
        "def f(x: Iterator[int]) -> None:\n"
        "    with x as y:\n"
        "        for z in y:\n"
        "            z.close()\n"
    )


def test_a_phrase_the_source_lost_is_reported() -> None:
    with pytest.raises(ValueError, match="no longer contains"):
        unasync.unasync("class Other:\n    pass\n")


def public(cls: type) -> dict[str, inspect.Signature]:
    names = {
        name
        for name in dir(cls)
        if not name.startswith("_") or name in ("__aenter__", "__aexit__", "__enter__", "__exit__")
    }
    found: dict[str, inspect.Signature] = {}
    for name in names:
        member = inspect.getattr_static(cls, name)
        if isinstance(member, property):
            found[BLOCKING_NAMES.get(name, name)] = inspect.Signature()
            continue
        function: Any = (
            member.__func__ if isinstance(member, classmethod | staticmethod) else member
        )
        if callable(function):
            signature = inspect.signature(function)
            found[BLOCKING_NAMES.get(name, name)] = signature.replace(
                return_annotation=_blocking(signature.return_annotation)
            )
    return found


def _blocking(annotation: object) -> object:
    text = str(annotation)
    return text.replace("AsyncIterator", "Iterator").replace("AsyncIterable", "Iterable")


@pytest.mark.parametrize("name", ["TradingClient", "TradingStream"])
def test_each_class_has_the_same_public_names_and_signatures(name: str) -> None:
    async_side = public(getattr(tradeforge_anyio, name))
    blocking_side = public(getattr(tradeforge_sync, name))
    assert sorted(async_side) == sorted(blocking_side)
    differing = {
        member: (str(async_side[member]), str(blocking_side[member]))
        for member in async_side
        if str(async_side[member]) != str(blocking_side[member]) and (name, member) not in ALLOWED
    }
    assert differing == {}


def test_both_packages_export_the_same_names() -> None:
    assert set(tradeforge_anyio.__all__) == set(tradeforge_sync.__all__)
    async_connect = inspect.signature(tradeforge_anyio.connect).parameters
    assert async_connect == inspect.signature(tradeforge_sync.connect).parameters
