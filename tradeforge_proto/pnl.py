"""Profit and loss a trader asks about: a position's open P&L at a price, the day's realized P&L.

Pure arithmetic on the core's models, exact in Decimals: a position's P&L is the price move in
ticks times the tick value times the size; a day's realized P&L is its fills' profits less their
fees and commissions.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal, localcontext

from .core.enums import PositionSide
from .core.models import Contract, Fill, Position
from .rules.account import EXACT


def unrealized_pnl(position: Position, price: Decimal, contract: Contract) -> Decimal:
    """Dollars the position makes or loses if it closed at ``price`` (fees apart)."""
    if position.contract_id != contract.id:
        raise ValueError(f"position is on {position.contract_id}, not on {contract.id}")
    with localcontext(EXACT):
        move = price - position.average_price
        if position.side is PositionSide.SHORT:
            move = -move
        return move / contract.tick_size * contract.tick_value * position.size


def realized_pnl(fills: Iterable[Fill]) -> Decimal:
    """The fills' profits less their fees and commissions (voided fills left out)."""
    with localcontext(EXACT):
        total = Decimal(0)
        for fill in fills:
            if fill.voided:
                continue
            total += (fill.profit_and_loss or 0) - fill.fees - (fill.commissions or 0)
        return total
