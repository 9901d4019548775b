"""Pure helpers for order safety: unique customTags, and finding an order of unknown outcome."""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Final

from .core.errors import OrderUncertain
from .core.models import Order

TAG_PREFIX: Final = "tf"
RECONCILE_SLACK: Final = timedelta(minutes=2)


def new_custom_tag(rng: random.Random, now: float) -> str:
    """A customTag unique in practice: milliseconds since the epoch plus 48 random bits."""
    return f"{TAG_PREFIX}-{int(now * 1000):x}-{rng.getrandbits(48):012x}"


def reconcile_window(uncertain: OrderUncertain, now: float) -> tuple[datetime, datetime]:
    """The creation-time window in which the uncertain order must lie."""
    end = datetime.fromtimestamp(now, UTC) + RECONCILE_SLACK
    sent = uncertain.sent_at or datetime.fromtimestamp(now, UTC) - timedelta(hours=1)
    return sent - RECONCILE_SLACK, end


def find_by_tag(orders: Iterable[Order], custom_tag: str | None) -> Order | None:
    """The order carrying ``custom_tag`` (None when absent or no tag was given)."""
    if not custom_tag:
        return None
    return next((order for order in orders if order.custom_tag == custom_tag), None)
