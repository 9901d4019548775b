"""The sans-IO core on its own: build requests, turn them into bytes, feed answers back in.

No network is touched: the gateway's answers are written out below as the bytes a server would
send, so this runs anywhere. With a real socket you would write ``data`` and feed what you read.
"""

from __future__ import annotations

import argparse
import json
from decimal import Decimal

from tradeforge_proto import (
    HttpClientConnection,
    OrderRejected,
    OrderSide,
    OrderType,
    Secret,
)
from tradeforge_proto.providers import topstepx


def http_response(status: int, reason: str, body: dict[str, object]) -> bytes:
    """What the gateway would put on the wire."""
    payload = json.dumps(body).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


def main() -> None:
    conn = HttpClientConnection("api.topstepx.com")
    token = Secret("token-from-login")

    # 1. Accounts: build the operation, authorize it, turn it into bytes.
    op = topstepx.search_accounts()
    data = conn.send_request(op.request.with_header("Authorization", f"Bearer {token.reveal()}"))
    print("request bytes:", data.split(b"\r\n")[0].decode(), f"({len(data)} bytes)")
    answer = http_response(
        200,
        "OK",
        {
            "accounts": [
                {
                    "id": 20258288,
                    "name": "150KTC-V2-478426-52758441",
                    "balance": 150175.38,
                    "canTrade": True,
                    "isVisible": True,
                    "simulated": True,
                }
            ],
            "success": True,
            "errorCode": 0,
            "errorMessage": None,
        },
    )
    # Bytes may arrive in any pieces; the connection returns the response once it is whole.
    response = conn.receive_data(answer[:40]) or conn.receive_data(answer[40:])
    assert response is not None
    accounts = op.parse_response(response)
    for account in accounts:
        print(f"account {account.id} {account.name}: balance {account.balance}")

    # 2. An order on the same keep-alive connection, then a rejection with the gateway's code.
    place = topstepx.place_order(
        accounts[0].id,
        "CON.F.US.MES.Z25",
        OrderSide.BUY,
        OrderType.LIMIT,
        size=1,
        limit_price=Decimal("5000.25"),
        custom_tag="walkthrough-1",
    )
    print("place body:", place.request.body.decode(), "| retryable:", place.retryable)
    conn.send_request(place.request.with_header("Authorization", f"Bearer {token.reveal()}"))
    rejected = http_response(
        200,
        "OK",
        {
            "orderId": 9057,
            "success": False,
            "errorCode": 2,
            "errorMessage": "Invalid order size specified.",
        },
    )
    response = conn.receive_data(rejected)
    assert response is not None
    try:
        place.parse_response(response)
    except OrderRejected as exc:
        print(f"rejected: {exc.code_name} ({exc.code}) {exc.message!r}, order id {exc.order_id}")


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    main()
