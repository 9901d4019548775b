"""A bounded FIFO of stream events between the stream machine and a slow consumer.

Quotes and depth of one contract coalesce while they wait; every other event is kept, in order.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from decimal import Decimal
from typing import Final

from ..core.enums import DepthType
from ..core.errors import ConfigurationError, LocalProtocolError, TradeForgeError
from ..core.events import DepthReceived, QuoteUpdated, StreamEvent
from ..core.models import ContractId, DepthUpdate

__all__ = ["EventQueue", "QueueOverflow", "merge_depth"]

# The book state each depth type overwrites: a side's level, a session extreme or everything.
_BID, _ASK, _EXTREME, _RESET = "bid", "ask", "extreme", "reset"
_STATE_OF: Final[dict[DepthType, str]] = {
    DepthType.BID: _BID,
    DepthType.BEST_BID: _BID,
    DepthType.NEW_BEST_BID: _BID,
    DepthType.ASK: _ASK,
    DepthType.BEST_ASK: _ASK,
    DepthType.NEW_BEST_ASK: _ASK,
    DepthType.LOW: _EXTREME,
    DepthType.HIGH: _EXTREME,
    DepthType.RESET: _RESET,
}
_RESET_KEY: Final = ("reset",)
_LEVELS: Final = frozenset({_BID, _ASK})


class QueueOverflow(TradeForgeError):
    """The queue is full and ``event`` has no waiting event to merge into; it was not queued."""

    def __init__(
        self,
        event: StreamEvent,
        *,
        length: int,
        max_events: int,
        delivered: int,
        coalesced_quotes: int,
        coalesced_depth: int,
    ) -> None:
        self.event = event
        self.length = length
        self.max_events = max_events
        self.delivered = delivered
        self.coalesced_quotes = coalesced_quotes
        self.coalesced_depth = coalesced_depth
        super().__init__(
            f"event queue full ({length}/{max_events} waiting, {delivered} delivered, "
            f"{coalesced_quotes} quotes and {coalesced_depth} depth batches coalesced): "
            f"{type(event).__name__} not queued"
        )


# -- depth merging ----------------------------------------------------------------------------
#
# A merge keeps the entries in an insertion-ordered dict. An entry that overwrites book state
# (a level, a session extreme, a reset) is stored under a key naming that state, so a later entry
# for the same state replaces it and moves to the end: one entry per (side, price), the latest
# volume, placed where the state last changed. A reset also removes every level entry before it.
# Everything else (prints, unknown types, foreign contracts, entries a book would ignore) gets a
# unique key and is kept, in order.


class _DepthMerge:
    """Depth batches of one contract folded into one net batch; the first is kept until a merge."""

    __slots__ = ("_contract_id", "_entries", "_first", "_serial")

    def __init__(self, first: DepthReceived) -> None:
        self._contract_id = first.contract_id
        self._first: DepthReceived | None = first
        self._entries: dict[object, DepthUpdate] = {}
        self._serial = 0

    def add(self, updates: Iterable[DepthUpdate]) -> None:
        """Fold further entries of the same contract in, after everything already held."""
        if self._first is not None:
            first, self._first = self._first, None
            self._add(first.updates)
        self._add(updates)

    def _add(self, updates: Iterable[DepthUpdate]) -> None:
        entries, contract_id, state_of = self._entries, self._contract_id, _STATE_OF
        serial = self._serial
        for update in updates:
            # The key of the book state the entry overwrites; None: kept as it is.
            key: object = None
            state = state_of.get(update.type)
            if state is not None and update.contract_id == contract_id:
                price = update.price
                if state is _RESET:
                    for level in [k for k in entries if type(k) is tuple and k[0] in _LEVELS]:
                        del entries[level]
                    key = _RESET_KEY
                elif isinstance(price, Decimal) and price.is_finite():
                    if state is _EXTREME:
                        key = (state, update.type)
                    else:
                        volume = update.volume
                        if isinstance(volume, int) and not isinstance(volume, bool) and volume >= 0:
                            key = (state, price)
            if key is None:
                serial += 1
                entries[serial] = update
            else:
                entries.pop(key, None)
                entries[key] = update
        self._serial = serial

    def build(self) -> DepthReceived:
        """The net batch: the first batch itself when nothing was merged into it."""
        if self._first is not None:
            return self._first
        return DepthReceived(self._contract_id, tuple(self._entries.values()))


def merge_depth(first: DepthReceived, second: DepthReceived) -> DepthReceived:
    """One batch equivalent, applied to any book, to applying ``first`` then ``second``."""
    if first.contract_id != second.contract_id:
        raise LocalProtocolError(
            f"cannot merge depth of {second.contract_id!r} into depth of {first.contract_id!r}"
        )
    merge = _DepthMerge(first)
    merge.add(second.updates)
    return merge.build()


# -- the queue --------------------------------------------------------------------------------


class _Slot:
    """One waiting event; a depth slot holds the merge it grows into instead."""

    __slots__ = ("depth", "event")

    def __init__(self, event: StreamEvent, depth: _DepthMerge | None = None) -> None:
        self.event = event
        self.depth = depth

    def take(self) -> StreamEvent:
        return self.event if self.depth is None else self.depth.build()


class EventQueue:
    """A bounded FIFO that coalesces quotes and depth per contract and never drops other events.

    A merged quote or depth batch keeps the queue position of the one it merged into.
    """

    def __init__(self, *, max_events: int = 10_000) -> None:
        if isinstance(max_events, bool) or not isinstance(max_events, int) or max_events < 1:
            raise ConfigurationError(f"max_events must be a positive integer, got {max_events!r}")
        self._max_events = max_events
        self._slots: deque[_Slot] = deque()
        # The waiting quote / depth slot of each contract: at most one of each per contract.
        self._quotes: dict[ContractId, _Slot] = {}
        self._depth: dict[ContractId, _DepthMerge] = {}
        self._coalesced_quotes = 0
        self._coalesced_depth = 0
        self._delivered = 0
        self._high_water = 0

    def __repr__(self) -> str:
        return (
            f"EventQueue({len(self._slots)}/{self._max_events}, delivered={self._delivered}, "
            f"coalesced_quotes={self._coalesced_quotes}, coalesced_depth={self._coalesced_depth})"
        )

    def __len__(self) -> int:
        return len(self._slots)

    # -- counters -------------------------------------------------------------------------------

    @property
    def max_events(self) -> int:
        """How many events may wait at once."""
        return self._max_events

    @property
    def space(self) -> int:
        """How many more events can be appended before ``put`` refuses unmergeable ones."""
        return self._max_events - len(self._slots)

    @property
    def coalesced_quotes(self) -> int:
        """How many quotes replaced a waiting quote of the same contract."""
        return self._coalesced_quotes

    @property
    def coalesced_depth(self) -> int:
        """How many depth batches were merged into a waiting batch of the same contract."""
        return self._coalesced_depth

    @property
    def delivered(self) -> int:
        """How many events ``get`` and ``drain`` have handed out."""
        return self._delivered

    @property
    def high_water(self) -> int:
        """The most events that ever waited at once."""
        return self._high_water

    # -- putting --------------------------------------------------------------------------------

    def _can_merge(self, event: StreamEvent) -> bool:
        if isinstance(event, QuoteUpdated):
            return event.quote.contract_id in self._quotes
        if isinstance(event, DepthReceived):
            return event.contract_id in self._depth
        return False

    def would_overflow(self, event: StreamEvent) -> bool:
        """True when ``put(event)`` would raise QueueOverflow (full, and nothing to merge into)."""
        return len(self._slots) >= self._max_events and not self._can_merge(event)

    @property
    def full(self) -> bool:
        """True once ``max_events`` events wait: a producer that must not drop stops here."""
        return len(self._slots) >= self._max_events

    def put(self, event: StreamEvent) -> bool:
        """Queue ``event``; False when it was coalesced into a waiting event of its contract.

        Raises QueueOverflow, leaving the queue unchanged, when full and nothing can absorb it.
        """
        return self._add(event, bounded=True)

    def admit(self, event: StreamEvent) -> bool:
        """Queue ``event`` even past ``max_events`` (coalescing as ``put`` does); never refuses.

        For a producer that stops producing once ``full`` instead of dropping: the overshoot is
        what it had in hand when the queue filled up.
        """
        return self._add(event, bounded=False)

    def _add(self, event: StreamEvent, *, bounded: bool) -> bool:
        if isinstance(event, QuoteUpdated):
            waiting = self._quotes.get(event.quote.contract_id)
            if waiting is not None:
                waiting.event = event
                self._coalesced_quotes += 1
                return False
        elif isinstance(event, DepthReceived):
            merge = self._depth.get(event.contract_id)
            if merge is not None:
                merge.add(event.updates)
                self._coalesced_depth += 1
                return False
        if bounded and len(self._slots) >= self._max_events:
            raise QueueOverflow(
                event,
                length=len(self._slots),
                max_events=self._max_events,
                delivered=self._delivered,
                coalesced_quotes=self._coalesced_quotes,
                coalesced_depth=self._coalesced_depth,
            )
        if isinstance(event, QuoteUpdated):
            slot = self._quotes[event.quote.contract_id] = _Slot(event)
        elif isinstance(event, DepthReceived):
            merge = self._depth[event.contract_id] = _DepthMerge(event)
            slot = _Slot(event, merge)
        else:
            slot = _Slot(event)
        self._slots.append(slot)
        self._high_water = max(self._high_water, len(self._slots))
        return True

    # -- getting --------------------------------------------------------------------------------

    def _pop(self) -> StreamEvent:
        event = self._slots.popleft().take()
        if isinstance(event, QuoteUpdated):
            del self._quotes[event.quote.contract_id]
        elif isinstance(event, DepthReceived):
            del self._depth[event.contract_id]
        self._delivered += 1
        return event

    def get(self) -> StreamEvent | None:
        """The oldest waiting event (merged as far as it got), or None when the queue is empty."""
        return self._pop() if self._slots else None

    def drain(self, max_items: int | None = None) -> list[StreamEvent]:
        """The oldest waiting events, at most ``max_items`` of them when given, oldest first."""
        if max_items is None:
            max_items = len(self._slots)
        elif isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 0:
            raise LocalProtocolError(f"max_items must be an int >= 0 or None, got {max_items!r}")
        return [self._pop() for _ in range(min(max_items, len(self._slots)))]

    def clear(self) -> int:
        """Discard every waiting event (counters are kept); returns how many were discarded."""
        count = len(self._slots)
        self._slots.clear()
        self._quotes.clear()
        self._depth.clear()
        return count
