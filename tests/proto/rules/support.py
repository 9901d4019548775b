"""Shared contracts, marks and helpers for the rules tests."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from tradeforge_proto.core.enums import OrderSide
from tradeforge_proto.rules import AccountRules, AccountState, ContractSpec, Fill

ES = "CON.F.US.EP.Z26"
MES = "CON.F.US.MES.Z26"
TEST = "TEST"
"""A contract worth one dollar a point, with a cent tick, counting as one mini."""
SPECS = {
    ES: ContractSpec(Decimal("0.25"), Decimal("12.5")),
    MES: ContractSpec(Decimal("0.25"), Decimal("1.25")),
    TEST: ContractSpec(Decimal("0.01"), Decimal("0.01")),
}
NOW = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)
"""A Wednesday morning in Chicago."""
BUY = OrderSide.BUY
SELL = OrderSide.SELL


def opened(rules: AccountRules) -> AccountState:
    return AccountState.open(rules, NOW)


def filled(state: AccountState, *fills: Fill) -> AccountState:
    for fill in fills:
        state, _ = state.apply_fill(fill, SPECS[fill.contract_id])
    return state


def long_test(rules: AccountRules, size: int = 1, price: str = "10000") -> AccountState:
    """An account holding ``size`` TEST contracts bought at ``price``."""
    return filled(opened(rules), Fill(TEST, BUY, size, Decimal(price)))
