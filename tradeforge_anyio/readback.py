"""Reading a just-changed order back, for answers that show the order and not only its id."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final

import anyio

from tradeforge_proto.core.errors import TradeForgeError
from tradeforge_proto.core.models import AccountId, Order, OrderId

if TYPE_CHECKING:
    from .client import TradingClient

__all__ = ["READ_BACK_TIMEOUT", "read_back"]

READ_BACK_TIMEOUT: Final = 2.0
"""Seconds a read back may take before the answer goes out without the order."""
log = logging.getLogger("tradeforge.readback")


async def read_back(
    client: TradingClient, account_id: AccountId, order_id: OrderId
) -> Order | None:
    """The order as the gateway now reports it; None when that read fails or takes longer than
    READ_BACK_TIMEOUT. It only reads: the change stands either way."""
    with anyio.move_on_after(READ_BACK_TIMEOUT):
        try:
            return await client.get_order(account_id, order_id)
        except TradeForgeError as exc:
            log.info("order %d changed; reading it back failed: %s", order_id, exc)
    return None
