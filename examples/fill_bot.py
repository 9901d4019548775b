"""A tiny bot: buy one contract, and when the fill arrives on the user hub, flatten again."""

from __future__ import annotations

import anyio

from tradeforge_anyio import connect
from tradeforge_proto import (
    FillReceived,
    OrderSide,
    OrderType,
    PositionUpdated,
    Resubscribed,
    Subscribed,
)


async def main() -> None:
    async with connect() as client:
        account = next(a for a in await client.get_accounts() if a.simulated and a.can_trade)
        contract = await client.resolve_contract("MES")
        async with client.stream() as stream:
            await stream.subscribe_user(account.id)
            entered = False
            with anyio.fail_after(30):
                async for event in stream:
                    if isinstance(event, Subscribed | Resubscribed) and not entered:
                        entered = True
                        await client.place_order(
                            account.id, contract.id, OrderSide.BUY, OrderType.MARKET, 1
                        )
                        print("bought 1 at market, waiting for the fill")
                    elif isinstance(event, FillReceived):
                        fill = event.fill
                        print(
                            f"fill: {fill.side.name} {fill.size} @ {fill.price}, "
                            f"P&L {fill.profit_and_loss}, fees {fill.fees}"
                        )
                        if fill.profit_and_loss is None:  # the opening fill: close again
                            await client.close_position(account.id, contract.id)
                    elif isinstance(event, PositionUpdated) and event.is_flat:
                        print("flat again: done")
                        break


if __name__ == "__main__":
    anyio.run(main)
