"""Stream quotes and a live order book for a few seconds."""

from __future__ import annotations

import argparse

import anyio

from tradeforge_anyio import connect
from tradeforge_proto import Connected, DepthReceived, QuoteUpdated


async def main(seconds: float) -> None:
    async with connect() as client:
        contract = await client.resolve_contract("MES")
        async with client.stream(books=True) as stream:
            await stream.subscribe_market(contract.id, quotes=True, trades=False, depth=True)
            quotes = 0
            with anyio.move_on_after(seconds):
                async for event in stream:
                    if isinstance(event, Connected):
                        print(f"connected to the {event.hub} hub")
                    elif isinstance(event, QuoteUpdated):
                        quotes += 1
                        if quotes % 20 == 1:
                            q = event.quote
                            print(f"quote  {q.best_bid} x {q.best_ask}  last {q.last_price}")
                    elif isinstance(event, DepthReceived) and quotes % 20 == 1:
                        book = stream.book(contract.id)
                        if book is not None and book.best_bid and book.best_ask:
                            print(
                                f"book   {book.best_bid.volume} @ {book.best_bid.price} | "
                                f"{book.best_ask.price} @ {book.best_ask.volume}"
                            )
            book = stream.book(contract.id)
            if book is not None:
                print("top 5 levels:")
                for bid, ask in zip(book.bids(5), book.asks(5), strict=False):
                    print(f"  {bid.volume:>5} {bid.price}  |  {ask.price} {ask.volume:<5}")
            print(f"{quotes} quotes, {stream.queue.coalesced_quotes} coalesced")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "seconds", nargs="?", type=float, default=3.0, help="how long to stream (default 3)"
    )
    anyio.run(main, parser.parse_args().seconds)
