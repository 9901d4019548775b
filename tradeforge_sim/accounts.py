"""The simulator's accounts: practice accounts without rules, or the firm's account types.

An account type is named as a trader knows it (``50K``, ``100K``, ``150K`` for the Trading
Combine, ``EXPRESS-50K`` for the Express Funded account, ``PRACTICE-50K`` and ``PRACTICE-150K``
for practice accounts without rules); each account starts at its type's starting balance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from types import MappingProxyType
from typing import Final

import attrs

from tradeforge_proto.rules import (
    COMBINE_50K,
    COMBINE_100K,
    COMBINE_150K,
    EXPRESS_FUNDED_50K,
    AccountRules,
)

from .engine import SimAccount

FIRST_ACCOUNT_ID: Final = 20258288


@attrs.frozen
class AccountType:
    """What an account of one type starts with: a name prefix, a balance and its rules."""

    prefix: str
    balance: Decimal
    rules: AccountRules | None


ACCOUNT_TYPES: Final[Mapping[str, AccountType]] = MappingProxyType(
    {
        "50K": AccountType("50KTC-V2", COMBINE_50K.starting_balance, COMBINE_50K),
        "100K": AccountType("100KTC-V2", COMBINE_100K.starting_balance, COMBINE_100K),
        "150K": AccountType("150KTC-V2", COMBINE_150K.starting_balance, COMBINE_150K),
        "EXPRESS-50K": AccountType(
            "EXPRESS-V2-50K", EXPRESS_FUNDED_50K.starting_balance, EXPRESS_FUNDED_50K
        ),
        "PRACTICE-50K": AccountType("PRAC-V2-50K", Decimal("50000.00"), None),
        "PRACTICE-150K": AccountType("PRAC-V2-150K", Decimal("150000.00"), None),
    }
)
"""Every account type by the name the command line takes (case does not matter)."""


def account_type(name: str) -> AccountType:
    """The account type a name stands for; ``ValueError`` naming the choices otherwise."""
    found = ACCOUNT_TYPES.get(name.strip().upper())
    if found is None:
        raise ValueError(f"unknown account type {name!r}; choose from {', '.join(ACCOUNT_TYPES)}")
    return found


def accounts_of(names: Sequence[str], *, auto_oco_brackets: bool = False) -> tuple[SimAccount, ...]:
    """One account per type named, numbered in order from ``FIRST_ACCOUNT_ID``."""
    if not names:
        raise ValueError("at least one account type is needed")
    made = []
    for index, name in enumerate(names):
        kind = account_type(name)
        made.append(
            SimAccount(
                id=FIRST_ACCOUNT_ID + index,
                name=f"{kind.prefix}-SIM-{index + 1}",
                balance=kind.balance,
                auto_oco_brackets=auto_oco_brackets,
                rules=kind.rules,
            )
        )
    return tuple(made)


def default_accounts() -> tuple[SimAccount, ...]:
    """Two practice accounts without rules, as a funded trader would have."""
    return accounts_of(("PRACTICE-150K", "PRACTICE-50K"))
