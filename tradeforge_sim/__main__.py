"""``python -m tradeforge_sim``: the same as ``tradeforge sim``."""

import sys

from tradeforge_anyio.cli import main

main(["sim", *sys.argv[1:]])
