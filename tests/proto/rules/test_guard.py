"""The risk guard: rebuilt from the gateway's figures, fed by stream events, asked before orders."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import attrs
import pytest

from tradeforge_proto.core.enums import OrderSide, OrderStatus, OrderType, PositionSide
from tradeforge_proto.core.errors import LocalProtocolError, RiskRejected
from tradeforge_proto.core.events import (
    AccountUpdated,
    Connected,
    FillReceived,
    OrderUpdated,
    PositionUpdated,
    QuoteUpdated,
)
from tradeforge_proto.core.models import (
    Account,
    Contract,
    Fill,
    Order,
    OrderRequest,
    Position,
    Quote,
)
from tradeforge_proto.rules import (
    COMBINE_50K,
    AccountStatus,
    Decision,
    Holding,
    MissingFigure,
    ProposedOrder,
    Rule,
)
from tradeforge_proto.rules.checks import working_exposure
from tradeforge_proto.rules.guard import RiskGuard, mark_of

from .support import BUY, ES, MES, NOW, SELL

ID = 20258289
OTHER = 20258288
RULES = attrs.evolve(COMBINE_50K, max_contracts=Decimal(2))
CONTRACTS = {
    ES: Contract(ES, "ESZ6", "E-mini S&P 500", Decimal("0.25"), Decimal("12.5"), True),
    MES: Contract(MES, "MESZ6", "Micro E-mini S&P 500", Decimal("0.25"), Decimal("1.25"), True),
}
NEXT_DAY = NOW + timedelta(days=1)


def account(balance: str, account_id: int = ID) -> Account:
    return Account(account_id, "50K", Decimal(balance), can_trade=True)


def position(
    contract_id: str,
    size: int,
    price: str,
    *,
    account_id: int = ID,
    side: PositionSide | None = None,
) -> Position:
    if side is None:
        side = PositionSide.SHORT if size < 0 else PositionSide.LONG
    return Position(1, account_id, contract_id, NOW, side, abs(size), Decimal(price))


def trade(
    trade_id: int,
    pnl: str | None,
    fees: str = "0",
    *,
    commissions: str | None = None,
    account_id: int = ID,
    voided: bool = False,
    when: timedelta = timedelta(0),
) -> Fill:
    return Fill(
        id=trade_id,
        account_id=account_id,
        contract_id=ES,
        created_at=NOW + when,
        price=Decimal(5000),
        side=OrderSide.SELL,
        size=1,
        order_id=trade_id,
        fees=Decimal(fees),
        commissions=None if commissions is None else Decimal(commissions),
        voided=voided,
        profit_and_loss=None if pnl is None else Decimal(pnl),
    )


def quote(
    contract_id: str, last: str | None = None, bid: str | None = None, ask: str | None = None
) -> QuoteUpdated:
    def number(text: str | None) -> Decimal | None:
        return None if text is None else Decimal(text)

    return QuoteUpdated(
        Quote(contract_id, last_price=number(last), best_bid=number(bid), best_ask=number(ask))
    )


def synced(
    *positions: Position,
    balance: str = "50000",
    trades: tuple[Fill, ...] = (),
    eod_high: Decimal | None = None,
) -> RiskGuard:
    guard = RiskGuard(RULES, ID, eod_high=eod_high)
    guard.sync(account(balance), positions, trades, CONTRACTS, NOW)
    return guard


def long_es(entry: str = "5000") -> RiskGuard:
    """One ES held at ``entry``, marked there: each point is $50."""
    guard = synced(position(ES, 1, entry))
    assert guard.observe(quote(ES, entry), NOW) == ()
    return guard


# --- sync ---


def test_sync_takes_the_gateway_figures() -> None:
    trades = (
        trade(1, None, "1.37"),  # the opening half-turn: fees only
        trade(2, "400", "1.37"),
        trade(3, "-900", voided=True),
        trade(4, "-900", when=-timedelta(days=1)),  # yesterday's
        trade(5, "-900", account_id=OTHER),
    )
    guard = synced(
        position(MES, 2, "5000.25"),
        position(ES, -1, "5001"),
        position(ES, 3, "4990", account_id=OTHER),
        balance="50300",
        trades=trades,
    )
    state = guard.state
    assert state is not None
    assert state.balance == Decimal(50300)
    assert state.day_realized == Decimal("397.26")
    assert state.day_open_equity == Decimal("49902.74")
    assert state.holdings == (Holding(ES, -1, Decimal(-5001)), Holding(MES, 2, Decimal("10000.50")))
    assert state.eod_high == Decimal(50000)
    assert state.floor == Decimal(48000)
    assert state.status is AccountStatus.ACTIVE
    assert guard.rules is RULES
    assert guard.account_id == ID
    assert guard.unpriced == (ES, MES)


@pytest.mark.parametrize(
    ("eod_high", "floor"),
    [(None, "48000"), (Decimal(51000), "49000"), (Decimal(53000), "50000")],
)
def test_the_end_of_day_high_sets_the_floor_up_to_the_lock(
    eod_high: Decimal | None, floor: str
) -> None:
    guard = synced(eod_high=eod_high)
    assert guard.state is not None
    assert guard.state.floor == Decimal(floor)


def test_without_a_lock_the_floor_trails_for_ever() -> None:
    guard = RiskGuard(attrs.evolve(RULES, floor_lock=None), ID, eod_high=Decimal(53000))
    guard.sync(account("53000"), (), (), CONTRACTS, NOW)
    assert guard.state is not None
    assert guard.state.floor == Decimal(51000)


def test_sync_raises_the_high_to_the_day_open() -> None:
    guard = synced(balance="50700", trades=(trade(1, "-300"),))  # opened at 51,000
    assert guard.state is not None
    assert (guard.state.eod_high, guard.state.floor) == (Decimal(51000), Decimal(49000))


def test_sync_refuses_another_account() -> None:
    guard = RiskGuard(RULES, ID)
    with pytest.raises(ValueError, match=f"for account {ID}, not {OTHER}"):
        guard.sync(account("50000", OTHER), (), (), CONTRACTS, NOW)


# --- checks ---


def test_an_oversize_order_is_refused_with_the_rule_and_figures() -> None:
    guard = synced()
    order = OrderRequest(account_id=ID, contract_id=ES, side=BUY, type=OrderType.MARKET, size=3)
    verdict = guard.check(order, NOW)
    assert verdict.decision is Decision.REFUSED
    assert verdict.rule is Rule.MAX_POSITION
    assert (verdict.limit, verdict.current, verdict.after) == (Decimal(2), Decimal(0), Decimal(3))
    error = RiskRejected(verdict)
    assert isinstance(error, LocalProtocolError)
    assert error.verdict is verdict
    assert str(error) == (
        "order refused by the risk guard (max_position: limit 2, current 0, after 3): order would "
        "hold 3 contracts (weighted), above the 50K Combine's maximum of 2"
    )
    assert guard.check(ProposedOrder(ES, BUY, 2), NOW).allowed


def test_a_reducing_order_is_allowed() -> None:
    guard = long_es()
    assert guard.check(ProposedOrder(ES, BUY, 2), NOW).rule is Rule.MAX_POSITION
    verdict = guard.check(ProposedOrder(ES, SELL, 1), NOW)
    assert verdict.allowed
    assert verdict.message == "order reduces a position"


def test_without_a_mark_only_a_reducing_order_goes() -> None:
    guard = synced(position(MES, 2, "5000"))
    assert guard.check(ProposedOrder(MES, SELL, 2), NOW).allowed
    verdict = guard.check(ProposedOrder(MES, BUY, 1), NOW)
    assert verdict.decision is Decision.REFUSED
    assert verdict.rule is None
    assert verdict.message == (
        f"no mark for contract {MES}: the 50K Combine's loss limits cannot be judged, "
        "so only an order that reduces a position may go"
    )
    assert str(RiskRejected(verdict)).startswith(
        "order refused by the risk guard (no rule could be judged): no mark for contract"
    )
    with pytest.raises(MissingFigure, match="no mark"):
        guard.assessment(NOW)
    assert guard.observe(quote(MES, bid="4999.75", ask="5000.25"), NOW) == ()
    assert guard.marks == {MES: Decimal(5000)}
    assert guard.unpriced == ()
    assert guard.check(ProposedOrder(MES, BUY, 1), NOW).allowed


def test_a_mark_set_by_hand_prices_a_holding_until_a_quote_moves_it() -> None:
    guard = synced(position(MES, 2, "5000"))
    guard.set_mark(MES, Decimal("4990"))
    assert guard.unpriced == ()
    assert guard.assessment(NOW).day_pnl == Decimal(-100)  # 2 MES, 10 points, $5 a point
    assert guard.observe(quote(MES, bid="4999.75", ask="5000.25"), NOW) == ()
    assert guard.marks == {MES: Decimal(5000)}
    for bad in (Decimal(0), Decimal("NaN"), 5000):
        with pytest.raises(ValueError, match="positive Decimal"):
            guard.set_mark(MES, bad)  # type: ignore[arg-type]


def test_a_contract_without_a_tick_spec_cannot_be_judged() -> None:
    guard = RiskGuard(RULES, ID)
    guard.sync(account("50000"), (position(ES, 1, "5000"),), (), {}, NOW)
    guard.observe(quote(ES, "5000"), NOW)
    unpriced = guard.unpriced
    assert unpriced == (ES,)
    verdict = guard.check(ProposedOrder(ES, BUY, 1), NOW)
    assert verdict.message.startswith(f"no tick spec for contract {ES}: ")
    guard.sync(account("50000"), (position(ES, 1, "5000"),), (), CONTRACTS, NOW)
    assert guard.unpriced == ()
    assert guard.check(ProposedOrder(ES, BUY, 1), NOW).allowed


def test_a_position_the_stream_opens_needs_a_mark() -> None:
    guard = synced()
    assert guard.observe(PositionUpdated(position(ES, 1, "5000")), NOW) == ()
    assert guard.unpriced == (ES,)
    assert guard.check(ProposedOrder(ES, BUY, 1), NOW).rule is None


def test_marks_of_quotes() -> None:
    assert mark_of(Quote(ES, last_price=Decimal(5), best_bid=Decimal(1), best_ask=Decimal(2))) == 5
    assert mark_of(Quote(ES, best_bid=Decimal(1), best_ask=Decimal(2))) == Decimal("1.5")
    assert mark_of(Quote(ES, best_bid=Decimal(1))) is None
    assert mark_of(Quote(ES, best_ask=Decimal(1))) is None


# --- stream findings ---


def test_a_daily_loss_warning_then_a_breach_are_each_reported_once() -> None:
    guard = long_es()
    (warning,) = guard.observe(quote(ES, "4984"), NOW)  # $800 down: 80% of the limit
    assert (warning.rule, warning.limit, warning.current) == (
        Rule.DAILY_LOSS,
        Decimal(1000),
        Decimal(800),
    )
    assert "80% of the 50K Combine's daily loss limit" in warning.message
    assert guard.observe(quote(ES, "4983"), NOW) == ()
    (breach,) = guard.observe(quote(ES, "4980"), NOW)
    assert (breach.rule, breach.current) == (Rule.DAILY_LOSS, Decimal(1000))
    assert "trading stops until the next trading day" in breach.message
    assert guard.observe(quote(ES, "4979"), NOW) == ()
    assert guard.observe(quote(ES, "4984"), NOW) == ()  # no warning after the breach
    assert guard.state is not None
    assert guard.state.status is AccountStatus.DISABLED_FOR_DAY
    assert guard.check(ProposedOrder(ES, BUY, 1), NOW).rule is Rule.TRADING_DISABLED
    assert guard.check(ProposedOrder(ES, SELL, 1), NOW).allowed  # the flatten still goes
    assessment = guard.assessment(NOW)
    assert assessment.daily_loss_remaining == Decimal(200)
    assert assessment.breaches == ()


def test_a_breach_past_the_warning_is_reported_alone() -> None:
    guard = long_es()
    (breach,) = guard.observe(quote(ES, "4975"), NOW)
    assert breach.rule is Rule.DAILY_LOSS
    assert guard.observe(quote(ES, "4984"), NOW) == ()


def test_the_day_turn_resets_the_day() -> None:
    guard = long_es()
    assert len(guard.observe(quote(ES, "4980"), NOW)) == 1
    assert guard.observe(PositionUpdated(position(ES, 0, "5000")), NOW) == ()
    assert guard.observe(AccountUpdated(account("49000")), NOW) == ()
    assert guard.check(ProposedOrder(ES, BUY, 1), NOW).rule is Rule.TRADING_DISABLED
    assert guard.check(ProposedOrder(ES, BUY, 1), NEXT_DAY).allowed
    state = guard.state
    assert state is not None
    assert (state.status, state.day_open_equity, state.day_realized) == (
        AccountStatus.ACTIVE,
        Decimal(49000),
        Decimal(0),
    )
    assert guard.observe(quote(ES, "5000"), NEXT_DAY) == ()
    assert guard.observe(PositionUpdated(position(ES, 1, "5000")), NEXT_DAY) == ()
    findings = guard.observe(quote(ES, "4984"), NEXT_DAY)  # reported again on the new day
    assert [finding.rule for finding in findings] == [Rule.MAX_LOSS, Rule.DAILY_LOSS]
    assert guard.assessment(NEXT_DAY).day == state.day


def test_sync_keeps_a_suspension_for_the_day_only() -> None:
    guard = long_es()
    guard.observe(quote(ES, "4980"), NOW)
    guard.sync(account("49000"), (), (trade(1, "-1000"),), CONTRACTS, NOW)
    today = guard.state
    assert today is not None
    assert today.status is AccountStatus.DISABLED_FOR_DAY
    guard.sync(account("49000"), (), (), CONTRACTS, NEXT_DAY)
    tomorrow = guard.state
    assert tomorrow is not None
    assert (tomorrow.status, tomorrow.day_open_equity) == (AccountStatus.ACTIVE, Decimal(49000))


def test_the_day_waits_for_the_close_of_an_unpriced_position() -> None:
    guard = synced(position(ES, 1, "5000"))
    assert guard.check(ProposedOrder(ES, BUY, 1), NEXT_DAY).rule is None
    assert guard.state is not None
    assert guard.state.day == NOW.date()
    guard.observe(quote(ES, "5000"), NEXT_DAY)
    assert guard.state.day == NEXT_DAY.date()


def test_the_maximum_loss_closes_the_account() -> None:
    guard = long_es()
    findings = guard.observe(quote(ES, "4960"), NOW)  # $2,000 down: both limits at once
    assert [finding.rule for finding in findings] == [Rule.MAX_LOSS, Rule.DAILY_LOSS]
    assert guard.state is not None
    assert guard.state.status is AccountStatus.CLOSED
    assert guard.check(ProposedOrder(ES, BUY, 1), NEXT_DAY).rule is Rule.ACCOUNT_CLOSED


# --- events ---


def test_fills_add_to_the_day_realized_once() -> None:
    guard = synced(trades=(trade(1, "100"),))
    assert guard.observe(FillReceived(trade(1, "100")), NOW) == ()
    assert guard.observe(FillReceived(trade(2, "50", "2")), NOW) == ()
    assert guard.observe(FillReceived(trade(2, "50", "2"), recovered=True), NOW) == ()
    assert guard.observe(FillReceived(trade(3, "50", voided=True)), NOW) == ()
    assert guard.observe(FillReceived(trade(4, "50", account_id=OTHER)), NOW) == ()
    assert guard.observe(FillReceived(trade(5, "50", when=-timedelta(days=1))), NOW) == ()
    assert guard.observe(FillReceived(trade(6, "10", "1", commissions="0.5")), NOW) == ()
    assert guard.state is not None
    assert guard.state.day_realized == Decimal("156.5")  # profits less fees and commissions
    assert guard.state.balance == Decimal(50000)  # the balance comes from account updates


def test_other_accounts_and_unknown_events_are_ignored() -> None:
    guard = synced()
    before = guard.state
    order = Order(
        id=1,
        account_id=ID,
        contract_id=ES,
        created_at=NOW,
        status=OrderStatus.OPEN,
        type=OrderType.MARKET,
        side=OrderSide.BUY,
        size=1,
    )
    for event in (
        AccountUpdated(account("1", OTHER)),
        PositionUpdated(position(ES, 5, "5000", account_id=OTHER)),
        OrderUpdated(order),
        Connected("user", 0),
        quote(ES),
        object(),
    ):
        assert guard.observe(event, NOW) == ()
    assert guard.state is before


def test_before_the_first_sync() -> None:
    guard = RiskGuard(RULES, ID)
    assert guard.state is None
    assert guard.unpriced == ()
    assert guard.observe(AccountUpdated(account("40000")), NOW) == ()
    assert guard.observe(quote(ES, "5000"), NOW) == ()
    assert guard.marks == {ES: Decimal(5000)}
    verdict = guard.check(ProposedOrder(ES, BUY, 1), NOW)
    assert verdict.decision is Decision.REFUSED
    assert verdict.message == f"the risk guard of the 50K Combine account {ID} has not been synced"
    with pytest.raises(MissingFigure, match="has not been synced"):
        guard.assessment(NOW)


def working_order(
    order_id: int,
    side: OrderSide,
    size: int,
    *,
    filled: int = 0,
    parent: int | None = None,
    contract_id: str = ES,
) -> Order:
    return Order(
        id=order_id,
        account_id=ID,
        contract_id=contract_id,
        created_at=NOW,
        status=OrderStatus.OPEN,
        type=OrderType.LIMIT,
        side=side,
        size=size,
        fill_volume=filled,
        parent_order_id=parent,
    )


def test_working_orders_on_the_side_count_with_the_order_a_bracket_s_legs_once() -> None:
    working = [
        working_order(1, BUY, 2, filled=1),  # one still to fill
        working_order(2, SELL, 3),  # the other side
        working_order(3, BUY, 4, parent=9),  # a bracket's two legs: the larger counts
        working_order(4, BUY, 2, parent=9),
        working_order(5, BUY, 7, contract_id=MES),  # another contract
    ]
    assert working_exposure(working, ES, BUY) == 5
    assert working_exposure(working, ES, SELL) == 3
    assert working_exposure([], ES, BUY) == 0


def test_the_guard_counts_the_working_orders_it_was_synced_with() -> None:
    guard = RiskGuard(RULES, ID)
    working = [working_order(1, BUY, 1)]
    guard.sync(account("50000"), (), (), CONTRACTS, NOW, working=working)
    limit = int(RULES.max_contracts or 0)
    assert guard.check(ProposedOrder(ES, BUY, limit - 1), NOW).allowed
    refused = guard.check(ProposedOrder(ES, BUY, limit), NOW)
    assert refused.rule is Rule.MAX_POSITION
    assert refused.after == limit + 1
