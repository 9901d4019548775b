"""The realtime core on recorded market-hub frames: SignalR records in, typed events out.

Each line of data/market_hub_frames.jsonl is one WebSocket text message as the market hub sent
it (the handshake answer, subscription acknowledgements, quotes, depth, trades, a ping; one trade
record is split across two messages). The same pieces run inside the stream machine.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tradeforge_proto import (
    BarAggregator,
    BarUnit,
    DepthReceived,
    MarketTradeReceived,
    OrderBook,
    QuoteUpdated,
)
from tradeforge_proto.providers.topstepx.hubs import MarketHub
from tradeforge_proto.signalr import HubConnection, HubRole, InvocationReceived

FRAMES = Path(__file__).parent / "data" / "market_hub_frames.jsonl"
CONTRACT = "CON.F.US.MES.Z25"
SUBSCRIBE = ("SubscribeContractQuotes", "SubscribeContractTrades", "SubscribeContractMarketDepth")


def main() -> None:
    frames = [json.loads(line) for line in FRAMES.read_text().splitlines()]
    connection = HubConnection(HubRole.CLIENT)
    print("handshake sent:", repr(connection.data_to_send()))
    print("handshake answer:", [type(e).__name__ for e in connection.receive(frames[0])])
    for method in SUBSCRIBE:
        connection.invoke(method, CONTRACT)
    print("subscriptions sent:", connection.data_to_send().count("\x1e"), "records")

    hub = MarketHub("https://rtc.topstepx.com/hubs/market")
    book = OrderBook(CONTRACT)
    bars = BarAggregator(BarUnit.MINUTE, 1, contract_id=CONTRACT)
    for frame in frames[1:]:
        for hub_event in connection.receive(frame):
            if not isinstance(hub_event, InvocationReceived):
                print(f"  {type(hub_event).__name__}")
                continue
            for event in hub.decode(hub_event.target, hub_event.arguments):
                if isinstance(event, QuoteUpdated):
                    q = event.quote
                    print(f"  quote  {q.best_bid} x {q.best_ask}  last {q.last_price}")
                elif isinstance(event, DepthReceived):
                    book.apply_all(event.updates)
                    bid, ask = book.best_bid, book.best_ask
                    best = f"{bid.price} x {ask.price}" if bid and ask else "one-sided"
                    print(f"  depth  {len(event.updates)} entries -> book {best}")
                elif isinstance(event, MarketTradeReceived):
                    t = event.trade
                    print(f"  trade  {t.volume} @ {t.price} ({t.aggressor.name} aggressor)")
                    for bar in bars.add(t):
                        print(f"  bar    {bar.time:%H:%M} {bar.open}-{bar.close} V {bar.volume}")
    print("book, top 3:")
    for bid, ask in zip(book.bids(3), book.asks(3), strict=True):
        print(f"  {bid.volume:>4} {bid.price}  |  {ask.price} {ask.volume:<4}")
    print("open bar:", bars.current)


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    main()
