"""Find the current contract of a product and print its recent bars."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

import anyio

from tradeforge_anyio import connect
from tradeforge_proto import BarUnit


async def main(symbol: str) -> None:
    async with connect() as client:
        contract = await client.resolve_contract(symbol)
        print(f"{symbol} -> {contract.id} ({contract.description}), tick {contract.tick_size}")
        end = datetime.now(UTC)
        bars = await client.get_bars(
            contract.id, BarUnit.MINUTE, 5, start=end - timedelta(hours=3), end=end, limit=12
        )
        for bar in bars:
            print(
                f"{bar.time:%Y-%m-%d %H:%M}  O {bar.open}  H {bar.high}  L {bar.low}  "
                f"C {bar.close}  V {bar.volume}"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("symbol", nargs="?", default="MES", help="product symbol (default MES)")
    anyio.run(main, parser.parse_args().symbol)
