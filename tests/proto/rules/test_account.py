"""The account state: netting fills at average price, the day's turn, the floor and its lock."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import attrs
import pytest

from tradeforge_proto.rules import (
    COMBINE_50K,
    TRANSITIONS,
    AccountState,
    AccountStatus,
    DayResult,
    Event,
    Fill,
    MissingFigure,
)

from .support import BUY, ES, MES, NOW, SELL, SPECS, TEST, filled, long_test, opened

NEXT_DAY = NOW + timedelta(days=1)


def test_a_new_account() -> None:
    state = opened(COMBINE_50K)
    assert state.status is AccountStatus.ACTIVE
    assert state.can_trade
    assert state.is_flat
    assert state.day == date(2026, 12, 2)
    assert (state.balance, state.eod_high, state.floor) == tuple(
        map(Decimal, (50_000, 50_000, 48_000))
    )
    assert state.position(ES) == 0
    assert state.holding(ES) is None


def test_adding_averages_the_price_and_closing_realizes_against_it() -> None:
    state = filled(
        opened(COMBINE_50K),
        Fill(ES, BUY, 1, Decimal("5000")),
        Fill(ES, BUY, 2, Decimal("5003")),
    )
    held = state.holding(ES)
    assert held is not None
    assert (held.size, held.average_price) == (3, Decimal("5002"))
    state, realized = state.apply_fill(Fill(ES, SELL, 1, Decimal("5004")), SPECS[ES])
    assert realized == 100  # 2 points above the average, $50 a point
    assert state.position(ES) == 2
    assert state.holding(ES) == attrs.evolve(held, size=2, cost=Decimal("10004"))
    state, realized = state.apply_fill(Fill(ES, SELL, 2, Decimal("5001")), SPECS[ES])
    assert realized == -100
    assert state.is_flat
    assert state.balance == 50_000
    assert state.day_realized == 0


def test_a_fill_through_the_position_flips_it_at_the_fill_price() -> None:
    state = filled(opened(COMBINE_50K), Fill(MES, BUY, 2, Decimal("5000")))
    state, realized = state.apply_fill(
        Fill(MES, SELL, 5, Decimal("4990"), fee=Decimal("1.50")), SPECS[MES]
    )
    assert realized == -100  # 10 points on 2 micros at $5 a point
    held = state.holding(MES)
    assert held is not None
    assert (held.size, held.average_price) == (-3, Decimal(4990))
    assert state.balance == Decimal("49898.50")
    assert state.day_realized == Decimal("-101.50")
    state, realized = state.apply_fill(Fill(MES, BUY, 3, Decimal("4980")), SPECS[MES])
    assert realized == 150
    assert state.is_flat


def test_a_partial_close_of_an_uneven_average_keeps_the_total_exact() -> None:
    state = filled(
        opened(COMBINE_50K),
        Fill(TEST, SELL, 1, Decimal("100.00")),
        Fill(TEST, SELL, 2, Decimal("100.01")),
    )
    state, first = state.apply_fill(Fill(TEST, BUY, 1, Decimal("99")), SPECS[TEST])
    state, second = state.apply_fill(Fill(TEST, BUY, 2, Decimal("99")), SPECS[TEST])
    assert first + second == Decimal("3.02")
    assert state.balance == Decimal("50003.02")


def test_holdings_stay_sorted_and_flat_ones_go() -> None:
    state = filled(
        opened(COMBINE_50K), Fill(TEST, BUY, 1, Decimal(1)), Fill(ES, BUY, 1, Decimal(1))
    )
    assert [h.contract_id for h in state.holdings] == [ES, TEST]
    state = filled(state, Fill(ES, SELL, 1, Decimal(1)))
    assert [h.contract_id for h in state.holdings] == [TEST]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"size": 0}, "size must be a positive"),
        ({"size": True}, "size must be a positive"),
        ({"price": Decimal(0)}, "price must be a positive"),
        ({"price": 5}, "price must be a positive"),
    ],
)
def test_a_fill_is_checked(fields: dict[str, object], message: str) -> None:
    base: dict[str, object] = {"contract_id": ES, "side": BUY, "size": 1, "price": Decimal(1)}
    with pytest.raises(ValueError, match=message):
        Fill(**(base | fields))  # type: ignore[arg-type]


def test_figures_need_a_mark_and_a_spec_for_every_holding() -> None:
    state = long_test(COMBINE_50K)
    with pytest.raises(MissingFigure, match="no mark for contract TEST"):
        state.equity({}, SPECS)
    with pytest.raises(MissingFigure, match="no tick spec for contract TEST"):
        state.equity({TEST: Decimal(1)}, {})
    assert state.day_pnl({TEST: Decimal("9990")}, SPECS) == -10


def test_the_day_turn_raises_the_high_and_trails_the_floor() -> None:
    state = long_test(COMBINE_50K)
    marks = {TEST: Decimal("10500")}
    assert state.turn_day(COMBINE_50K, NOW + timedelta(hours=1), marks, SPECS) is state
    turned = state.turn_day(COMBINE_50K, NEXT_DAY, marks, SPECS)
    assert turned.day == date(2026, 12, 3)
    assert (turned.eod_high, turned.floor) == (Decimal(50_500), Decimal(48_500))
    assert turned.day_open_equity == 50_500
    assert turned.history == (DayResult(date(2026, 12, 2), Decimal(500)),)
    # The carried position counts only its move during the new day.
    assert turned.day_pnl({TEST: Decimal("10400")}, SPECS) == -100
    lower = turned.turn_day(COMBINE_50K, NEXT_DAY + timedelta(days=1), {TEST: Decimal(9000)}, SPECS)
    assert (lower.eod_high, lower.floor) == (Decimal(50_500), Decimal(48_500))
    assert lower.history[-1] == DayResult(date(2026, 12, 3), Decimal(-1500))


def test_the_floor_locks_at_the_configured_level() -> None:
    marks = {TEST: Decimal("13000")}
    state = long_test(COMBINE_50K)
    assert state.turn_day(COMBINE_50K, NEXT_DAY, marks, SPECS).floor == 50_000
    raised = attrs.evolve(COMBINE_50K, floor_lock=Decimal(100))
    assert state.turn_day(raised, NEXT_DAY, marks, SPECS).floor == 50_100
    unlocked = attrs.evolve(COMBINE_50K, floor_lock=None)
    assert state.turn_day(unlocked, NEXT_DAY, marks, SPECS).floor == 51_000


def test_a_suspension_ends_at_the_turn_but_a_closed_account_stays_closed() -> None:
    state = opened(COMBINE_50K).apply_event(Event.DAILY_LOSS_BREACHED)
    assert state.status is AccountStatus.DISABLED_FOR_DAY
    assert not state.can_trade
    assert state.turn_day(COMBINE_50K, NEXT_DAY, {}, {}).status is AccountStatus.ACTIVE
    closed = state.apply_event(Event.MAX_LOSS_BREACHED)
    assert closed.turn_day(COMBINE_50K, NEXT_DAY, {}, {}).status is AccountStatus.CLOSED


def test_fills_still_apply_to_a_closed_account() -> None:
    state = long_test(COMBINE_50K).apply_event(Event.MAX_LOSS_BREACHED)
    state = filled(state, Fill(TEST, SELL, 1, Decimal("9000")))
    assert state.is_flat
    assert state.balance == 49_000


def test_every_status_and_event_has_a_transition() -> None:
    assert set(TRANSITIONS) == {(s, e) for s in AccountStatus for e in Event}
    closed = [TRANSITIONS[AccountStatus.CLOSED, e] for e in Event]
    assert closed == [AccountStatus.CLOSED] * len(Event)


def test_open_uses_the_trading_day_of_now() -> None:
    evening = datetime(2026, 12, 2, 23, 30, tzinfo=UTC)  # 17:30 in Chicago
    assert AccountState.open(COMBINE_50K, evening).day == date(2026, 12, 3)
