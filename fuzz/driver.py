"""The command line every fuzz target shares: atheris when asked for, else a seeded loop."""

from __future__ import annotations

import sys
from collections.abc import Callable


def main(one_input: Callable[[bytes], object], run: Callable[[int], int]) -> None:
    """``-atheris [args]`` fuzzes ``one_input`` under atheris; ``[N]`` runs N seeded inputs."""
    if sys.argv[1:2] == ["-atheris"]:
        import atheris  # type: ignore[import-untyped,import-not-found,unused-ignore]

        atheris.Setup([sys.argv[0], *sys.argv[2:]], one_input)
        atheris.Fuzz()
    else:
        count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
        print(f"{run(count)} inputs, no unexpected exception")
