"""A bot that only speaks HTTP and WebSocket: trade and watch through ``tradeforge serve``.

Start the service first (``python3 dev.py run`` prints its URL and token), then::

    python examples/service_client.py http://127.0.0.1:8000 TOKEN

It subscribes to MES quotes and to the first tradeable account's orders and fills on
``/ws/stream``, buys one MES at market over REST, waits for the order to show FILLED and for its
fill, flattens the position and prints what it saw. Needs ``httpx`` and ``websockets``
(``pip install 'tradeforge[examples]'``); any language with an HTTP and a WebSocket client can
do the same.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect


async def next_message(ws: ClientConnection, wanted: set[str]) -> dict[str, Any]:
    """The next message of one of the ``wanted`` event types; an ERROR stops the bot."""
    while True:
        message: dict[str, Any] = json.loads(await ws.recv())
        if message["event_type"] == "ERROR":
            raise RuntimeError(message["data"]["message"])
        if message["event_type"] in wanted:
            return message


async def main(base_url: str, token: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=10) as http:
        ready = (await http.get("/ready")).raise_for_status().json()
        print(f"service on {ready['provider']} ({ready['environment']})")
        accounts = (await http.get("/accounts")).raise_for_status().json()["accounts"]
        account = next(a for a in accounts if a["can_trade"])
        contract = (await http.get("/contracts/by-symbol/MES")).raise_for_status().json()
        print(f"account {account['id']} {account['name']}, contract {contract['id']}")

        ws_url = base_url.replace("http", "ws", 1) + "/ws/stream"
        async with connect(ws_url, additional_headers=headers) as ws:
            request = {
                "action": "subscribe",
                "market_data": {"provider_contract_ids": [contract["id"]], "data_types": ["QUOTE"]},
                "user_data": {
                    "provider_account_ids": [account["id"]],
                    "data_types": ["ORDER_UPDATE", "USER_TRADE"],
                },
            }
            await ws.send(json.dumps(request))
            await next_message(ws, {"SUBSCRIBED_ACK"})
            quote = (await next_message(ws, {"QUOTE"}))["data"]
            print(f"quote {quote['best_bid']} x {quote['best_ask']}")

            order = {
                "account_id": account["id"],
                "contract_id": contract["id"],
                "side": "BUY",
                "type": "MARKET",
                "size": 1,
            }
            placed = await http.post("/orders", json=order)
            if placed.status_code == 503:  # sent, outcome unknown: look it up by its tag
                sys.exit(f"outcome unknown, reconcile by custom_tag {placed.json()['custom_tag']}")
            order_id = placed.raise_for_status().json()["order_id"]
            print(f"placed order {order_id}")

            filled = fill = None
            while filled is None or fill is None:
                message = await next_message(ws, {"ORDER_UPDATE", "USER_TRADE"})
                data = message["data"]
                if message["event_type"] == "ORDER_UPDATE" and data["id"] == order_id:
                    filled = data if data["status"] == "FILLED" else None
                elif message["event_type"] == "USER_TRADE" and data["order_id"] == order_id:
                    fill = data
            print(f"order {order_id} FILLED at {filled['filled_price']}")
            print(f"fill {fill['id']}: {fill['side']} {fill['size']} @ {fill['price']}")

            position = {"account_id": account["id"], "contract_id": contract["id"]}
            (await http.post("/positions/close", json=position)).raise_for_status()
            params = {"account_id": account["id"]}
            left = (await http.get("/positions", params=params)).raise_for_status().json()
            print(f"flat: {not left['positions']}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], epilog="Needs: pip install 'tradeforge[examples]'"
    )
    parser.add_argument("service_url", help="the URL tradeforge serve prints")
    parser.add_argument("token", help="the service token it prints")
    args = parser.parse_args()
    asyncio.run(main(args.service_url, args.token))
