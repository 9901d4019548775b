"""A synthetic market: price paths, quotes, trade prints, depth and bar history, all seeded.

Everything is a pure function of the seed, the contract and the time handed in (UNIX seconds);
nothing here reads a clock. The price path of a contract is, in ticks::

    x(t) = L(t) + S(t)        price(t) = tick * max(1, round(x(t)))

``L`` is linear between knots every 15 seconds, whose values are the base price times one plus
five seeded sinusoids (periods from minutes to months, a few percent in all) plus a seeded
knot-to-knot wobble of a few ticks. ``S`` is linear between per-second seeded noise values of a
few ticks. Noise comes from keyed BLAKE2b blocks indexed by time, so any moment costs a few
hashes and never a replay. The book straddles the path: best bid ``floor(x)``, best ask one tick
above, so the price is always at the touch.

Wire payloads follow the market hub's shapes with ``Decimal`` prices (the project's JSON codec
writes them as numbers). In depth entries ``currentVolume`` is the size by which the level just
changed (its whole size in a snapshot), a reading of a field the gateway leaves unexplained.

Depth uses these DOM types: a subscriber's snapshot is Reset then Bid and Ask levels. Updates send
levels behind the touch as Bid/Ask (volume 0 removes), the top of a side as NewBestBid/NewBestAsk
when its price moved and BestBid/BestAsk when only its size did, and one Trade per print at the
print's price and size, followed by Low/High when the print set a session extreme (their volume is
the session volume) and by the touch level shrunk by what traded. Low/High are also sent when the
session rolls over. Fill is not sent: the feed does not see the paper exchange's executions, and
the gateway does not say what a Fill entry reports.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final, TypeAlias

import attrs

from tradeforge_proto.core.enums import BarUnit, DepthType, TradeSide
from tradeforge_proto.core.models import Bar, Contract

__all__ = [
    "CATCH_UP_SECONDS",
    "MAX_BARS",
    "TAPE_RATE",
    "DepthChange",
    "Levels",
    "MarketUpdate",
    "QuoteChange",
    "SyntheticMarket",
    "Touch",
    "TradePrints",
    "iso_timestamp",
]

CATCH_UP_SECONDS: Final = 2.0
"""After a pause, ``advance`` replays at most this many seconds of updates."""
MAX_BARS: Final = 20_000
"""Most bars one history request returns, as on the gateway."""
TAPE_RATE: Final = 4
"""Trades per second on the synthetic tape behind tick bars, one every quarter second."""

_KNOT: Final = 15  # seconds between knots of the slow part L
_KNOT_FRACTIONS: Final = tuple(j / _KNOT for j in range(_KNOT))
_BLOCK: Final = 64  # noise values per BLAKE2b digest
_CACHE_LIMIT: Final = 4096
_MASK: Final = (1 << 64) - 1
_GOLDEN: Final = 0x9E3779B97F4A7C15
_UNIT: Final = 2.0**-53
_DAY: Final = 86_400
_WEEK_ORIGIN: Final = -3 * _DAY  # Monday 1969-12-29 00:00 UTC
# (shortest period, longest period, relative amplitude) of the five sinusoids of L.
_WAVES: Final = (
    (60 * _DAY, 120 * _DAY, 0.040),
    (5 * _DAY, 9 * _DAY, 0.015),
    (4 * 3600, 9 * 3600, 0.005),
    (40 * 60, 100 * 60, 0.0015),
    (120, 420, 0.0004),
)
_SECOND_NOISE: Final = 2.5  # ticks, capped at 1.5e-4 of the price
_KNOT_NOISE: Final = 4.0  # ticks, capped at 2.5e-4 of the price
_HOLD: Final = 2.0  # seconds a resting level keeps its size
_MAX_LEVEL_SIZE: Final = 40
_TRADE_SHARE: Final = 0.25  # of update slots that do not move the touch
_DEPTH_SHARE: Final = 0.45
_VOLUME_RATE: Final = 2.0  # contracts per second outside the US day session
_UNIT_SECONDS: Final = {
    BarUnit.SECOND: 1,
    BarUnit.MINUTE: 60,
    BarUnit.HOUR: 3600,
    BarUnit.DAY: _DAY,
    BarUnit.WEEK: 7 * _DAY,
}
# Optional quote fields after bestBid/bestAsk, in the documented order (lastPrice comes before).
_QUOTE_STATS: Final = (
    "change",
    "changePercent",
    "open",
    "high",
    "low",
    "volume",
)
_CENT: Final = Decimal("0.01")
_BEST: Final = {DepthType.BID: DepthType.BEST_BID, DepthType.ASK: DepthType.BEST_ASK}
_NEW_BEST: Final = {DepthType.BID: DepthType.NEW_BEST_BID, DepthType.ASK: DepthType.NEW_BEST_ASK}


@attrs.frozen
class QuoteChange:
    """A partial ``GatewayQuote`` payload: the mandatory fields plus those that changed."""

    contract_id: str
    data: dict[str, Any]


@attrs.frozen
class TradePrints:
    """A ``GatewayTrade`` payload: prints at the current price."""

    contract_id: str
    prints: list[dict[str, Any]]


@attrs.frozen
class DepthChange:
    """A ``GatewayDepth`` payload: level updates (total volume, 0 removes), removals first."""

    contract_id: str
    entries: list[dict[str, Any]]


MarketUpdate: TypeAlias = QuoteChange | TradePrints | DepthChange
Levels: TypeAlias = list[tuple[Decimal, int]]


@attrs.frozen
class Touch:
    """The best bid and ask with their sizes, and the last traded price."""

    bid: Decimal
    bid_size: int
    ask: Decimal
    ask_size: int
    last: Decimal


_PREFIXES: dict[int, str] = {}
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def iso_timestamp(t: float) -> str:
    """UNIX seconds as the gateway writes them: ``2025-11-24T14:30:00.1234567+00:00``."""
    seconds = math.floor(t)
    fraction = round((t - seconds) * 10_000_000)
    if fraction == 10_000_000:
        seconds, fraction = seconds + 1, 0
    prefix = _PREFIXES.get(seconds)
    if prefix is None:
        if len(_PREFIXES) >= _CACHE_LIMIT:
            _PREFIXES.clear()
        prefix = f"{_EPOCH + timedelta(seconds=seconds):%Y-%m-%dT%H:%M:%S}"
        _PREFIXES[seconds] = prefix
    return f"{prefix}.{fraction:07d}+00:00"


def _mix(value: int) -> int:
    """A 64-bit finaliser (splitmix64): counter in, well-spread bits out."""
    value = (value + _GOLDEN) & _MASK
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK
    return value ^ (value >> 31)


def _unit(value: int) -> float:
    """A hash as a float in [0, 1)."""
    return (value >> 11) * _UNIT


def _key(seed: int, contract_id: str, purpose: str) -> bytes:
    return hashlib.blake2b(
        f"{seed}\x1f{contract_id}\x1f{purpose}".encode(), digest_size=32
    ).digest()


def _key64(seed: int, contract_id: str, purpose: str) -> int:
    return int.from_bytes(_key(seed, contract_id, purpose)[:8], "big")


def _ticks(x: float) -> int:
    """The tick count of an unrounded path value: nearest, never below one tick."""
    n = round(x)
    return n if n > 1 else 1


class _Path:
    """The price path of one contract in (unrounded) ticks, with small memo caches."""

    __slots__ = (
        "_base",
        "_knot_cache",
        "_noise_key",
        "_noise_table",
        "_second_blocks",
        "_waves",
        "_wobble_key",
        "_wobble_table",
    )

    def __init__(self, seed: int, contract_id: str, base_ticks: float) -> None:
        rng = random.Random(int.from_bytes(_key(seed, contract_id, "waves"), "big"))
        waves: list[float] = []
        for shortest, longest, amplitude in _WAVES:
            period = rng.uniform(shortest, longest)
            waves += (
                2 * math.pi / period,
                rng.uniform(0.0, 2 * math.pi),
                amplitude * rng.uniform(0.6, 1.2),
            )
        self._waves = tuple(waves)
        self._base = base_ticks
        second = min(_SECOND_NOISE, base_ticks * 1.5e-4)
        wobble = min(_KNOT_NOISE, base_ticks * 2.5e-4)
        self._noise_table = tuple(second * (b - 127.5) / 127.5 for b in range(256))
        self._wobble_table = tuple(wobble * (b - 127.5) / 127.5 for b in range(256))
        self._noise_key = _key(seed, contract_id, "second-noise")
        self._wobble_key = _key64(seed, contract_id, "knot-noise")
        self._second_blocks: dict[int, bytes] = {}
        self._knot_cache: dict[int, float] = {}

    @staticmethod
    def _digest(cache: dict[int, bytes], key: bytes, index: int) -> bytes:
        block = cache.get(index)
        if block is None:
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            block = hashlib.blake2b(
                index.to_bytes(8, "big", signed=True), digest_size=_BLOCK, key=key
            ).digest()
            cache[index] = block
        return block

    def knots(self, indices: range) -> list[float]:
        """L at the given knots (knot k sits at 15k seconds)."""
        w0, p0, a0, w1, p1, a1, w2, p2, a2, w3, p3, a3, w4, p4, a4 = self._waves
        base, table, key, sin = self._base, self._wobble_table, self._wobble_key, math.sin
        out = []
        for k in indices:
            t = k * 15.0
            rel = (
                a0 * sin(w0 * t + p0)
                + a1 * sin(w1 * t + p1)
                + a2 * sin(w2 * t + p2)
                + a3 * sin(w3 * t + p3)
                + a4 * sin(w4 * t + p4)
            )
            # The wobble of knot k: _mix inlined, as this loop runs for every 15 s of history.
            z = (key + k * _GOLDEN + _GOLDEN) & _MASK
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
            out.append(base * (1.0 + rel) + table[(z ^ (z >> 31)) >> 56])
        return out

    def _knot(self, k: int) -> float:
        value = self._knot_cache.get(k)
        if value is None:
            if len(self._knot_cache) >= _CACHE_LIMIT:
                self._knot_cache.clear()
            value = self._knot_cache[k] = self.knots(range(k, k + 1))[0]
        return value

    def _noise(self, n: int) -> float:
        block = self._digest(self._second_blocks, self._noise_key, n >> 6)
        return self._noise_table[block[n & 63]]

    def x(self, t: float) -> float:
        """The unrounded path at ``t``; equals ``dense`` bit for bit at whole seconds."""
        n = math.floor(t)
        k = n // _KNOT
        f = (t - k * _KNOT) / _KNOT
        low = self._knot(k)
        slow = low if f == 0.0 else low + (self._knot(k + 1) - low) * f
        g = t - n
        s0 = self._noise(n)
        return slow + (s0 if g == 0.0 else s0 + (self._noise(n + 1) - s0) * g)

    def at_seconds(self, seconds: range) -> list[float]:
        """The unrounded path at whole seconds (any spacing); equals ``x`` bit for bit."""
        knot, digest, cache, key = self._knot, self._digest, self._second_blocks, self._noise_key
        table, fractions = self._noise_table, _KNOT_FRACTIONS
        if seconds.start % _KNOT == 0 and seconds.step % _KNOT == 0:
            # Every sample sits on a knot: L needs no interpolation and no cache.
            lows = self.knots(
                range(seconds.start // _KNOT, -(-seconds.stop // _KNOT), seconds.step // _KNOT)
            )
            return [
                low + table[digest(cache, key, n >> 6)[n & 63]]
                for low, n in zip(lows, seconds, strict=True)
            ]
        out = []
        for n in seconds:
            k, j = divmod(n, _KNOT)
            low = knot(k)
            slow = low if j == 0 else low + (knot(k + 1) - low) * fractions[j]
            out.append(slow + table[digest(cache, key, n >> 6)[n & 63]])
        return out

    def dense(self, first: int, last: int) -> list[float]:
        """The unrounded path at every whole second ``first..last``, computed in bulk."""
        k0, k1 = first // _KNOT, last // _KNOT
        knots = self.knots(range(k0, k1 + 2))
        # Second noise from the start of knot k0 onwards, so each knot's 15 values line up.
        b0, b1 = (k0 * _KNOT) >> 6, (k1 * _KNOT + _KNOT - 1) >> 6
        lookup = self._noise_table.__getitem__
        noise: list[float] = []
        for block in range(b0, b1 + 1):
            noise += map(lookup, self._digest(self._second_blocks, self._noise_key, block))
        at = k0 * _KNOT - b0 * _BLOCK
        fractions = _KNOT_FRACTIONS
        xs: list[float] = []
        for i in range(k1 - k0 + 1):
            low = knots[i]
            step = knots[i + 1] - low
            chunk = noise[at : at + _KNOT]
            xs += [low + step * f + s for f, s in zip(fractions, chunk, strict=False)]
            at += _KNOT
        offset = first - k0 * _KNOT
        return xs[offset : offset + last - first + 1]


@attrs.define
class _Feed:
    """Fixed per-contract parameters."""

    contract: Contract
    tick: Decimal
    symbol: str
    path: _Path
    phase: float  # slot offset, in slots
    event_key: int
    book_key: int
    volume_key: int

    def price(self, ticks: int) -> Decimal:
        return self.tick * ticks


@attrs.define
class _State:
    """Mutable per-contract market state (all prices in ticks)."""

    next_slot: int
    bid: int
    ask: int
    bids: dict[int, int]
    asks: dict[int, int]
    last: int
    session_day: int
    open: int
    high: int
    low: int
    volume: int
    updated: float
    published: dict[str, Any] = attrs.field(factory=dict)


def _entry(
    stamp: str, kind: DepthType, price: Decimal, volume: int, current: int
) -> dict[str, Any]:
    """One wire depth entry."""
    return {
        "timestamp": stamp,
        "type": int(kind),
        "price": price,
        "volume": volume,
        "currentVolume": current,
    }


@attrs.frozen
class _Window:
    """What a history request wants: bars starting in [first, top], at most ``limit``."""

    first: float
    top: float
    limit: int
    partial: bool
    now: float


def _symbol_of(contract: Contract) -> str:
    if contract.symbol_id:
        return contract.symbol_id
    parts = contract.id.split(".")
    if len(parts) >= 3 and parts[0] == "CON":
        return ".".join(parts[1:-1])
    return contract.id


def _utc_seconds(value: datetime, name: str) -> float:
    if value.tzinfo is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")
    return value.timestamp()


def _finite(value: float, name: str) -> float:
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number of seconds, got {value!r}")
    return value


_FINER_THAN_HOURS: Final = frozenset({BarUnit.SECOND, BarUnit.MINUTE, BarUnit.TICK})


class UnitUnavailable(ValueError):
    """A bar unit the market does not keep for this contract (finer than hours once expired)."""


def _feed(seed: int, contract: Contract, base: Decimal) -> _Feed:
    """A contract's price feed: its path and the keys of its events, book and volumes."""
    cid = contract.id
    return _Feed(
        contract=contract,
        tick=contract.tick_size,
        symbol=_symbol_of(contract),
        path=_Path(seed, cid, float(base / contract.tick_size)),
        phase=random.Random(_key64(seed, cid, "slots")).random(),
        event_key=_key64(seed, cid, "events"),
        book_key=_key64(seed, cid, "book"),
        volume_key=_key64(seed, cid, "volume"),
    )


def _month_start(index: int) -> int:
    """UNIX seconds of the first day of month ``index`` (year * 12 + month - 1)."""
    year, month = divmod(index, 12)
    return int(datetime(year, month + 1, 1, tzinfo=UTC).timestamp())


def _month_index(t: float) -> int:
    moment = _EPOCH + timedelta(seconds=t)
    return moment.year * 12 + moment.month - 1


def _sample_step(length: int, unit: BarUnit, unit_number: int) -> int:
    """Seconds between price samples inside a bar of ``length`` seconds."""
    if unit is BarUnit.MONTH:
        return _DAY * unit_number
    if length <= 60:
        return 1
    if length < 3600:
        return -(-length // 30)
    # About 24 samples, on 15-second knots where the path costs least.
    return -(-length // (24 * _KNOT)) * _KNOT


class SyntheticMarket:
    """Seeded quotes, trade prints, depth and bar history for a set of contracts.

    ``rate`` is the number of update slots per second per contract. Each slot carries one update;
    a move of the touch (depth then quote) takes two slots and a trade (prints, its depth entries,
    then quote) three, each sent together, so after every ``advance`` the last quote, the book and
    ``touch`` agree. Other slots refresh depth sizes or resend the quote. The market starts at the
    first time it is given (``advance`` or a snapshot); the trading session rolls over at 00:00
    UTC.

    ``expired`` contracts are listed but no longer trade: they have no quotes. Given a base
    price and an entry in ``expiries`` (when each stopped trading), one keeps hourly and coarser
    history up to its expiry, as the gateway does, and refuses finer units with
    ``UnitUnavailable``; otherwise its history is empty.
    """

    def __init__(
        self,
        contracts: Sequence[Contract],
        *,
        seed: int,
        base_prices: Mapping[str, Decimal],
        rate: float = 20.0,
        depth_levels: int = 10,
        expired: Sequence[Contract] = (),
        expiries: Mapping[str, float] | None = None,
    ) -> None:
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"rate must be a positive number of updates per second, got {rate}")
        if depth_levels < 1:
            raise ValueError(f"depth_levels must be at least 1, got {depth_levels}")
        self._rate = float(rate)
        self._depth = depth_levels
        self._feeds: dict[str, _Feed] = {}
        for contract in contracts:
            cid = contract.id
            if cid in self._feeds:
                raise ValueError(f"contract {cid} is listed twice")
            base = base_prices.get(cid)
            if base is None:
                raise ValueError(f"no base price for {cid}")
            if not (base.is_finite() and base > 0 and contract.tick_size > 0):
                raise ValueError(f"{cid} needs a positive base price and tick size")
            self._feeds[cid] = _feed(seed, contract, base)
        self._expired = frozenset(contract.id for contract in expired) - self._feeds.keys()
        self._history: dict[str, tuple[_Feed, float]] = {}
        for contract in expired:
            base, expiry = base_prices.get(contract.id), (expiries or {}).get(contract.id)
            if contract.id in self._expired and base is not None and expiry is not None:
                self._history[contract.id] = (_feed(seed, contract, base), expiry)
        self._states: dict[str, _State] = {}
        self._clock: float | None = None

    @property
    def contracts(self) -> tuple[Contract, ...]:
        """The contracts this market quotes, in the order given."""
        return tuple(feed.contract for feed in self._feeds.values())

    def quotes(self, contract_id: str) -> bool:
        """True when ``contract_id`` trades here (False for an expired or unknown contract)."""
        return contract_id in self._feeds

    @property
    def clock(self) -> float | None:
        """The latest time handed to ``advance`` (or the start time); None before the start."""
        return self._clock

    # -- the price path -------------------------------------------------------------------------

    def price_at(self, contract_id: str, t: float) -> Decimal:
        """The path price of a contract at ``t`` (UNIX seconds), on the tick grid."""
        feed = self._feeds[contract_id]
        return feed.price(_ticks(feed.path.x(_finite(t, "t"))))

    def settlement(self, contract_id: str) -> Decimal | None:
        """An expired contract's price at its expiry, on the tick grid; None when the market
        keeps no history for it."""
        kept = self._history.get(contract_id)
        if kept is None:
            return None
        feed, expiry = kept
        return feed.price(_ticks(feed.path.x(expiry)))

    # -- live updates ---------------------------------------------------------------------------

    def advance(self, now: float) -> list[MarketUpdate]:
        """Updates due since the previous call, oldest first; the first call only starts."""
        _finite(now, "now")
        if self._clock is None:
            self._start(now)
            return []
        if now <= self._clock:
            return []
        self._clock = now
        due: list[tuple[float, int, MarketUpdate]] = []
        rate = self._rate
        for index, (cid, feed) in enumerate(self._feeds.items()):
            state = self._states[cid]
            slot = max(state.next_slot, self._first_slot_after(feed, now - CATCH_UP_SECONDS))
            while (tau := (slot + feed.phase) / rate) <= now:
                updates, used = self._event(feed, state, slot, tau)
                due.extend((tau, index, update) for update in updates)
                slot += used
            state.next_slot = slot
        due.sort(key=lambda item: (item[0], item[1]))
        return [update for _, _, update in due]

    def _first_slot_after(self, feed: _Feed, t: float) -> int:
        rate, phase = self._rate, feed.phase
        # One slot early by construction, whatever the float rounding; then step forward.
        slot = math.floor(t * rate - phase) - 1
        while (slot + phase) / rate <= t:
            slot += 1
        return slot

    def _start(self, now: float) -> None:
        self._clock = now
        for cid, feed in self._feeds.items():
            x = feed.path.x(now)
            bid, last = max(1, math.floor(x)), _ticks(x)
            day = math.floor(now / _DAY)
            start = day * _DAY
            step = _sample_step(_DAY, BarUnit.DAY, 1)
            opening, high, low, _ = self._ohlc_sparse(feed.path, start, now, step)
            bids, asks = self._book(feed, bid, bid + 1, now)
            state = _State(
                next_slot=self._first_slot_after(feed, now),
                bid=bid,
                ask=bid + 1,
                bids=bids,
                asks=asks,
                last=last,
                session_day=day,
                open=opening,
                high=high,
                low=low,
                volume=_volume(feed, (BarUnit.DAY, 1), start, _DAY, now - start),
                updated=now,
            )
            state.published = self._optionals(feed, state)
            self._states[cid] = state

    def _event(
        self, feed: _Feed, state: _State, slot: int, tau: float
    ) -> tuple[list[MarketUpdate], int]:
        """The updates of one slot and how many slots they take."""
        cid = feed.contract.id
        stamp = iso_timestamp(tau)
        x = feed.path.x(tau)
        bid = max(1, math.floor(x))
        day = math.floor(tau / _DAY)
        rolled = day != state.session_day
        if rolled:
            state.session_day = day
            state.open = state.high = state.low = _ticks(feed.path.x(day * _DAY))
            state.volume = 0
        if bid != state.bid:
            entries = self._rebook(feed, state, bid, tau, stamp)
            if rolled:
                entries += self._extremes(feed, state, stamp, 0)
            state.updated = tau
            return [DepthChange(cid, entries), self._quote(feed, state, stamp)], 2
        if rolled:
            state.updated = tau
            extremes = self._extremes(feed, state, stamp, 0)
            return [DepthChange(cid, extremes), self._quote(feed, state, stamp)], 2
        hashed = _mix((feed.event_key + slot * _GOLDEN) & _MASK)
        share = _unit(hashed)
        if share < _TRADE_SHARE:
            prints = self._trade(feed, state, hashed, _ticks(x), stamp)
            tape = self._tape(feed, state, prints, stamp)
            state.updated = tau
            return [
                TradePrints(cid, prints),
                DepthChange(cid, tape),
                self._quote(feed, state, stamp),
            ], 3
        if share < _TRADE_SHARE + _DEPTH_SHARE:
            entries = self._rebook(feed, state, bid, tau, stamp)
            if entries:
                return [DepthChange(cid, entries)], 1
        state.updated = tau
        return [self._quote(feed, state, stamp)], 1

    def _trade(
        self, feed: _Feed, state: _State, hashed: int, price: int, stamp: str
    ) -> list[dict[str, Any]]:
        aggressor = TradeSide.BUY if price == state.ask else TradeSide.SELL
        count = 1 + (hashed & 0xFF) % 3
        prints = []
        for i in range(count):
            size = 1 + int(5 * _unit(_mix(hashed + i)) ** 3)
            state.volume += size
            prints.append(
                {
                    "symbolId": feed.symbol,
                    "price": feed.price(price),
                    "timestamp": stamp,
                    "type": int(aggressor),
                    "volume": size,
                }
            )
        state.last = price
        return prints

    def _tape(
        self, feed: _Feed, state: _State, prints: list[dict[str, Any]], stamp: str
    ) -> list[dict[str, Any]]:
        """Depth entries for a trade: a Trade per print, new extremes, then the touch it ate."""
        price, traded = state.last, sum(p["volume"] for p in prints)
        entries = [
            _entry(stamp, DepthType.TRADE, p["price"], p["volume"], p["volume"]) for p in prints
        ]
        if price > state.high or price < state.low:
            state.high, state.low = max(state.high, price), min(state.low, price)
            entries += self._extremes(feed, state, stamp, traded)
        buy = price == state.ask
        side, kind = (state.asks, DepthType.BEST_ASK) if buy else (state.bids, DepthType.BEST_BID)
        size = side[price]
        left = max(1, size - traded)
        if left != size:
            side[price] = left
            entries.append(_entry(stamp, kind, feed.price(price), left, size - left))
        return entries

    @staticmethod
    def _extremes(feed: _Feed, state: _State, stamp: str, current: int) -> list[dict[str, Any]]:
        """Low and High entries for the session so far; their volume is the session volume."""
        volume = max(1, state.volume)
        return [
            _entry(stamp, DepthType.LOW, feed.price(state.low), volume, current),
            _entry(stamp, DepthType.HIGH, feed.price(state.high), volume, current),
        ]

    # -- the book -------------------------------------------------------------------------------

    def _size(self, feed: _Feed, side: int, price: int, t: float) -> int:
        anchor = _mix((feed.book_key + price * _GOLDEN + side) & _MASK)
        bucket = math.floor(t / _HOLD + _unit(anchor))
        w = _unit(_mix((anchor + bucket * 0xD1B54A32D192ED03) & _MASK))
        return 1 + int(_MAX_LEVEL_SIZE * w * w)

    def _book(
        self, feed: _Feed, bid: int, ask: int, t: float
    ) -> tuple[dict[int, int], dict[int, int]]:
        levels = range(self._depth)
        bids = {bid - i: self._size(feed, 0, bid - i, t) for i in levels if bid - i >= 1}
        asks = {ask + i: self._size(feed, 1, ask + i, t) for i in levels}
        return bids, asks

    def _rebook(
        self, feed: _Feed, state: _State, bid: int, t: float, stamp: str
    ) -> list[dict[str, Any]]:
        """Move the book to its image at ``t``; the depth entries that take a reader there.

        Removals come first. The top level of each side is sent as NewBestBid/NewBestAsk when its
        price moved (at an unchanged size its ``currentVolume`` is then its whole size) and as
        BestBid/BestAsk when only its size did.
        """
        bids, asks = self._book(feed, bid, bid + 1, t)
        removals: list[dict[str, Any]] = []
        upserts: list[dict[str, Any]] = []
        price = feed.price
        for kind, old, new, old_top, top, descending in (
            (DepthType.BID, state.bids, bids, state.bid, bid, True),
            (DepthType.ASK, state.asks, asks, state.ask, bid + 1, False),
        ):
            removals.extend(
                _entry(stamp, kind, price(p), 0, old[p])
                for p in sorted(old.keys() - new.keys(), reverse=descending)
            )
            for p in sorted(new, reverse=descending):
                size, before = new[p], old.get(p, 0)
                if p == top:
                    if top != old_top:
                        change = abs(size - before) or size
                        upserts.append(_entry(stamp, _NEW_BEST[kind], price(p), size, change))
                    elif size != before:
                        upserts.append(
                            _entry(stamp, _BEST[kind], price(p), size, abs(size - before))
                        )
                elif size != before:
                    upserts.append(_entry(stamp, kind, price(p), size, abs(size - before)))
        state.bid, state.ask, state.bids, state.asks = bid, bid + 1, bids, asks
        return removals + upserts

    # -- quotes ---------------------------------------------------------------------------------

    def _optionals(self, feed: _Feed, state: _State) -> dict[str, Any]:
        change = state.last - state.open
        percent = (Decimal(change) * 100 / Decimal(state.open)).quantize(_CENT)
        return {
            "lastPrice": feed.price(state.last),
            "change": feed.price(change),
            "changePercent": percent if percent else Decimal("0.00"),
            "open": feed.price(state.open),
            "high": feed.price(state.high),
            "low": feed.price(state.low),
            "volume": state.volume,
        }

    def _quote(self, feed: _Feed, state: _State, stamp: str) -> QuoteChange:
        data: dict[str, Any] = {"symbol": feed.symbol}
        published = state.published
        current = self._optionals(feed, state)
        if published["lastPrice"] != current["lastPrice"]:
            data["lastPrice"] = current["lastPrice"]
        data["bestBid"] = feed.price(state.bid)
        data["bestAsk"] = feed.price(state.ask)
        for name in _QUOTE_STATS:
            if published[name] != current[name]:
                data[name] = current[name]
        data["lastUpdated"] = stamp
        data["timestamp"] = stamp
        state.published = current
        return QuoteChange(feed.contract.id, data)

    def _state(self, contract_id: str, now: float | None) -> tuple[_Feed, _State]:
        feed = self._feeds[contract_id]
        if self._clock is None:
            if now is None:
                raise RuntimeError("the market has not started: call advance(now) first")
            self._start(_finite(now, "now"))
        return feed, self._states[contract_id]

    def quote_snapshot(self, contract_id: str, now: float) -> dict[str, Any]:
        """The full current ``GatewayQuote`` payload for a new subscriber, stamped ``now``."""
        feed, state = self._state(contract_id, now)
        optionals = state.published
        return {
            "symbol": feed.symbol,
            "symbolName": feed.contract.name,
            "lastPrice": optionals["lastPrice"],
            "bestBid": feed.price(state.bid),
            "bestAsk": feed.price(state.ask),
            **{name: optionals[name] for name in _QUOTE_STATS},
            "lastUpdated": iso_timestamp(state.updated),
            "timestamp": iso_timestamp(now),
        }

    def depth_snapshot(self, contract_id: str, now: float) -> list[dict[str, Any]]:
        """A Reset entry followed by every current level (bids high to low, then asks)."""
        feed, state = self._state(contract_id, now)
        stamp = iso_timestamp(now)
        entries = [_entry(stamp, DepthType.RESET, Decimal(0), 0, 0)]
        for kind, side, descending in (
            (DepthType.BID, state.bids, True),
            (DepthType.ASK, state.asks, False),
        ):
            entries.extend(
                _entry(stamp, kind, feed.price(p), side[p], side[p])
                for p in sorted(side, reverse=descending)
            )
        return entries

    def levels(self, contract_id: str) -> tuple[Levels, Levels]:
        """The current book: bids highest first and asks lowest first, as (price, volume)."""
        feed, state = self._state(contract_id, None)
        bids = [(feed.price(p), state.bids[p]) for p in sorted(state.bids, reverse=True)]
        asks = [(feed.price(p), state.asks[p]) for p in sorted(state.asks)]
        return bids, asks

    def touch(self, contract_id: str) -> Touch:
        """Best bid and ask with their sizes, and the last trade price, as last published."""
        feed, state = self._state(contract_id, None)
        return Touch(
            bid=feed.price(state.bid),
            bid_size=state.bids[state.bid],
            ask=feed.price(state.ask),
            ask_size=state.asks[state.ask],
            last=feed.price(state.last),
        )

    # -- history --------------------------------------------------------------------------------

    def bars(
        self,
        contract_id: str,
        unit: BarUnit | int,
        unit_number: int,
        *,
        start: datetime,
        end: datetime,
        limit: int,
        include_partial_bar: bool,
        now: float,
    ) -> list[Bar]:
        """The ``limit`` most recent bars starting within [start, end] by ``now``, newest first.

        Time bars are aligned to UTC (epoch multiples for seconds to days, Mondays for weeks, the
        1st for months). Tick bars group ``unit_number`` trades of the tape (``TAPE_RATE`` trades
        a second at the path price, counted from the epoch) and start at their first trade. The
        bar holding ``now`` comes only with ``include_partial_bar``, closing at the price at
        ``now`` (a tick bar at its last trade by then). An expired contract has no bars; an
        unknown one raises ``KeyError``.
        """
        unit = BarUnit.parse(unit)
        if not unit.is_known or unit is BarUnit.UNSPECIFIED:
            raise ValueError(f"bar unit {unit.name} cannot be requested")
        if unit_number < 1:
            raise ValueError(f"unit_number must be at least 1, got {unit_number}")
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        stop = _finite(now, "now")
        if contract_id in self._expired:
            kept = self._history.get(contract_id)
            if kept is None:
                return []
            if unit in _FINER_THAN_HOURS:
                raise UnitUnavailable(f"{unit.name} bars are not kept for expired {contract_id}")
            feed, stop = kept[0], min(stop, kept[1])
        else:
            feed = self._feeds[contract_id]
        limit = min(limit, MAX_BARS)
        # The synthetic history begins at the epoch: nothing earlier, whatever a caller asks.
        first, top = max(_utc_seconds(start, "start"), 0.0), _utc_seconds(end, "end")
        top = min(top, stop)
        if top < first:
            return []
        window = _Window(first, top, limit, include_partial_bar, now)
        if unit is BarUnit.TICK:
            return self._tick_bars(feed, unit_number, window)
        buckets = self._buckets(unit, unit_number, window)
        if not buckets:
            return []
        length = buckets[0][1] - buckets[0][0]
        step = _sample_step(length, unit, unit_number)
        path = feed.path
        if step == 1:
            ohlcs = self._ohlc_dense(path, buckets, now)
        else:
            ohlcs = [self._ohlc_sparse(path, s, now if e > now else e, step) for s, e in buckets]
        prices: dict[int, Decimal] = {}

        def price(ticks: int) -> Decimal:
            value = prices.get(ticks)
            if value is None:
                value = prices[ticks] = feed.price(ticks)
            return value

        bars = []
        for (s, e), (o, h, lo, c) in zip(buckets, ohlcs, strict=True):
            elapsed = min(e, now) - s
            bars.append(
                Bar(
                    time=_EPOCH + timedelta(seconds=s),
                    open=price(o),
                    high=price(h),
                    low=price(lo),
                    close=price(c),
                    volume=_volume(feed, (unit, unit_number), s, e - s, elapsed),
                )
            )
        return bars

    @staticmethod
    def _buckets(unit: BarUnit, unit_number: int, window: _Window) -> list[tuple[int, int]]:
        """(start, end) of the wanted buckets, newest first."""
        out: list[tuple[int, int]] = []
        first, limit, partial, now = window.first, window.limit, window.partial, window.now
        if unit is BarUnit.MONTH:
            index = _month_index(window.top) // unit_number * unit_number
            while len(out) < limit:
                s = _month_start(index)
                if s < first:
                    break
                e = _month_start(index + unit_number)
                if e <= now or partial:
                    out.append((s, e))
                index -= unit_number
            return out
        length = _UNIT_SECONDS[unit] * unit_number
        origin = _WEEK_ORIGIN if unit is BarUnit.WEEK else 0
        s = origin + math.floor((window.top - origin) / length) * length
        while s >= first and len(out) < limit:
            if s + length <= now or partial:
                out.append((s, s + length))
            s -= length
        return out

    @staticmethod
    def _ohlc_sparse(path: _Path, s: int, close: float, step: int) -> tuple[int, int, int, int]:
        """OHLC in ticks from samples every ``step`` seconds from ``s``, closing at ``close``."""
        xs = path.at_seconds(range(s, math.ceil(close), step))
        xs.append(path.x(close))
        return _ticks(xs[0]), _ticks(max(xs)), _ticks(min(xs)), _ticks(xs[-1])

    @staticmethod
    def _ohlc_dense(
        path: _Path, buckets: list[tuple[int, int]], now: float
    ) -> list[tuple[int, int, int, int]]:
        """OHLC in ticks from every whole second of each bucket, both ends included."""
        origin = buckets[-1][0]
        newest_end = buckets[0][1]
        last_knot = newest_end if newest_end <= now else math.floor(now)
        xs = path.dense(origin, last_knot)
        out = []
        for s, e in buckets:
            if e <= now:
                window = xs[s - origin : e - origin + 1]
                close = window[-1]
            else:
                close = path.x(now)
                window = [*xs[s - origin : last_knot - origin + 1], close]
            out.append((_ticks(window[0]), _ticks(max(window)), _ticks(min(window)), _ticks(close)))
        return out

    @staticmethod
    def _tick_bars(feed: _Feed, size: int, window: _Window) -> list[Bar]:
        """Bars of ``size`` trades of the tape, newest first."""
        path = feed.path
        stride = -(-size // 24)
        latest = math.floor(window.now * TAPE_RATE)  # the last trade printed by now
        bars: list[Bar] = []
        index = math.floor(window.top * TAPE_RATE) // size
        while len(bars) < window.limit:
            opening = index * size
            if opening / TAPE_RATE < window.first:
                break
            closing = opening + size - 1
            if closing > latest:
                if not window.partial:
                    index -= 1
                    continue
                closing = latest
            xs = [path.x(m / TAPE_RATE) for m in range(opening, closing, stride)]
            xs.append(path.x(closing / TAPE_RATE))
            count = closing - opening + 1
            w = _unit(_mix((feed.volume_key + index * _GOLDEN + size) & _MASK))
            bars.append(
                Bar(
                    time=_EPOCH + timedelta(seconds=opening / TAPE_RATE),
                    open=feed.price(_ticks(xs[0])),
                    high=feed.price(_ticks(max(xs))),
                    low=feed.price(_ticks(min(xs))),
                    close=feed.price(_ticks(xs[-1])),
                    volume=count + int(count * 1.5 * w),
                )
            )
            index -= 1
        return bars


def _volume(feed: _Feed, unit: tuple[BarUnit, int], s: int, length: int, elapsed: float) -> int:
    """Seeded volume of a bucket, in proportion to the time elapsed in it."""
    if length < _DAY:
        busy = 48_600 <= s % _DAY < 72_000  # 13:30 to 20:00 UTC
        intensity = 3.0 if busy else 1.0
    else:
        intensity = 1.5
    kind, number = unit
    hashed = _mix((feed.volume_key + s * _GOLDEN + int(kind) * 1_000_003 + number) & _MASK)
    return max(1, round(elapsed * _VOLUME_RATE * intensity * (0.5 + _unit(hashed))))
