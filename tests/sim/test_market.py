"""The synthetic market: price path, live updates, snapshots, book, touch and bar history."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeforge_proto.core import jsoncodec
from tradeforge_proto.core.book import OrderBook
from tradeforge_proto.core.enums import BarUnit, DepthType
from tradeforge_proto.core.events import DepthReceived, QuoteUpdated
from tradeforge_proto.core.models import Bar, Contract, Quote
from tradeforge_proto.providers.topstepx.hubs import MarketHub
from tradeforge_sim.market import (
    CATCH_UP_SECONDS,
    MAX_BARS,
    TAPE_RATE,
    DepthChange,
    MarketUpdate,
    QuoteChange,
    SyntheticMarket,
    Touch,
    TradePrints,
    iso_timestamp,
)

ES = Contract("CON.F.US.EP.Z25", "ESZ5", "E-mini S&P 500", Decimal("0.25"), Decimal("12.5"), True)
ZB = Contract(
    "CON.F.US.USA.Z25", "ZBZ5", "30 Year T-Bond", Decimal("0.03125"), Decimal("31.25"), True
)
EU = Contract(
    "CON.F.US.EU6.Z25", "6EZ5", "Euro FX", Decimal("0.00005"), Decimal("6.25"), True, "F.US.EU6"
)
CONTRACTS = (ES, ZB, EU)
BASES = {ES.id: Decimal("6000"), ZB.id: Decimal("115.5"), EU.id: Decimal("1.0850")}
T0 = 1_763_994_600.0  # 2025-11-24 14:30:00 UTC, a Monday
MANDATORY = {"symbol", "bestBid", "bestAsk", "lastUpdated", "timestamp"}
OPTIONAL = {"lastPrice", "change", "changePercent", "open", "high", "low", "volume"}
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}\+00:00$")
FAR_PAST = datetime(2000, 1, 1, tzinfo=UTC)
FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)


def market(seed: int = 1, **kwargs: Any) -> SyntheticMarket:
    return SyntheticMarket(CONTRACTS, seed=seed, base_prices=BASES, **kwargs)


def run(m: SyntheticMarket, start: float, steps: list[float]) -> list[list[MarketUpdate]]:
    out = [m.advance(start)]
    now = start
    for step in steps:
        now += step
        out.append(m.advance(now))
    return out


def at(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def history(
    m: SyntheticMarket,
    unit: BarUnit | int,
    number: int = 1,
    *,
    now: float = T0,
    limit: int = 50,
    partial: bool = False,
    start: datetime = FAR_PAST,
    end: datetime = FAR_FUTURE,
    contract: Contract = ES,
) -> list[Bar]:
    return m.bars(
        contract.id,
        unit,
        number,
        start=start,
        end=end,
        limit=limit,
        include_partial_bar=partial,
        now=now,
    )


class Subscriber:
    """A client fed through the real hub decoder: merged quote and rebuilt book per contract."""

    def __init__(self, m: SyntheticMarket, now: float, contracts: tuple[Contract, ...]) -> None:
        self.hub = MarketHub("https://sim/hubs/market")
        self.books = {c.id: OrderBook(c.id) for c in contracts}
        self.quotes: dict[str, dict[str, Any]] = {}
        self.market = m
        for c in contracts:
            self.quotes[c.id] = dict(m.quote_snapshot(c.id, now))
            self.hub.decode("GatewayQuote", (c.id, m.quote_snapshot(c.id, now)))
            self.depth(c.id, m.depth_snapshot(c.id, now))

    def depth(self, cid: str, entries: list[dict[str, Any]]) -> None:
        (event,) = self.hub.decode("GatewayDepth", (cid, entries))
        assert isinstance(event, DepthReceived)
        self.books[cid].apply_all(event.updates)

    def quote(self, cid: str) -> Quote:
        quote = self.hub.last_quote(cid)
        assert quote is not None
        return quote

    def feed(self, updates: list[MarketUpdate]) -> None:
        for update in updates:
            cid = update.contract_id
            if cid not in self.books:
                continue
            if isinstance(update, DepthChange):
                self.depth(cid, update.entries)
            elif isinstance(update, QuoteChange):
                data = update.data
                assert MANDATORY <= data.keys() <= MANDATORY | OPTIONAL
                merged = self.quotes[cid]
                for key in data.keys() & OPTIONAL:
                    assert data[key] != merged[key], f"{key} sent unchanged"
                merged.update(data)
                (event,) = self.hub.decode("GatewayQuote", (cid, data))
                assert isinstance(event, QuoteUpdated)
            else:
                book = self.books[cid]
                best_bid, best_ask = book.best_bid, book.best_ask
                assert best_bid is not None
                assert best_ask is not None
                for trade in update.prints:
                    expected = best_ask.price if trade["type"] == 0 else best_bid.price
                    assert trade["price"] == expected
                    assert trade["volume"] >= 1
                    assert STAMP.match(trade["timestamp"])

    def check(self, now: float) -> None:
        """Book, quote and touch all agree with the market's own view."""
        for cid, book in self.books.items():
            bids, asks = self.market.levels(cid)
            assert [(lv.price, lv.volume) for lv in book.bids()] == bids
            assert [(lv.price, lv.volume) for lv in book.asks()] == asks
            touch = self.market.touch(cid)
            assert book.best_bid is not None
            assert book.best_ask is not None
            assert (touch.bid, touch.bid_size) == (book.best_bid.price, book.best_bid.volume)
            assert (touch.ask, touch.ask_size) == (book.best_ask.price, book.best_ask.volume)
            quote = self.quote(cid)
            assert (quote.best_bid, quote.best_ask, quote.last_price) == (
                touch.bid,
                touch.ask,
                touch.last,
            )
            snapshot = self.market.quote_snapshot(cid, now)
            for key in (MANDATORY | OPTIONAL) - {"lastUpdated", "timestamp"}:
                assert self.quotes[cid][key] == snapshot[key], key


# -- the price path ------------------------------------------------------------------------------


def test_price_path_is_a_pure_function_of_seed_contract_and_time() -> None:
    times = [T0 + i * 7.37 for i in range(200)] + [T0 + 1e6, T0 - 3e7, 0.0, -5.5]
    a, b = market(seed=3), market(seed=3)
    forward = [a.price_at(ES.id, t) for t in times]
    backward = [b.price_at(ES.id, t) for t in reversed(times)][::-1]
    assert forward == backward
    assert forward != [market(seed=4).price_at(ES.id, t) for t in times]
    assert forward != [a.price_at(ZB.id, t) for t in times]
    for c in CONTRACTS:
        for t in times:
            price = a.price_at(c.id, t)
            assert c.is_aligned(price)
            assert price > 0


def test_price_path_does_not_depend_on_the_contract_list() -> None:
    alone = SyntheticMarket([ZB], seed=9, base_prices={ZB.id: BASES[ZB.id]})
    together = market(seed=9)
    assert [alone.price_at(ZB.id, T0 + i) for i in range(50)] == [
        together.price_at(ZB.id, T0 + i) for i in range(50)
    ]


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda c: c.name)
def test_price_moves_a_few_ticks_a_second_and_a_few_percent_a_day(contract: Contract) -> None:
    m = market(seed=11)
    tick = contract.tick_size
    seconds = [m.price_at(contract.id, T0 + i) for i in range(1800)]
    moves = [abs(b - a) / tick for a, b in pairwise(seconds)]
    assert max(moves) <= 8
    assert 0.1 <= sum(moves) / len(moves) <= 4
    base = BASES[contract.id]
    for day in range(4):
        minutes = [m.price_at(contract.id, T0 + day * 86_400 + i * 60) for i in range(1440)]
        assert (max(minutes) - min(minutes)) / base < Decimal("0.05")
        assert abs(minutes[0] - base) / base < Decimal("0.12")


def test_price_is_continuous_between_whole_seconds() -> None:
    m = market(seed=2)
    tick = ES.tick_size
    for i in range(200):
        t = T0 + i * 0.05
        assert abs(m.price_at(ES.id, t + 0.05) - m.price_at(ES.id, t)) <= 2 * tick


def test_price_never_drops_below_one_tick() -> None:
    cheap = Contract("CON.F.US.XX.Z25", "XXZ5", "cheap", Decimal("1"), Decimal("1"), True)
    m = SyntheticMarket([cheap], seed=5, base_prices={cheap.id: Decimal("1")}, depth_levels=3)
    assert {m.price_at(cheap.id, T0 + i * 0.5) for i in range(500)} <= {Decimal(1), Decimal(2)}
    m.advance(T0)
    for step in range(1, 100):
        m.advance(T0 + step * 0.1)
        bids, asks = m.levels(cheap.id)
        assert all(price >= 1 for price, _ in bids)
        assert len(asks) == 3
        assert 1 <= len(bids) <= 3


def test_non_finite_times_are_rejected() -> None:
    m = market()
    with pytest.raises(ValueError, match="finite"):
        m.price_at(ES.id, math.nan)
    with pytest.raises(ValueError, match="finite"):
        m.advance(math.inf)


# -- construction --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("contracts", "bases", "kwargs", "message"),
    [
        ([ES], {}, {}, "no base price"),
        ([ES, ES], BASES, {}, "twice"),
        ([ES], {ES.id: Decimal(0)}, {}, "positive"),
        ([ES], {ES.id: Decimal("NaN")}, {}, "positive"),
        ([ES], BASES, {"rate": 0.0}, "rate"),
        ([ES], BASES, {"rate": math.inf}, "rate"),
        ([ES], BASES, {"depth_levels": 0}, "depth_levels"),
    ],
)
def test_invalid_construction(
    contracts: list[Contract], bases: dict[str, Decimal], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        SyntheticMarket(contracts, seed=1, base_prices=bases, **kwargs)


def test_contracts_clock_and_symbols() -> None:
    odd = Contract("LOCAL-1", "L1", "local", Decimal("0.5"), Decimal("1"), True)
    m = SyntheticMarket(
        [*CONTRACTS, odd], seed=1, base_prices={**BASES, odd.id: Decimal("100")}, rate=5
    )
    assert m.contracts == (*CONTRACTS, odd)
    before = m.clock
    assert before is None
    assert m.advance(T0) == []
    assert m.clock == T0
    assert m.quote_snapshot(ES.id, T0)["symbol"] == "F.US.EP"
    assert m.quote_snapshot(ZB.id, T0)["symbol"] == "F.US.USA"
    assert m.quote_snapshot(EU.id, T0)["symbol"] == "F.US.EU6"
    assert m.quote_snapshot(odd.id, T0)["symbol"] == "LOCAL-1"
    assert m.quote_snapshot(ES.id, T0)["symbolName"] == "ESZ5"


def test_views_need_a_start_and_snapshots_start_the_market() -> None:
    m = market()
    with pytest.raises(RuntimeError, match="advance"):
        m.touch(ES.id)
    with pytest.raises(RuntimeError, match="advance"):
        m.levels(ES.id)
    with pytest.raises(KeyError):
        m.price_at("CON.F.US.NOPE.Z25", T0)
    snapshot = m.depth_snapshot(ES.id, T0)
    assert m.clock == T0
    other = market()
    other.advance(T0)
    assert other.depth_snapshot(ES.id, T0) == snapshot
    steps = [0.05] * 100
    assert run(m, T0, steps) == run(other, T0, steps)


# -- live updates --------------------------------------------------------------------------------


def test_updates_are_deterministic_for_a_seed_and_a_sequence_of_times() -> None:
    steps = [0.05, 0.013, 0.5, 0.25, 3.0, 0.0, -1.0, 0.07] * 10
    first = run(market(seed=21), T0, steps)
    assert first == run(market(seed=21), T0, steps)
    assert first != run(market(seed=22), T0, steps)
    assert sum(map(len, first)) > 100


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(-(2**40), 2**40),
    steps=st.lists(st.floats(0.001, 0.4), min_size=1, max_size=40),
)
def test_same_inputs_same_updates(seed: int, steps: list[float]) -> None:
    assert run(market(seed=seed), T0, steps) == run(market(seed=seed), T0, steps)


def test_updates_come_in_time_order_with_wire_timestamps() -> None:
    m = market(seed=8)
    m.advance(T0)
    stamps = []
    for step in range(1, 41):
        for update in m.advance(T0 + step * 0.1):
            if isinstance(update, QuoteChange):
                stamps.append(update.data["timestamp"])
                assert update.data["lastUpdated"] == update.data["timestamp"]
            elif isinstance(update, TradePrints):
                stamps.extend(p["timestamp"] for p in update.prints)
            else:
                stamps.extend(e["timestamp"] for e in update.entries)
    assert stamps == sorted(stamps)
    assert all(STAMP.match(stamp) for stamp in stamps)
    assert stamps[0] > iso_timestamp(T0)
    assert stamps[-1] <= iso_timestamp(T0 + 4)


def test_iso_timestamps() -> None:
    assert iso_timestamp(T0 + 0.1234567) == "2025-11-24T14:30:00.1234567+00:00"
    assert iso_timestamp(T0) == "2025-11-24T14:30:00.0000000+00:00"
    assert iso_timestamp(1.999_999_99) == "1970-01-01T00:00:02.0000000+00:00"
    assert iso_timestamp(-0.5) == "1969-12-31T23:59:59.5000000+00:00"
    # Thousands of distinct seconds stay correct through the prefix cache.
    for i in range(5000):
        assert iso_timestamp(T0 + i * 3601).endswith(".0000000+00:00")
    assert iso_timestamp(T0 + 4999 * 3601) == f"{at(T0 + 4999 * 3601):%Y-%m-%dT%H:%M:%S}" + (
        ".0000000+00:00"
    )


def test_rate_is_respected() -> None:
    m = market(seed=5, rate=20.0)
    m.advance(T0)
    counts = dict.fromkeys(BASES, 0)
    kinds = {QuoteChange: 0, DepthChange: 0, TradePrints: 0}
    for step in range(1, 401):
        for update in m.advance(T0 + step * 0.05):
            counts[update.contract_id] += 1
            kinds[type(update)] += 1
    for count in counts.values():
        assert abs(count - 400) <= 2
    total = sum(kinds.values())
    assert kinds[TradePrints] < kinds[QuoteChange]
    assert kinds[TradePrints] < kinds[DepthChange]
    assert 0.05 < kinds[TradePrints] / total < 0.3
    assert kinds[QuoteChange] + kinds[DepthChange] > 0.7 * total


def test_a_long_pause_is_capped_and_time_never_goes_back() -> None:
    m = market(seed=5, rate=10.0)
    m.advance(T0)
    burst = m.advance(T0 + 3600)
    for c in CONTRACTS:
        count = sum(1 for u in burst if u.contract_id == c.id)
        assert 10 * CATCH_UP_SECONDS - 2 <= count <= 10 * CATCH_UP_SECONDS + 2
    assert m.advance(T0 + 3600) == []
    assert m.advance(T0 + 100) == []
    assert m.clock == T0 + 3600


def test_slow_rate_still_moves_the_touch() -> None:
    m = SyntheticMarket([ES], seed=4, base_prices={ES.id: BASES[ES.id]}, rate=1.0)
    m.advance(T0)
    updates = [u for step in range(1, 121) for u in m.advance(T0 + step * 0.5)]
    assert 58 <= len(updates) <= 62
    assert any(isinstance(u, DepthChange) for u in updates)
    assert abs(m.price_at(ES.id, T0 + 60) - m.touch(ES.id).bid) <= 12 * ES.tick_size


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    steps=st.lists(st.floats(0.01, 0.6), min_size=5, max_size=60),
    join=st.integers(0, 10),
    rate=st.sampled_from([5.0, 20.0, 50.0]),
)
def test_snapshot_plus_updates_rebuild_the_book_and_the_quote(
    seed: int, steps: list[float], join: int, rate: float
) -> None:
    m = market(seed=seed, rate=rate)
    now = T0
    m.advance(now)
    for step in steps[:join]:
        now += step
        m.advance(now)
    subscriber = Subscriber(m, now, CONTRACTS)
    subscriber.check(now)
    for step in steps[join:]:
        now += step
        subscriber.feed(m.advance(now))
        subscriber.check(now)


def test_a_long_session_rebuilds_and_wire_encodes() -> None:
    m = market(seed=31)
    m.advance(T0)
    subscriber = Subscriber(m, T0, CONTRACTS)
    now = T0
    for step in range(300):
        now += 0.1 if step % 50 else 4.0
        updates = m.advance(now)
        # Every payload survives the project's JSON codec and decodes to the same values.
        for update in updates:
            if isinstance(update, QuoteChange):
                assert jsoncodec.loads(jsoncodec.dumps(update.data)).keys() == update.data.keys()
            elif isinstance(update, DepthChange):
                wire = jsoncodec.loads(jsoncodec.dumps(update.entries))
                (event,) = MarketHub("x").decode("GatewayDepth", (update.contract_id, wire))
                assert isinstance(event, DepthReceived)
                assert [u.price for u in event.updates] == [e["price"] for e in update.entries]
        subscriber.feed(updates)
    subscriber.check(now)
    jsoncodec.dumps(m.depth_snapshot(EU.id, now))
    jsoncodec.dumps(m.quote_snapshot(ZB.id, now))


def test_partial_quotes_leave_out_unchanged_fields() -> None:
    m = market(seed=12)
    m.advance(T0)
    quotes = [
        u.data
        for step in range(1, 201)
        for u in m.advance(T0 + step * 0.05)
        if isinstance(u, QuoteChange)
    ]
    assert any(q.keys() == MANDATORY for q in quotes)
    assert any("lastPrice" in q and "volume" in q for q in quotes)
    assert all(q.keys() >= MANDATORY for q in quotes)


LEVEL_TYPES = frozenset(
    {
        DepthType.BID,
        DepthType.ASK,
        DepthType.BEST_BID,
        DepthType.BEST_ASK,
        DepthType.NEW_BEST_BID,
        DepthType.NEW_BEST_ASK,
    }
)
EXTREME_TYPES = frozenset({DepthType.LOW, DepthType.HIGH})


def test_depth_changes_remove_before_they_add_and_carry_current_volume() -> None:
    m = market(seed=13)
    m.advance(T0)
    seen_removal = False
    for step in range(1, 201):
        for update in m.advance(T0 + step * 0.05):
            if not isinstance(update, DepthChange):
                continue
            assert update.entries
            volumes = [e["volume"] for e in update.entries]
            removals = volumes.count(0)
            assert all(v == 0 for v in volumes[:removals])
            seen_removal |= removals > 0
            for entry in update.entries:
                assert entry["type"] in LEVEL_TYPES | EXTREME_TYPES | {DepthType.TRADE}
                if entry["type"] in LEVEL_TYPES:
                    assert entry["currentVolume"] > 0
                else:
                    assert entry["volume"] > 0
    assert seen_removal


def test_depth_snapshot_is_a_reset_then_every_level() -> None:
    m = market(seed=14, depth_levels=4)
    m.advance(T0)
    m.advance(T0 + 1)
    entries = m.depth_snapshot(ES.id, T0 + 1.5)
    assert entries[0] == {
        "timestamp": iso_timestamp(T0 + 1.5),
        "type": 6,
        "price": Decimal(0),
        "volume": 0,
        "currentVolume": 0,
    }
    bids, asks = m.levels(ES.id)
    assert len(bids) == len(asks) == 4
    assert [(e["price"], e["volume"]) for e in entries[1:5]] == bids
    assert [(e["price"], e["volume"]) for e in entries[5:]] == asks
    assert [e["type"] for e in entries[1:]] == [2] * 4 + [1] * 4
    assert bids[0][0] + ES.tick_size == asks[0][0]
    assert [p for p, _ in bids] == sorted((p for p, _ in bids), reverse=True)
    assert [p for p, _ in asks] == sorted(p for p, _ in asks)


def test_touch_is_the_best_levels_and_the_last_trade() -> None:
    m = market(seed=15)
    m.advance(T0)
    last = m.touch(ES.id).last
    assert last == m.price_at(ES.id, T0)
    for step in range(1, 101):
        for update in m.advance(T0 + step * 0.05):
            if isinstance(update, TradePrints) and update.contract_id == ES.id:
                last = update.prints[-1]["price"]
    bids, asks = m.levels(ES.id)
    touch = m.touch(ES.id)
    assert touch == Touch(bids[0][0], bids[0][1], asks[0][0], asks[0][1], last)
    assert touch.ask - touch.bid == ES.tick_size


def test_the_session_rolls_over_at_midnight_utc() -> None:
    midnight = 1_764_028_800.0  # 2025-11-25 00:00 UTC
    m = market(seed=16)
    m.advance(midnight - 1)
    before = m.quote_snapshot(ES.id, midnight - 1)
    assert before["volume"] > 1000
    rolled = [
        u.data
        for u in m.advance(midnight + 0.5)
        if isinstance(u, QuoteChange)
        and u.contract_id == ES.id
        and u.data["timestamp"] >= iso_timestamp(midnight)
    ]
    first = rolled[0]
    assert first["open"] == m.price_at(ES.id, midnight)
    assert first["volume"] < 100
    after = m.quote_snapshot(ES.id, midnight + 0.5)
    assert after["low"] <= after["open"] <= after["high"]
    assert after["change"] == after["lastPrice"] - after["open"]


def test_the_opening_quote_matches_the_partial_day_bar() -> None:
    m = market(seed=17)
    m.advance(T0)
    quote = m.quote_snapshot(ES.id, T0)
    (day,) = history(m, BarUnit.DAY, limit=1, partial=True)
    assert day.time == datetime(2025, 11, 24, tzinfo=UTC)
    assert (quote["open"], quote["high"], quote["low"], quote["lastPrice"], quote["volume"]) == (
        day.open,
        day.high,
        day.low,
        day.close,
        day.volume,
    )
    assert quote["change"] == quote["lastPrice"] - quote["open"]
    percent = (quote["change"] * 100 / quote["open"]).quantize(Decimal("0.01"))
    assert quote["changePercent"] == percent
    assert quote["lastUpdated"] == quote["timestamp"] == iso_timestamp(T0)


# -- bar history ---------------------------------------------------------------------------------


def check_bars(bars: list[Bar], contract: Contract = ES) -> None:
    assert bars == sorted(bars, key=lambda b: b.time, reverse=True)
    assert len({b.time for b in bars}) == len(bars)
    for b in bars:
        assert b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high
        assert b.volume >= 1
        for price in (b.open, b.high, b.low, b.close):
            assert contract.is_aligned(price)
        assert b.time.tzinfo is not None


@pytest.mark.parametrize(
    ("unit", "number", "aligned"),
    [
        (BarUnit.SECOND, 1, lambda t: t.microsecond == 0),
        (BarUnit.SECOND, 15, lambda t: t.second % 15 == 0),
        (BarUnit.MINUTE, 1, lambda t: t.second == 0),
        (BarUnit.MINUTE, 5, lambda t: t.second == 0 and t.minute % 5 == 0),
        (BarUnit.MINUTE, 90, lambda t: t.second == 0 and t.minute in (0, 30)),
        (BarUnit.HOUR, 1, lambda t: (t.minute, t.second) == (0, 0)),
        (BarUnit.HOUR, 4, lambda t: (t.minute, t.second) == (0, 0) and t.hour % 4 == 0),
        (BarUnit.DAY, 1, lambda t: (t.hour, t.minute, t.second) == (0, 0, 0)),
        (BarUnit.WEEK, 1, lambda t: t.weekday() == 0 and t.hour == 0),
        (BarUnit.WEEK, 2, lambda t: t.weekday() == 0 and t.hour == 0),
        (BarUnit.MONTH, 1, lambda t: (t.day, t.hour) == (1, 0)),
        (BarUnit.MONTH, 3, lambda t: t.day == 1 and t.month in (1, 4, 7, 10)),
    ],
)
def test_bars_are_aligned_newest_first_and_consistent(
    unit: BarUnit, number: int, aligned: Any
) -> None:
    m = market(seed=18)
    bars = history(m, unit, number, limit=30)
    assert len(bars) == 30
    check_bars(bars)
    assert all(aligned(b.time) for b in bars)
    for newer, older in pairwise(bars):
        if unit is BarUnit.MONTH:
            months = (newer.time.year - older.time.year) * 12 + newer.time.month - older.time.month
            assert months == number
        else:
            assert newer.time - older.time == timedelta(seconds=_seconds(unit) * number)
    # Complete bars: open at the bucket start, close at the bucket end, never after now.
    newest = bars[0]
    end = _end(newest.time, unit, number)
    assert end.timestamp() <= T0
    assert newest.open == m.price_at(ES.id, newest.time.timestamp())
    assert newest.close == m.price_at(ES.id, end.timestamp())
    assert _end(end, unit, number) > at(T0)  # the next bar is still running
    # With the partial bar: it holds now and closes at the price at now.
    with_partial = history(m, unit, number, limit=30, partial=True, now=T0 + 0.6)
    current = with_partial[0]
    assert current.time <= at(T0 + 0.6) < _end(current.time, unit, number)
    assert current.close == m.price_at(ES.id, T0 + 0.6)
    check_bars(with_partial)


def _seconds(unit: BarUnit) -> int:
    return {BarUnit.SECOND: 1, BarUnit.MINUTE: 60, BarUnit.HOUR: 3600, BarUnit.DAY: 86_400}.get(
        unit, 7 * 86_400
    )


def _end(start: datetime, unit: BarUnit, number: int) -> datetime:
    if unit is BarUnit.MONTH:
        index = start.year * 12 + start.month - 1 + number
        return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)
    return start + timedelta(seconds=_seconds(unit) * number)


def test_a_minute_bar_bounds_the_second_bars_inside_it() -> None:
    m = market(seed=19)
    minutes = history(m, BarUnit.MINUTE, limit=5, partial=True, now=T0 + 42.5)
    seconds = history(m, BarUnit.SECOND, limit=400, partial=True, now=T0 + 42.5)
    for minute in minutes:
        inside = [s for s in seconds if minute.time <= s.time < minute.time + timedelta(minutes=1)]
        assert inside
        assert minute.high == max(s.high for s in inside)
        assert minute.low == min(s.low for s in inside)
        assert minute.open == inside[-1].open
        assert minute.close == inside[0].close
    # The partial minute closes at the price at now, like the partial second.
    assert minutes[0].close == seconds[0].close == m.price_at(ES.id, T0 + 42.5)


def test_dense_and_sparse_sampling_agree_with_the_path() -> None:
    m = market(seed=20)
    (minute,) = history(m, BarUnit.MINUTE, limit=1, now=T0)
    samples = [m.price_at(ES.id, minute.time.timestamp() + i) for i in range(61)]
    assert (minute.open, minute.high, minute.low, minute.close) == (
        samples[0],
        max(samples),
        min(samples),
        samples[-1],
    )
    # Coarser bars sample whole seconds of the same path: within the range of the minute bars.
    for unit, number, fine in ((BarUnit.MINUTE, 5, 5), (BarUnit.HOUR, 1, 60)):
        (coarse,) = history(m, unit, number, limit=1, now=T0)
        end = coarse.time.timestamp() + fine * 60
        minutes = history(m, BarUnit.MINUTE, limit=fine, now=end)
        assert minutes[-1].time == coarse.time
        assert (coarse.open, coarse.close) == (minutes[-1].open, minutes[0].close)
        assert min(b.low for b in minutes) <= coarse.low <= coarse.high
        assert coarse.high <= max(b.high for b in minutes)


def test_limit_keeps_the_most_recent_bars_and_is_capped() -> None:
    m = market(seed=22)
    everything = history(m, BarUnit.MINUTE, limit=200)
    assert history(m, BarUnit.MINUTE, limit=7) == everything[:7]
    assert len(history(m, BarUnit.SECOND, limit=MAX_BARS + 5000)) == MAX_BARS


def test_window_bounds_bucket_starts() -> None:
    m = market(seed=23)
    start, end = at(T0 - 3600), at(T0 - 1800 + 30)
    bars = history(m, BarUnit.MINUTE, limit=1000, start=start, end=end)
    assert len(bars) == 31
    assert bars[0].time == at(T0 - 1800)
    assert bars[-1].time == start
    assert history(m, BarUnit.MINUTE, start=at(T0 + 60), end=at(T0 + 120)) == []
    months = history(m, BarUnit.MONTH, start=datetime(2025, 1, 1, tzinfo=UTC))
    assert [b.time.month for b in months] == list(range(10, 0, -1))
    assert history(m, BarUnit.MINUTE, start=end, end=start) == []
    # A window that ends in the running bar: nothing unless the partial bar is wanted.
    tight = {"start": at(T0 + 1), "end": at(T0 + 50), "now": T0 + 30}
    assert history(m, BarUnit.MINUTE, **tight) == []  # type: ignore[arg-type]
    assert history(m, BarUnit.MINUTE, partial=True, **tight) == []  # type: ignore[arg-type]
    (running,) = history(
        m, BarUnit.MINUTE, partial=True, start=at(T0), end=at(T0 + 50), now=T0 + 30
    )
    assert running.time == at(T0)
    assert running.close == m.price_at(ES.id, T0 + 30)


def test_a_partial_bar_grows_its_volume() -> None:
    m = market(seed=24)
    volumes = [
        history(m, BarUnit.HOUR, limit=1, partial=True, now=T0 + minutes * 60)[0].volume
        for minutes in (1, 10, 29)
    ]
    assert volumes == sorted(volumes)
    assert volumes[0] < volumes[-1]


def test_tick_bars_group_trades_of_the_tape() -> None:
    m = market(seed=25)
    for size in (1, 10, 400):
        bars = history(m, BarUnit.TICK, size, limit=20, now=T0 + 0.3)
        check_bars(bars)
        assert len(bars) == 20
        for newer, older in pairwise(bars):
            assert newer.time - older.time == timedelta(seconds=size / TAPE_RATE)
        assert all(b.volume >= size for b in bars)
        newest = bars[0]
        last_trade = newest.time.timestamp() + (size - 1) / TAPE_RATE
        assert last_trade <= T0 + 0.3
        assert newest.close == m.price_at(ES.id, last_trade)
        assert newest.open == m.price_at(ES.id, newest.time.timestamp())
    (one,) = history(m, BarUnit.TICK, 1, limit=1, now=T0)
    assert one.open == one.high == one.low == one.close == m.price_at(ES.id, T0)
    # The running tick bar: only when asked for, closing at the last trade printed by now.
    partial = history(m, BarUnit.TICK, 10, limit=3, partial=True, now=T0 + 0.3)
    assert partial[0].time == at(T0)
    assert partial[0].close == m.price_at(ES.id, T0 + 0.25)
    assert partial[0].volume >= 2
    assert partial[1:] == history(m, BarUnit.TICK, 10, limit=2, now=T0 + 0.3)
    window = history(m, BarUnit.TICK, 4, limit=100, start=at(T0 - 10), now=T0)
    assert len(window) == 10
    assert window[-1].time == at(T0 - 10)


@pytest.mark.parametrize(
    ("unit", "number", "limit", "message"),
    [
        (BarUnit.UNSPECIFIED, 1, 10, "cannot be requested"),
        (99, 1, 10, "cannot be requested"),
        (BarUnit.MINUTE, 0, 10, "unit_number"),
        (BarUnit.MINUTE, 1, 0, "limit"),
    ],
)
def test_invalid_bar_requests(unit: Any, number: int, limit: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        history(market(), unit, number, limit=limit)


def test_bar_requests_need_aware_times() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        history(market(), BarUnit.MINUTE, start=datetime(2025, 1, 1))
    assert history(market(), 2, limit=3)[0].time.second == 0


def test_twenty_thousand_minute_bars_in_one_answer() -> None:
    m = market(seed=26)
    bars = history(m, BarUnit.MINUTE, limit=MAX_BARS, partial=True, now=T0 + 12.5)
    assert len(bars) == MAX_BARS
    assert bars[0].time == at(T0)
    assert bars[-1].time == at(T0 - (MAX_BARS - 1) * 60)
    # Spot checks against the path, across the noise-block and knot caches.
    for bar in bars[:: MAX_BARS // 7]:
        assert bar.open == m.price_at(ES.id, bar.time.timestamp())


def test_long_coarse_requests_are_consistent() -> None:
    m = market(seed=27)
    hours = history(m, BarUnit.HOUR, limit=1500)
    fives = history(m, BarUnit.MINUTE, 5, limit=1500)
    days = history(m, BarUnit.DAY, limit=200, contract=ZB)
    for bars in (hours, fives):
        check_bars(bars)
    check_bars(days, ZB)
    assert len(hours) == len(fives) == 1500


def test_an_expired_contract_is_listed_without_quotes_and_with_empty_history() -> None:
    expired = Contract("CON.F.US.EP.U25", "ESU5", "E-mini", ES.tick_size, ES.tick_value, False)
    m = market(expired=[expired])
    m.advance(T0)
    assert m.quotes(ES.id)
    assert not m.quotes(expired.id)
    assert not m.quotes("CON.F.US.NOPE.Z25")
    assert m.contracts == CONTRACTS  # the expired one is not quoted
    for unit in (BarUnit.TICK, BarUnit.MINUTE, BarUnit.HOUR, BarUnit.MONTH):
        assert history(m, unit, contract=expired) == []
    with pytest.raises(ValueError, match="unit_number"):
        history(m, BarUnit.MINUTE, 0, contract=expired)  # the arguments are still checked
    with pytest.raises(KeyError):
        history(m, BarUnit.MINUTE, contract=attrs.evolve(expired, id="CON.F.US.NOPE.Z25"))
