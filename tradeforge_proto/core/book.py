"""A depth-of-market book for one contract, rebuilt from depth updates.

Each side keeps a price-to-volume dict and an ascending list of its prices maintained with
``bisect``, so the best price is O(1) and the top N levels cost O(N). Entries the book cannot use
(an unknown depth type, a non-finite price, a negative volume) are counted in ``ignored`` and never
touch the levels: a malformed entry must not corrupt the book or crash the reader.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Final

import attrs

from .enums import DepthType
from .errors import LocalProtocolError
from .models import ContractId, DepthUpdate

__all__ = ["BookSnapshot", "Level", "OrderBook"]

_BID_TYPES: Final = frozenset({DepthType.BID, DepthType.BEST_BID, DepthType.NEW_BEST_BID})
_ASK_TYPES: Final = frozenset({DepthType.ASK, DepthType.BEST_ASK, DepthType.NEW_BEST_ASK})
_PRINT_TYPES: Final = frozenset({DepthType.TRADE, DepthType.FILL})


@attrs.frozen
class Level:
    """One price level: the total resting volume at ``price``."""

    price: Decimal
    volume: int


@attrs.frozen
class BookSnapshot:
    """An immutable image of the top of a book: bids highest first, asks lowest first."""

    contract_id: ContractId
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    timestamp: datetime | None = None

    @property
    def best_bid(self) -> Level | None:
        """The highest bid level, or None when the bid side is empty."""
        return self.bids[0] if self.bids else None

    @property
    def best_ask(self) -> Level | None:
        """The lowest ask level, or None when the ask side is empty."""
        return self.asks[0] if self.asks else None


class _Side:
    """One side of the book: volumes by price plus the prices in ascending order."""

    __slots__ = ("prices", "volumes")

    def __init__(self) -> None:
        self.volumes: dict[Decimal, int] = {}
        self.prices: list[Decimal] = []

    def set(self, price: Decimal, volume: int) -> None:
        if volume == 0:
            if self.volumes.pop(price, None) is not None:
                del self.prices[bisect_left(self.prices, price)]
            return
        if price not in self.volumes:
            insort(self.prices, price)
        self.volumes[price] = volume

    def clear(self) -> None:
        self.volumes.clear()
        self.prices.clear()

    def level(self, index: int) -> Level | None:
        if not self.prices:
            return None
        price = self.prices[index]
        return Level(price, self.volumes[price])

    def levels(self, prices: Iterable[Decimal]) -> list[Level]:
        volumes = self.volumes
        return [Level(price, volumes[price]) for price in prices]


def _check_depth(depth: int | None) -> None:
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth < 0):
        raise LocalProtocolError(f"depth must be a whole number >= 0 or None, got {depth!r}")


def _usable_price(price: object) -> bool:
    return isinstance(price, Decimal) and price.is_finite()


def _usable_volume(volume: object) -> bool:
    return isinstance(volume, int) and not isinstance(volume, bool) and volume >= 0


class OrderBook:
    """The depth of market of one contract, kept current by applying depth updates in order."""

    def __init__(self, contract_id: ContractId) -> None:
        self._contract_id = contract_id
        self._bids = _Side()
        self._asks = _Side()
        self._updates_applied = 0
        self._ignored = 0
        self._last_update: datetime | None = None
        self.last_trade_price: Decimal | None = None
        self.last_trade_volume: int | None = None
        self.session_low: Decimal | None = None
        self.session_high: Decimal | None = None

    def __repr__(self) -> str:
        return (
            f"OrderBook({self._contract_id!r}, bid={self.best_bid}, ask={self.best_ask}, "
            f"levels={len(self._bids.prices)}/{len(self._asks.prices)})"
        )

    @property
    def contract_id(self) -> ContractId:
        """The contract this book follows."""
        return self._contract_id

    @property
    def updates_applied(self) -> int:
        """How many updates changed or recorded something (ignored entries are not counted)."""
        return self._updates_applied

    @property
    def ignored(self) -> int:
        """How many updates were skipped: unknown types, non-finite prices, negative volumes."""
        return self._ignored

    @property
    def last_update(self) -> datetime | None:
        """Timestamp of the most recently applied update that carried one."""
        return self._last_update

    # -- updating -------------------------------------------------------------------------------

    def apply(self, update: DepthUpdate) -> None:
        """Apply one depth entry; an update for another contract raises LocalProtocolError."""
        if update.contract_id != self._contract_id:
            raise LocalProtocolError(
                f"depth update for {update.contract_id!r} applied to the book of "
                f"{self._contract_id!r}"
            )
        kind = update.type
        if kind == DepthType.RESET:
            self._bids.clear()
            self._asks.clear()
        elif not _usable_price(update.price):
            self._ignored += 1
            return
        elif kind in _BID_TYPES or kind in _ASK_TYPES or kind in _PRINT_TYPES:
            if not _usable_volume(update.volume):
                self._ignored += 1
                return
            if kind in _BID_TYPES:
                self._bids.set(update.price, update.volume)
            elif kind in _ASK_TYPES:
                self._asks.set(update.price, update.volume)
            else:
                self.last_trade_price = update.price
                self.last_trade_volume = update.volume
        elif kind == DepthType.LOW:
            self.session_low = update.price
        elif kind == DepthType.HIGH:
            self.session_high = update.price
        else:
            self._ignored += 1
            return
        self._updates_applied += 1
        if update.timestamp is not None:
            self._last_update = update.timestamp

    def apply_all(self, updates: Iterable[DepthUpdate]) -> None:
        """Apply a batch of entries (one GatewayDepth message) in order."""
        for update in updates:
            self.apply(update)

    def clear(self) -> None:
        """Drop every level, for instance when the feed was interrupted and will resend a book."""
        self._bids.clear()
        self._asks.clear()

    # -- queries --------------------------------------------------------------------------------

    @property
    def best_bid(self) -> Level | None:
        """The highest bid level, or None when there are no bids."""
        return self._bids.level(-1)

    @property
    def best_ask(self) -> Level | None:
        """The lowest ask level, or None when there are no asks."""
        return self._asks.level(0)

    @property
    def spread(self) -> Decimal | None:
        """Best ask minus best bid, or None unless both sides have a level."""
        bids, asks = self._bids.prices, self._asks.prices
        if not bids or not asks:
            return None
        return asks[0] - bids[-1]

    @property
    def mid(self) -> Decimal | None:
        """The midpoint of the best bid and best ask, or None unless both sides have a level."""
        bids, asks = self._bids.prices, self._asks.prices
        if not bids or not asks:
            return None
        return (asks[0] + bids[-1]) / 2

    @property
    def is_crossed(self) -> bool:
        """True when the best bid is at or above the best ask (a transient state of the feed)."""
        bids, asks = self._bids.prices, self._asks.prices
        return bool(bids and asks and bids[-1] >= asks[0])

    def bids(self, depth: int | None = None) -> list[Level]:
        """Bid levels, highest price first; at most ``depth`` of them when given."""
        _check_depth(depth)
        prices = self._bids.prices
        stop = None if depth is None or depth >= len(prices) else len(prices) - depth - 1
        return self._bids.levels(prices[-1:stop:-1])

    def asks(self, depth: int | None = None) -> list[Level]:
        """Ask levels, lowest price first; at most ``depth`` of them when given."""
        _check_depth(depth)
        return self._asks.levels(self._asks.prices[:depth])

    def volume_at(self, price: Decimal) -> int:
        """Resting volume at ``price`` on either side (summed in the rare crossed case), else 0."""
        return self._bids.volumes.get(price, 0) + self._asks.volumes.get(price, 0)

    def snapshot(self, depth: int = 10) -> BookSnapshot:
        """An immutable copy of the top ``depth`` levels of each side."""
        return BookSnapshot(
            contract_id=self._contract_id,
            bids=tuple(self.bids(depth)),
            asks=tuple(self.asks(depth)),
            timestamp=self._last_update,
        )
