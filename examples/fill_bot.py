"""A tiny bot: buy one contract, and when the fill arrives on the user hub, flatten again."""

from __future__ import annotations

import argparse

import anyio

from tradeforge_anyio import connect
from tradeforge_proto import FillReceived, OrderSide, OrderType, OrderUpdated, PositionUpdated

BUY, MARKET = OrderSide.BUY, OrderType.MARKET


async def main() -> None:
    async with connect() as client:
        account = next(a for a in await client.get_accounts() if a.simulated and a.can_trade)
        contract = await client.resolve_contract("MES")
        async with client.stream() as stream:
            await stream.subscribe_user(account.id)  # live and synced once it returns
            ours = {await client.place_order(account.id, contract.id, BUY, MARKET, 1)}
            print("bought 1 at market, waiting for the fill")
            closing = False
            with anyio.fail_after(30):
                async for event in stream:  # live or recovered after a reconnect: all the same
                    if isinstance(event, FillReceived) and event.fill.order_id in ours:
                        fill = event.fill
                        print(
                            f"fill: {fill.side.name} {fill.size} @ {fill.price}, "
                            f"P&L {fill.profit_and_loss}, fees {fill.fees}"
                        )
                        if not closing:  # the opening fill: close again
                            closing = True
                            await client.close_position(account.id, contract.id)
                    elif isinstance(event, OrderUpdated) and closing:
                        ours.add(event.order.id)  # the closing order the gateway made
                    elif closing and isinstance(event, PositionUpdated) and event.is_flat:
                        print("flat again: done")
                        break


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__).parse_args()
    anyio.run(main)
