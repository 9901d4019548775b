"""Properties over random fills, marks, orders and day turns."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeforge_proto.rules import (
    COMBINE_50K,
    PRESETS,
    AccountRules,
    AccountState,
    AccountStatus,
    Action,
    Fill,
    ProposedOrder,
    apply_breaches,
    check_order,
    evaluate,
    to_dollars,
)

from .support import BUY, ES, MES, NOW, SELL, SPECS, TEST, opened

CONTRACTS = (ES, MES, TEST)
TICK = {contract: SPECS[contract].tick_size for contract in CONTRACTS}
FAST = settings(max_examples=150, deadline=None)

rules_st = st.sampled_from(sorted(PRESETS.values(), key=lambda rules: rules.name))
contract_st = st.sampled_from(CONTRACTS)
side_st = st.sampled_from((BUY, SELL))


@st.composite
def prices(draw: st.DrawFn, contract: str) -> Decimal:
    """A price on the contract's tick grid, around 5000."""
    ticks = draw(st.integers(min_value=-2_000, max_value=2_000))
    return Decimal(5000) + ticks * TICK[contract]


@st.composite
def fills(draw: st.DrawFn) -> Fill:
    contract = draw(contract_st)
    fee = draw(st.sampled_from((Decimal(0), Decimal("0.37"), Decimal("2.10"))))
    size = draw(st.integers(min_value=1, max_value=8))
    return Fill(contract, draw(side_st), size, draw(prices(contract)), fee=fee)


@st.composite
def marks_st(draw: st.DrawFn) -> dict[str, Decimal]:
    return {contract: draw(prices(contract)) for contract in CONTRACTS}


@st.composite
def states(draw: st.DrawFn, rules: AccountRules) -> AccountState:
    state = opened(rules)
    for fill in draw(st.lists(fills(), max_size=6)):
        state, _ = state.apply_fill(fill, SPECS[fill.contract_id])
    return state


@FAST
@given(st.lists(fills(), max_size=25), marks_st())
def test_fills_net_positions_and_pnl_exactly(
    sequence: list[Fill], marks: dict[str, Decimal]
) -> None:
    state = opened(COMBINE_50K)
    realized_total = Decimal(0)
    for fill in sequence:
        state, realized = state.apply_fill(fill, SPECS[fill.contract_id])
        realized_total += realized
    fees = sum((fill.fee for fill in sequence), Decimal(0))
    assert state.balance == 50_000 + realized_total - fees
    assert state.day_realized == realized_total - fees
    for contract in CONTRACTS:
        mine = [fill for fill in sequence if fill.contract_id == contract]
        net = sum(fill.signed_size for fill in mine)
        assert state.position(contract) == net
        held = state.holding(contract)
        if held is not None:
            assert held.size == net
    # Realized plus unrealized is the fills' cash flow plus the open positions at the marks.
    flows = sum(
        (
            to_dollars(
                -fill.signed_size * (fill.price - marks[fill.contract_id]), SPECS[fill.contract_id]
            )
            for fill in sequence
        ),
        Decimal(0),
    )
    assert realized_total + state.unrealized(marks, SPECS) == flows


@FAST
@given(rules_st, st.data())
def test_a_refused_order_never_changes_state(rules: AccountRules, data: st.DataObject) -> None:
    state = data.draw(states(rules))
    marks = data.draw(marks_st())
    for _ in range(8):
        contract = data.draw(contract_st)
        order = ProposedOrder(contract, data.draw(side_st), data.draw(st.integers(1, 20)))
        before = state
        verdict = check_order(state, rules, order, marks, SPECS)
        assert state == before
        if verdict.allowed:
            fill = Fill(order.contract_id, order.side, order.size, marks[contract])
            state, _ = state.apply_fill(fill, SPECS[contract])
        else:
            assert verdict.rule is not None
            assert verdict.message


@FAST
@given(rules_st, st.data())
def test_allowed_orders_keep_the_position_within_the_limit(
    rules: AccountRules, data: st.DataObject
) -> None:
    state = opened(rules)
    marks = {contract: Decimal(5000) for contract in CONTRACTS}
    limit = rules.max_contracts
    assert limit is not None
    for _ in range(12):
        contract = data.draw(contract_st)
        order = ProposedOrder(contract, data.draw(side_st), data.draw(st.integers(1, 60)))
        if check_order(state, rules, order, marks, SPECS).allowed:
            state, _ = state.apply_fill(
                Fill(contract, order.side, order.size, Decimal(5000)), SPECS[contract]
            )
        assessment = evaluate(state, rules, marks, SPECS, NOW)
        assert assessment.weighted_position <= limit


@FAST
@given(
    rules_st,
    st.booleans(),
    st.lists(st.tuples(st.lists(fills(), max_size=3), marks_st(), st.integers(0, 3)), max_size=10),
)
def test_the_trailing_floor_never_moves_down(
    rules: AccountRules, locked: bool, days: list[tuple[list[Fill], dict[str, Decimal], int]]
) -> None:
    if not locked:
        rules = attrs.evolve(rules, floor_lock=None)
    state = opened(rules)
    moment = NOW
    for day_fills, marks, skip in days:
        for fill in day_fills:
            state, _ = state.apply_fill(fill, SPECS[fill.contract_id])
        moment += timedelta(days=1 + skip)
        turned = state.turn_day(rules, moment, marks, SPECS)
        assert turned.floor >= state.floor
        assert turned.eod_high >= state.eod_high
        assert turned.floor >= turned.eod_high - rules.max_loss or turned.floor == rules.lock_level
        if rules.lock_level is not None:
            assert turned.floor <= rules.lock_level
        state = turned


@FAST
@given(rules_st, st.data())
def test_a_breach_always_leads_to_flatten_and_disable(
    rules: AccountRules, data: st.DataObject
) -> None:
    state = data.draw(states(rules))
    marks = data.draw(marks_st())
    assessment = evaluate(state, rules, marks, SPECS, NOW)
    if not assessment.breached:
        assert apply_breaches(assessment) == state
        return
    assert Action.CANCEL_WORKING_ORDERS in assessment.actions
    assert (Action.FLATTEN in assessment.actions) is not state.is_flat
    assert {Action.CLOSE_ACCOUNT, Action.DISABLE_FOR_DAY} & set(assessment.actions)
    after = apply_breaches(assessment)
    assert after.status is not AccountStatus.ACTIVE
    assert not after.can_trade
    for contract in CONTRACTS:
        held = after.position(contract)
        side = BUY if held <= 0 else SELL
        opening = ProposedOrder(contract, side.opposite if held else side, 1)
        assert not check_order(after, rules, opening, marks, SPECS).allowed
        if held:
            closing = ProposedOrder(contract, side, abs(held))
            assert check_order(after, rules, closing, marks, SPECS).allowed
