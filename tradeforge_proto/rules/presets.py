"""Topstep's account types as presets.

Source: Topstep's published Trading Combine rules, as restated in projectx-gateway.md section 9
(reviewed December 2026): trailing maximum loss / daily loss limit / contracts (minis, micros as a
tenth) of $2,000 / $1,000 / 5 for 50K, $3,000 / $2,000 / 10 for 100K and $4,500 / $3,000 / 15 for
150K; the maximum loss trails the end-of-day balance high; the daily limit resets at 17:00 Chicago.

Assumptions, not in that source (verify against the current rulebook before relying on them):
the profit targets ($3,000 / $6,000 / $9,000), the 50% consistency share, the floor locking at the
starting balance, and every Express Funded figure (taken here as the 50K Combine's loss and size
limits, without a target or a consistency rule; the firm's scaling plan is not modelled).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Final

from .config import AccountRules

_CONSISTENCY: Final = Decimal("0.5")

COMBINE_50K: Final = AccountRules(
    name="50K Combine",
    starting_balance=Decimal(50_000),
    max_loss=Decimal(2_000),
    daily_loss_limit=Decimal(1_000),
    max_contracts=Decimal(5),
    profit_target=Decimal(3_000),
    consistency_share=_CONSISTENCY,
)
"""Trading Combine 50K: $2,000 trailing max loss, $1,000 daily loss, 5 contracts."""

COMBINE_100K: Final = AccountRules(
    name="100K Combine",
    starting_balance=Decimal(100_000),
    max_loss=Decimal(3_000),
    daily_loss_limit=Decimal(2_000),
    max_contracts=Decimal(10),
    profit_target=Decimal(6_000),
    consistency_share=_CONSISTENCY,
)
"""Trading Combine 100K: $3,000 trailing max loss, $2,000 daily loss, 10 contracts."""

COMBINE_150K: Final = AccountRules(
    name="150K Combine",
    starting_balance=Decimal(150_000),
    max_loss=Decimal(4_500),
    daily_loss_limit=Decimal(3_000),
    max_contracts=Decimal(15),
    profit_target=Decimal(9_000),
    consistency_share=_CONSISTENCY,
)
"""Trading Combine 150K: $4,500 trailing max loss, $3,000 daily loss, 15 contracts."""

EXPRESS_FUNDED_50K: Final = AccountRules(
    name="50K Express Funded",
    starting_balance=Decimal(50_000),
    max_loss=Decimal(2_000),
    daily_loss_limit=Decimal(1_000),
    max_contracts=Decimal(5),
)
"""Express Funded 50K (assumed figures): the 50K Combine's limits, no target, no consistency."""

PRESETS: Final[Mapping[str, AccountRules]] = MappingProxyType(
    {
        "combine-50k": COMBINE_50K,
        "combine-100k": COMBINE_100K,
        "combine-150k": COMBINE_150K,
        "express-funded-50k": EXPRESS_FUNDED_50K,
    }
)
"""Every preset by a short key."""
