"""Pure helpers for order safety: unique customTags, finding the order carrying one, and what a
flatten did."""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Final

import attrs

from .core.errors import TradeForgeError
from .core.models import ContractId, Order, OrderId

TAG_PREFIX: Final = "tf"


def new_custom_tag(rng: random.Random, now: float) -> str:
    """A customTag unique in practice: milliseconds since the epoch plus 48 random bits."""
    return f"{TAG_PREFIX}-{int(now * 1000):x}-{rng.getrandbits(48):012x}"


def find_by_tag(orders: Iterable[Order], custom_tag: str | None) -> Order | None:
    """The order carrying ``custom_tag`` (None when absent or no tag was given)."""
    if not custom_tag:
        return None
    return next((order for order in orders if order.custom_tag == custom_tag), None)


@attrs.frozen
class Flattened:
    """What a flatten did: orders cancelled, positions closed, and each change that failed."""

    cancelled: tuple[OrderId, ...]
    closed: tuple[ContractId, ...]
    failed: tuple[tuple[str, TradeForgeError], ...] = ()

    @property
    def complete(self) -> bool:
        """True when every cancel and close went through."""
        return not self.failed
