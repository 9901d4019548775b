"""List the accounts of the configured login (TopStepX with a .env, else the simulator)."""

from __future__ import annotations

import argparse

import anyio

from tradeforge_anyio import connect


async def main() -> None:
    async with connect() as client:
        print(f"environment: {client.provider.environment_name}")
        for account in await client.get_accounts():
            kind = "simulated" if account.simulated else "REAL MONEY"
            trading = "can trade" if account.can_trade else "cannot trade"
            print(
                f"{account.id:>10}  {account.name:<28} {account.balance:>12,.2f}  {kind}, {trading}"
            )


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__).parse_args()
    anyio.run(main)
