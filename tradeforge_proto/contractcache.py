"""Active contracts by product symbol, remembered for a while on the caller's clock.

Resolving "MES" to its current contract takes the whole catalogue; a client asks often and the
answer changes only at a roll, so it is kept for ``ttl`` seconds. The clock is passed in.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Final

from .core import bounds
from .core.models import Contract

TTL: Final = 3600.0
"""Seconds a resolved contract is kept."""
CAPACITY: Final = 256
"""Symbols kept at once; the least recently used go first."""
MAX_SYMBOL: Final = 32


def symbol_key(symbol: str) -> str:
    """A product symbol as the cache and the provider compare it: trimmed, upper case."""
    return bounds.text(
        symbol.strip() if isinstance(symbol, str) else symbol, "symbol", MAX_SYMBOL
    ).upper()


class ContractCache:
    """Resolved contracts by (symbol, live), each for ``ttl`` seconds, at most ``capacity``."""

    def __init__(self, ttl: float = TTL, capacity: int = CAPACITY) -> None:
        if not ttl >= 0 or capacity < 1:
            raise ValueError(f"need ttl >= 0 and capacity >= 1, got {ttl} and {capacity}")
        self._ttl = ttl
        self._capacity = capacity
        self._entries: OrderedDict[tuple[str, bool], tuple[Contract, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, symbol: str, live: bool, now: float) -> Contract | None:
        """The contract resolved for ``symbol`` less than ``ttl`` seconds before ``now``."""
        key = (symbol_key(symbol), live)
        entry = self._entries.get(key)
        if entry is None:
            return None
        contract, stored = entry
        if not 0 <= now - stored < self._ttl:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return contract

    def put(self, symbol: str, live: bool, contract: Contract, now: float) -> None:
        """Remember ``contract`` as what ``symbol`` resolves to, from ``now``."""
        key = (symbol_key(symbol), live)
        self._entries[key] = (contract, now)
        self._entries.move_to_end(key)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)
