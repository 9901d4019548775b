"""Write the blocking runtime's generated modules from the async runtime's sources.

The async module is the one definition; its blocking twin differs only by the rewrites below
(no ``async``/``await``, the blocking names of the context-manager methods, the package name and a
few phrases), then ruff formats it. ``python tools/unasync.py`` writes the files; ``--check``
exits 1 and prints a diff when a generated file is stale.
"""

from __future__ import annotations

import argparse
import difflib
import re
import subprocess
import sys
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parent.parent

GENERATED: Final = {"tradeforge_anyio/client.py": "tradeforge_sync/client.py"}
"""Source module -> generated module, both relative to the repository."""

PHRASES: Final = (
    (
        "The async trading client: every generic operation over HTTP, on asyncio or trio.",
        "The blocking trading client: every generic operation over HTTP, for scripts and threads.",
    ),
    ("of one login, asynchronously.", "of one login, blocking."),
    ("between tasks", "between threads"),
    ("class TradingClient(TradingPlatformAPI):", "class TradingClient:"),
    ("import Provider, TradingPlatformAPI", "import Provider"),
)
"""Exact texts that read differently in the blocking module."""

TOKENS: Final = (
    (r"\basync def\b", "def"),
    (r"\bawait\s+", ""),
    (r"\basync with\b", "with"),
    (r"\basync for\b", "for"),
    (r"\b__aenter__\b", "__enter__"),
    (r"\b__aexit__\b", "__exit__"),
    (r"\b__aiter__\b", "__iter__"),
    (r"\b__anext__\b", "__next__"),
    (r"\baclose\b", "close"),
    (r"\bAsyncIterator\b", "Iterator"),
    (r"\bAsyncIterable\b", "Iterable"),
    (r"\btradeforge_anyio\b", "tradeforge_sync"),
)
"""Rewrites applied everywhere, in order."""


def header(source: str) -> str:
    return f"# Generated from {source} by tools/unasync.py: edit that file, then run the tool.\n"


def rewrite_tokens(text: str) -> str:
    """``text`` with every ``TOKENS`` rewrite applied."""
    for pattern, replacement in TOKENS:
        text = re.sub(pattern, replacement, text)
    return text


def unasync(text: str) -> str:
    """The blocking version of an async module's text, before formatting."""
    for old, new in PHRASES:
        if old not in text:
            raise ValueError(f"the source no longer contains {old!r}")
        text = text.replace(old, new)
    return rewrite_tokens(text)


def formatted(text: str, path: str) -> str:
    """``text`` as ruff formats the file at ``path``, with the repository's settings."""
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--stdin-filename", path, "-"],
        input=text,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return done.stdout


def generate(source: str, target: str) -> str:
    """The text the generated module ``target`` must have."""
    text = (ROOT / source).read_text()
    return formatted(header(source) + unasync(text), target)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when a file is stale")
    args = parser.parse_args(argv)
    stale = 0
    for source, target in GENERATED.items():
        wanted = generate(source, target)
        path = ROOT / target
        current = path.read_text() if path.exists() else ""
        if current == wanted:
            continue
        if args.check:
            stale += 1
            diff = difflib.unified_diff(
                current.splitlines(keepends=True), wanted.splitlines(keepends=True), target, source
            )
            sys.stdout.writelines(diff)
            print(f"{target} is stale: run python tools/unasync.py", file=sys.stderr)
        else:
            path.write_text(wanted)
            print(f"wrote {target}")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
