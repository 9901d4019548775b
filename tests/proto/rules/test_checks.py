"""Each preset's rules at, just below and just past their limits; orders and assessments."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import attrs
import pytest

from tradeforge_proto.core.enums import OrderType
from tradeforge_proto.core.models import OrderRequest
from tradeforge_proto.rules import (
    COMBINE_50K,
    COMBINE_100K,
    COMBINE_150K,
    EXPRESS_FUNDED_50K,
    AccountRules,
    AccountStatus,
    Action,
    Decision,
    Event,
    Fill,
    ProposedOrder,
    Rule,
    apply_breaches,
    check_order,
    evaluate,
)

from .support import BUY, ES, MES, NOW, SELL, SPECS, TEST, filled, long_test, opened

PRESETS = [COMBINE_50K, COMBINE_100K, COMBINE_150K, EXPRESS_FUNDED_50K]
CENT = Decimal("0.01")
ENTRY = Decimal(10000)
"""The TEST position's entry: one dollar a point, so the mark's distance is the P&L."""


def _limit(value: Decimal | None) -> Decimal:
    assert value is not None
    return value


def marked(loss: Decimal) -> dict[str, Decimal]:
    return {TEST: ENTRY - loss}


@pytest.fixture(params=PRESETS, ids=lambda rules: rules.name)
def rules(request: pytest.FixtureRequest) -> AccountRules:
    preset: AccountRules = request.param
    return preset


@pytest.mark.parametrize(("extra", "allowed"), [(-CENT * 10, True), (0, True), (CENT * 10, False)])
def test_max_position_in_micros(rules: AccountRules, extra: Decimal, allowed: bool) -> None:
    limit = _limit(rules.max_contracts)
    micros = int((limit + extra) * 10)
    verdict = check_order(opened(rules), rules, ProposedOrder(MES, BUY, micros), {}, SPECS)
    assert verdict.allowed is allowed
    if not allowed:
        assert verdict.rule is Rule.MAX_POSITION
        assert (verdict.limit, verdict.current, verdict.after) == (limit, Decimal(0), limit + extra)


@pytest.mark.parametrize(("extra", "allowed"), [(-1, True), (0, True), (1, False)])
def test_max_position_in_minis_on_top_of_a_holding(
    rules: AccountRules, extra: int, allowed: bool
) -> None:
    limit = int(_limit(rules.max_contracts))
    state = filled(opened(rules), Fill(ES, SELL, 2, ENTRY))
    marks = {ES: ENTRY}
    verdict = check_order(state, rules, ProposedOrder(ES, SELL, limit - 2 + extra), marks, SPECS)
    assert verdict.allowed is allowed
    assert verdict.decision is (Decision.ALLOWED if allowed else Decision.REFUSED)
    flipped = check_order(state, rules, ProposedOrder(ES, BUY, limit + 2 + extra), marks, SPECS)
    assert flipped.allowed is allowed


def test_the_position_message_names_the_rule() -> None:
    verdict = check_order(opened(COMBINE_50K), COMBINE_50K, ProposedOrder(ES, BUY, 6), {}, SPECS)
    assert verdict.message == (
        "order would hold 6 contracts (weighted), above the 50K Combine's maximum of 5"
    )
    micro = check_order(opened(COMBINE_50K), COMBINE_50K, ProposedOrder(MES, BUY, 51), {}, SPECS)
    assert "hold 5.1 contracts" in micro.message


def test_a_core_order_request_can_be_checked() -> None:
    request = OrderRequest(account_id=1, contract_id=ES, side=BUY, type=OrderType.MARKET, size=6)
    assert not check_order(opened(COMBINE_50K), COMBINE_50K, request, {}, SPECS).allowed


@pytest.mark.parametrize(("past", "breached"), [(-CENT, False), (0, True), (CENT, True)])
def test_daily_loss(rules: AccountRules, past: Decimal, breached: bool) -> None:
    limit = _limit(rules.daily_loss_limit)
    marks = marked(limit + past)
    state = long_test(rules)
    assessment = evaluate(state, rules, marks, SPECS, NOW)
    assert (Rule.DAILY_LOSS in {b.rule for b in assessment.breaches}) is breached
    assert assessment.daily_loss_remaining == max(-past, Decimal(0))
    assert assessment.day_pnl == -(limit + past)
    verdict = check_order(state, rules, ProposedOrder(TEST, BUY, 1), marks, SPECS)
    assert verdict.allowed is not breached
    if breached:
        assert verdict.rule is Rule.DAILY_LOSS
        assert (verdict.limit, verdict.current) == (limit, limit + past)
        assert "daily loss limit" in verdict.message
        assert Action.DISABLE_FOR_DAY in assessment.actions
        assert apply_breaches(assessment).status is AccountStatus.DISABLED_FOR_DAY
    else:
        assert [w.rule for w in assessment.warnings] == [Rule.DAILY_LOSS]
        assert assessment.actions == ()


@pytest.mark.parametrize(("past", "breached"), [(-CENT, False), (0, True), (CENT, True)])
def test_max_loss(rules: AccountRules, past: Decimal, breached: bool) -> None:
    no_daily = attrs.evolve(rules, daily_loss_limit=None)
    marks = marked(rules.max_loss + past)
    state = long_test(no_daily)
    assessment = evaluate(state, no_daily, marks, SPECS, NOW)
    assert [b.rule for b in assessment.breaches] == ([Rule.MAX_LOSS] if breached else [])
    assert assessment.max_loss_remaining == -past
    assert assessment.daily_loss_remaining is None
    verdict = check_order(state, no_daily, ProposedOrder(TEST, BUY, 1), marks, SPECS)
    assert verdict.allowed is not breached
    if breached:
        assert verdict.rule is Rule.MAX_LOSS
        assert verdict.limit == rules.initial_floor
        assert assessment.actions == (
            Action.FLATTEN,
            Action.CANCEL_WORKING_ORDERS,
            Action.CLOSE_ACCOUNT,
        )
        assert apply_breaches(assessment).status is AccountStatus.CLOSED
    else:
        assert [w.rule for w in assessment.warnings] == [Rule.MAX_LOSS]


def test_both_limits_at_once_close_the_account(rules: AccountRules) -> None:
    assessment = evaluate(long_test(rules), rules, marked(rules.max_loss), SPECS, NOW)
    assert {b.rule for b in assessment.breaches} == {Rule.MAX_LOSS, Rule.DAILY_LOSS}
    assert Action.CLOSE_ACCOUNT in assessment.actions
    assert Action.DISABLE_FOR_DAY not in assessment.actions
    assert apply_breaches(assessment).status is AccountStatus.CLOSED


@pytest.mark.parametrize(("short", "warned"), [(-CENT, False), (0, True), (CENT, True)])
def test_warnings_start_at_the_warning_share(
    rules: AccountRules, short: Decimal, warned: bool
) -> None:
    daily = _limit(rules.daily_loss_limit)
    state = long_test(rules)
    assessment = evaluate(state, rules, marked(daily * rules.warning_share + short), SPECS, NOW)
    assert bool(assessment.warnings) is warned
    assert not assessment.breached
    no_daily = attrs.evolve(rules, daily_loss_limit=None)
    loss = rules.max_loss * rules.warning_share + short
    assessment = evaluate(state, no_daily, marked(loss), SPECS, NOW)
    assert bool(assessment.warnings) is warned


def test_warning_messages() -> None:
    state = long_test(COMBINE_50K)
    assessment = evaluate(state, COMBINE_50K, marked(Decimal(1_700)), SPECS, NOW)
    messages = [w.message for w in assessment.warnings]
    assert messages == [
        "equity $48,300.00 is $300.00 above the 50K Combine's maximum loss floor of $48,000.00",
    ]
    assessment = evaluate(state, COMBINE_50K, marked(Decimal(850)), SPECS, NOW)
    assert assessment.warnings[0].message == (
        "today's loss of $850.00 is 85% of the 50K Combine's daily loss limit of $1,000.00"
    )


def test_reducing_orders_pass_in_every_status() -> None:
    state = long_test(COMBINE_50K, size=3)
    marks = marked(Decimal(5_000))
    for status in AccountStatus:
        held = attrs.evolve(state, status=status)
        assert check_order(held, COMBINE_50K, ProposedOrder(TEST, SELL, 3), marks, SPECS).allowed
        assert not check_order(
            held, COMBINE_50K, ProposedOrder(TEST, SELL, 4), marks, SPECS
        ).allowed
        assert not check_order(held, COMBINE_50K, ProposedOrder(TEST, BUY, 1), marks, SPECS).allowed


def test_a_closed_or_disabled_account_refuses_new_risk() -> None:
    state = opened(COMBINE_50K)
    order = ProposedOrder(ES, BUY, 1)
    closed = check_order(state.apply_event(Event.MAX_LOSS_BREACHED), COMBINE_50K, order, {}, SPECS)
    assert closed.rule is Rule.ACCOUNT_CLOSED
    assert closed.message == "the 50K Combine account is closed: its maximum loss was reached"
    disabled = state.apply_event(Event.DAILY_LOSS_BREACHED)
    verdict = check_order(disabled, COMBINE_50K, order, {}, SPECS)
    assert verdict.rule is Rule.TRADING_DISABLED
    assert (verdict.limit, verdict.current, verdict.after) == (None, None, None)
    flat = evaluate(disabled, COMBINE_50K, {}, SPECS, NOW)
    assert flat.actions == (Action.CANCEL_WORKING_ORDERS,)


def test_a_breach_already_applied_asks_only_for_the_flatten() -> None:
    state = long_test(COMBINE_50K).apply_event(Event.DAILY_LOSS_BREACHED)
    assessment = evaluate(state, COMBINE_50K, marked(Decimal(1_000)), SPECS, NOW)
    assert assessment.actions == (Action.FLATTEN, Action.CANCEL_WORKING_ORDERS)
    closed = state.apply_event(Event.MAX_LOSS_BREACHED)
    assessment = evaluate(closed, COMBINE_50K, marked(Decimal(2_000)), SPECS, NOW)
    assert assessment.actions == (Action.FLATTEN, Action.CANCEL_WORKING_ORDERS)


def test_a_due_day_turn_is_assessed_and_reported() -> None:
    state = long_test(COMBINE_50K).apply_event(Event.DAILY_LOSS_BREACHED)
    marks = marked(Decimal(1_000))
    assessment = evaluate(state, COMBINE_50K, marks, SPECS, NOW + timedelta(days=1))
    assert assessment.actions == (Action.TURN_DAY,)
    assert assessment.status is AccountStatus.ACTIVE
    assert assessment.day_pnl == 0
    assert assessment.state.day == assessment.day > state.day
    assert assessment.balance == 50_000
    assert assessment.floor == 48_000
    assert assessment.equity == 49_000


@pytest.mark.parametrize(("short", "reached"), [(CENT, False), (0, True), (-CENT, True)])
def test_profit_target(rules: AccountRules, short: Decimal, reached: bool) -> None:
    target = rules.profit_target
    if target is None:
        assessment = evaluate(opened(rules), rules, {}, SPECS, NOW)
        assert assessment.target_reached is None
        assert assessment.profit_remaining is None
        return
    state = filled(long_test(rules), Fill(TEST, SELL, 1, ENTRY + target - short))
    assessment = evaluate(state, rules, {}, SPECS, NOW)
    assert assessment.target_reached is reached
    assert assessment.profit_remaining == max(short, Decimal(0))
    # Unrealized profit does not count towards the target.
    assert not evaluate(long_test(rules), rules, {TEST: ENTRY + target}, SPECS, NOW).target_reached


def test_position_remaining() -> None:
    state = filled(opened(COMBINE_50K), Fill(MES, BUY, 12, ENTRY), Fill(ES, SELL, 1, ENTRY))
    marks = {MES: ENTRY, ES: ENTRY}
    assessment = evaluate(state, COMBINE_50K, marks, SPECS, NOW)
    assert assessment.weighted_position == Decimal("2.2")
    assert assessment.position_remaining == Decimal("2.8")
    unlimited = attrs.evolve(COMBINE_50K, max_contracts=None)
    assert evaluate(state, unlimited, marks, SPECS, NOW).position_remaining is None
    big = ProposedOrder(ES, SELL, 100)
    assert check_order(state, unlimited, big, marks, SPECS).allowed


def _with_days(rules: AccountRules, *pnls: int) -> tuple[object, ...]:
    state = opened(rules)
    moment = NOW
    for pnl in pnls:
        state = filled(state, Fill(TEST, BUY, 1, ENTRY), Fill(TEST, SELL, 1, ENTRY + pnl))
        moment += timedelta(days=1)
        state = state.turn_day(rules, moment, {}, SPECS)
    consistency = evaluate(state, rules, {}, SPECS, moment).consistency
    assert consistency is not None
    return (consistency.best_day, consistency.total_profit, consistency.share, consistency.met)


def test_consistency_tracks_the_best_days_share() -> None:
    half = Decimal("0.5")
    assert _with_days(COMBINE_50K, 500, 500) == (500, 1000, half, False)
    assert _with_days(COMBINE_50K, 499, 501, 0) == (501, 1000, Decimal("0.501"), False)
    assert _with_days(COMBINE_50K, 500, 300, 200) == (500, 1000, half, False)
    assert _with_days(COMBINE_50K, 499, 301, 200) == (499, 1000, Decimal("0.499"), True)
    assert _with_days(COMBINE_50K, -100, -50) == (0, -150, None, False)
    assert _with_days(COMBINE_50K) == (0, 0, None, False)
    looser = attrs.evolve(COMBINE_50K, consistency_share=Decimal("0.6"))
    assert _with_days(looser, 500, 300, 200)[3] is True
    assert evaluate(opened(EXPRESS_FUNDED_50K), EXPRESS_FUNDED_50K, {}, {}, NOW).consistency is None
