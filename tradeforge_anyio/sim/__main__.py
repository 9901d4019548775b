"""``python -m tradeforge_anyio.sim``: the same as ``tradeforge sim``."""

import sys

from ..cli import main

main(["sim", *sys.argv[1:]])
