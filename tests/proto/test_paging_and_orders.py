"""Bar paging, customTags and reconciling, and symbol resolution: the pure helpers."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tradeforge_proto.core import (
    Bar,
    BarRequest,
    BarsCapExceeded,
    BarUnit,
    Contract,
    LocalProtocolError,
    Order,
    OrderSide,
    OrderStatus,
    OrderType,
)
from tradeforge_proto.orders import find_by_tag, new_custom_tag
from tradeforge_proto.paging import BarPager
from tradeforge_proto.providers.topstepx.symbols import active_contract, root_of

T0 = datetime(2025, 11, 24, tzinfo=UTC)


def minute_bars(end: datetime, count: int) -> list[Bar]:
    """The ``count`` most recent one-minute bars up to ``end``, newest first (as the gateway)."""
    return [
        Bar(end - timedelta(minutes=i), Decimal(1), Decimal(2), Decimal(0), Decimal(1), 1)
        for i in range(count)
    ]


def test_pager_walks_back_until_the_limit():
    request = BarRequest("C", BarUnit.MINUTE, 1, T0 - timedelta(days=30), T0)
    pager = BarPager(request, limit=25, page=10)
    ends = []
    while (page := pager.next_request()) is not None:
        ends.append(page.end)
        pager.add(minute_bars(page.end.replace(second=0, microsecond=0), page.limit))
    assert len(ends) == 3
    bars = pager.bars
    assert len(bars) == 25
    assert [b.time for b in bars] == sorted(b.time for b in bars)
    assert bars[-1].time == T0


def test_pager_stops_on_a_short_page_an_empty_page_or_the_start():
    request = BarRequest("C", BarUnit.MINUTE, 1, T0 - timedelta(minutes=15), T0)
    short = BarPager(request, page=10)
    short.add(minute_bars(T0, 10))
    short.add(minute_bars(T0 - timedelta(minutes=10), 3))
    assert short.next_request() is None
    assert len(short.bars) == 13
    reached = BarPager(BarRequest("C", BarUnit.MINUTE, 1, T0 - timedelta(minutes=5), T0), page=6)
    reached.add(minute_bars(T0, 6))  # the oldest bar is at the start already
    assert reached.next_request() is None
    repeat = BarPager(request, page=3)
    repeat.add(minute_bars(T0, 3))
    repeat.add(minute_bars(T0, 3))  # nothing new: done rather than looping
    assert repeat.next_request() is None
    with pytest.raises(LocalProtocolError, match="no page"):
        repeat.add([])
    with pytest.raises(LocalProtocolError, match="positive"):
        BarPager(request, limit=0)


def test_custom_tags_are_unique_and_find_their_order():
    rng = random.Random(1)
    tags = {new_custom_tag(rng, 1_700_000_000.123) for _ in range(1000)}
    assert len(tags) == 1000
    assert all(tag.startswith("tf-") for tag in tags)
    order = Order(
        1, 7, "C", T0, OrderStatus.FILLED, OrderType.MARKET, OrderSide.BUY, 1, custom_tag="x"
    )
    assert find_by_tag([order], "x") is order
    assert find_by_tag([order], "y") is None
    assert find_by_tag([order], None) is None


def test_symbols_resolve_to_the_active_contract():
    def contract(cid: str, active: bool, symbol_id: str | None) -> Contract:
        return Contract(cid, cid, cid, Decimal("0.25"), Decimal(5), active, symbol_id)

    es_old = contract("CON.F.US.EP.U25", False, "F.US.EP")
    es = contract("CON.F.US.EP.Z25", True, "F.US.EP")
    bare = contract("CON.F.US.MNQ.Z25", True, None)
    assert active_contract([es_old, es, bare], "ES") is es
    assert active_contract([es_old, es, bare], " ep ") is es
    assert active_contract([es_old, es, bare], "MNQ") is bare
    assert active_contract([es_old], "ES") is None
    assert root_of(bare) == "MNQ"
    assert root_of(contract("ODD", True, None)) == "ODD"


def test_pager_refuses_past_its_cap_after_one_bar_over_it():
    request = BarRequest("C", BarUnit.MINUTE, 1, T0 - timedelta(minutes=60), T0)
    with pytest.raises(LocalProtocolError, match="max_bars must be positive"):
        BarPager(request, max_bars=0)
    with pytest.raises(BarsCapExceeded, match="limit 30 is above the cap of 25 bars"):
        BarPager(request, limit=30, max_bars=25)
    pager = BarPager(request, page=10, max_bars=25)
    asked = []

    def fetch_all() -> None:
        while (page := pager.next_request()) is not None:
            asked.append(page.limit)
            pager.add(minute_bars(page.end.replace(second=0, microsecond=0), page.limit))

    with pytest.raises(BarsCapExceeded) as capped:
        fetch_all()
    assert capped.value.cap == 25
    assert asked == [10, 10, 6]  # 26 bars in all: one past the cap, never a fourth page
    assert pager.next_request() is None


def test_a_window_far_longer_than_the_cap_is_refused_before_any_request():
    year = BarRequest("C", BarUnit.SECOND, 1, T0 - timedelta(days=365), T0)
    with pytest.raises(BarsCapExceeded, match="the window spans 31,536,000 bars"):
        BarPager(year)
    assert BarPager(year, limit=500).next_request() is not None  # the newest 500 are fine
    quarter = BarRequest("C", BarUnit.MINUTE, 1, T0 - timedelta(days=91), T0)
    assert BarPager(quarter).next_request() is not None  # 131,040 minutes may hold < 100,000
    months = BarRequest("C", BarUnit.MONTH, 1, T0 - timedelta(days=3650), T0)
    assert BarPager(months, max_bars=40).next_request() is not None  # 130 short months
    ticks = BarRequest("C", BarUnit.TICK, 1, T0 - timedelta(days=3650), T0)
    assert BarPager(ticks, max_bars=10).next_request() is not None  # ticks have no length
