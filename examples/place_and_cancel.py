"""Place a limit order well below the market on a practice account, look at it, cancel it."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

import anyio

from tradeforge_anyio import connect
from tradeforge_proto import BarUnit, OrderSide, OrderType


async def main() -> None:
    async with connect() as client:
        account = next(a for a in await client.get_accounts() if a.simulated and a.can_trade)
        contract = await client.resolve_contract("MES")
        now = datetime.now(UTC)
        (last,) = await client.get_bars(
            contract.id, BarUnit.MINUTE, 1, start=now - timedelta(hours=1), end=now, limit=1
        )
        # 40 ticks under the last close, on the tick grid: it will rest, not fill.
        price = (last.close // contract.tick_size - 40) * contract.tick_size
        order_id = await client.place_order(
            account.id, contract.id, OrderSide.BUY, OrderType.LIMIT, 1, limit_price=price
        )
        order = await client.get_order(account.id, order_id)
        print(
            f"placed {order.id}: {order.side.name} {order.size} {contract.name} @ "
            f"{order.limit_price}, status {order.status.name}, tag {order.custom_tag}"
        )
        await client.cancel_order(account.id, order_id)
        order = await client.get_order(account.id, order_id)
        print(f"after cancel: status {order.status.name}")


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__).parse_args()
    anyio.run(main)
