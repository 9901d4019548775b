"""The paper exchange holds ruled accounts to the firm's limits, as the gateway would."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import attrs
import pytest

from tradeforge_proto.core.enums import OrderSide, OrderStatus, OrderType
from tradeforge_proto.core.models import Account, Order
from tradeforge_proto.providers.topstepx.codes import PlaceOrderErrorCode
from tradeforge_proto.rules import COMBINE_50K, AccountStatus
from tradeforge_sim.accounts import ACCOUNT_TYPES, account_type, accounts_of
from tradeforge_sim.contracts import default_catalogue
from tradeforge_sim.engine import Exchange, Rejection, SimAccount, UserEventKind

T0 = datetime(2025, 11, 24, 15, 0, tzinfo=UTC)  # a Monday, 09:00 in Chicago
NOW = T0.timestamp()
CATALOGUE = default_catalogue(T0)
MES, ES = "CON.F.US.MES.Z25", "CON.F.US.EP.Z25"
ACCOUNT = 7
BUY, SELL = OrderSide.BUY, OrderSide.SELL
MARKET, LIMIT = OrderType.MARKET, OrderType.LIMIT
NEXT_DAY = (datetime(2025, 11, 24, 23, 5, tzinfo=UTC) - T0).total_seconds()  # 17:05 Chicago


def combine(**changes: object) -> Exchange:
    rules = attrs.evolve(COMBINE_50K, **changes)  # type: ignore[arg-type]
    account = SimAccount(ACCOUNT, "50KTC-V2-SIM-1", rules.starting_balance, rules=rules)
    return Exchange(CATALOGUE, [account], now=NOW)


def market(ex: Exchange, contract: str, mid: str, *, at: float, size: int = 50) -> None:
    """A one-tick-wide market around ``mid`` (bid = mid, ask = mid + a tick), last at the bid."""
    bid = Decimal(mid)
    ask = bid + Decimal("0.25")
    ex.set_market(contract, bid=bid, bid_size=size, ask=ask, ask_size=size, last=bid, now=NOW + at)


def refusal(excinfo: pytest.ExceptionInfo[Rejection]) -> tuple[int, str]:
    return int(excinfo.value.code), excinfo.value.message or ""


@pytest.fixture
def ex() -> Exchange:
    exchange = combine()
    market(exchange, MES, "6000.00", at=1)
    market(exchange, ES, "6000.00", at=1)
    exchange.drain_events()
    return exchange


def account(ex: Exchange) -> Account:
    return ex.accounts(only_active=False)[0]


# Position size, counting micros as a tenth


def test_five_minis_are_allowed_and_a_sixth_is_refused_naming_the_rule(ex: Exchange) -> None:
    ex.place(ACCOUNT, ES, MARKET, BUY, 5, now=NOW + 2)
    with pytest.raises(Rejection) as excinfo:
        ex.place(ACCOUNT, ES, MARKET, BUY, 1, now=NOW + 3)
    code, message = refusal(excinfo)
    assert code == PlaceOrderErrorCode.OrderRejected
    assert message.startswith("Maximum position size:")
    assert "6 contracts" in message
    assert "maximum of 5" in message
    assert [p.size for p in ex.positions(ACCOUNT)] == [5]


def test_fifty_micros_fit_and_fifty_one_do_not(ex: Exchange) -> None:
    with pytest.raises(Rejection) as excinfo:
        ex.place(ACCOUNT, MES, MARKET, BUY, 51, now=NOW + 2)
    assert "5.1 contracts" in refusal(excinfo)[1]
    assert ex.orders(ACCOUNT, 0) == []  # a refused order leaves no trace
    ex.place(ACCOUNT, MES, MARKET, BUY, 50, now=NOW + 3)
    assert [p.size for p in ex.positions(ACCOUNT)] == [50]


def test_working_orders_on_the_same_side_count_towards_the_limit(ex: Exchange) -> None:
    ex.place(ACCOUNT, ES, LIMIT, BUY, 3, limit_price=Decimal("5990.00"), now=NOW + 2)
    with pytest.raises(Rejection) as excinfo:
        ex.place(ACCOUNT, ES, LIMIT, BUY, 3, limit_price=Decimal("5989.00"), now=NOW + 3)
    assert "counting 3 contracts in working orders" in refusal(excinfo)[1]
    ex.place(ACCOUNT, ES, LIMIT, BUY, 2, limit_price=Decimal("5989.00"), now=NOW + 4)


def test_a_size_increase_by_modify_is_judged_too(ex: Exchange) -> None:
    order_id = ex.place(ACCOUNT, ES, LIMIT, BUY, 5, limit_price=Decimal("5990.00"), now=NOW + 2)
    with pytest.raises(Rejection) as excinfo:
        ex.modify(ACCOUNT, order_id, size=6, now=NOW + 3)
    assert refusal(excinfo)[1].startswith("Maximum position size:")
    ex.modify(ACCOUNT, order_id, size=4, now=NOW + 4)
    assert ex.order(ACCOUNT, order_id).size == 4


def test_a_reducing_order_is_always_allowed(ex: Exchange) -> None:
    ex.place(ACCOUNT, ES, MARKET, BUY, 5, now=NOW + 2)
    ex.place(ACCOUNT, ES, MARKET, SELL, 5, now=NOW + 3)
    assert ex.positions(ACCOUNT) == []


# Daily loss limit


def losing_day(ex: Exchange) -> None:
    """Hold 2 ES long from 6000.25 (a point is $50 a contract), a buy limit working, and let the
    market fall about ten points."""
    ex.place(ACCOUNT, ES, MARKET, BUY, 2, now=NOW + 2)
    ex.place(ACCOUNT, ES, LIMIT, BUY, 1, limit_price=Decimal("5900.00"), now=NOW + 3)
    ex.drain_events()
    market(ex, ES, "5995.00", at=4)  # $528.80 down with the fees: nothing happens
    assert account(ex).can_trade
    market(ex, ES, "5990.25", at=5)  # $1,003.80 down with the fees: past the limit


def test_crossing_the_daily_loss_cancels_flattens_and_disables(ex: Exchange) -> None:
    losing_day(ex)
    events = ex.drain_events()
    orders = [e.entity for e in events if isinstance(e.entity, Order)]
    assert orders[0].status is OrderStatus.CANCELLED
    assert orders[0].type is LIMIT
    assert any(o.type is MARKET and o.status is OrderStatus.FILLED for o in orders)
    assert ex.positions(ACCOUNT) == []
    assert ex.open_orders(ACCOUNT) == []
    last = events[-1]
    assert last.kind is UserEventKind.ACCOUNT
    assert isinstance(last.entity, Account)
    assert last.entity.can_trade is False
    assert ex.rule_state(ACCOUNT).status is AccountStatus.DISABLED_FOR_DAY  # type: ignore[union-attr]
    with pytest.raises(Rejection) as excinfo:
        ex.place(ACCOUNT, MES, MARKET, BUY, 1, now=NOW + 6)
    assert refusal(excinfo)[1].startswith("Daily loss limit:")
    assert account(ex) in ex.accounts()  # suspended for the day, still an active account


def test_trading_resumes_the_next_trading_day(ex: Exchange) -> None:
    losing_day(ex)
    ex.drain_events()
    ex.review(NOW + NEXT_DAY)
    events = ex.drain_events()
    assert [e.kind for e in events] == [UserEventKind.ACCOUNT]
    assert account(ex).can_trade
    ex.place(ACCOUNT, MES, MARKET, BUY, 1, now=NOW + NEXT_DAY + 1)
    assert [p.size for p in ex.positions(ACCOUNT)] == [1]


def test_a_day_turn_is_also_noticed_by_an_order(ex: Exchange) -> None:
    losing_day(ex)
    ex.place(ACCOUNT, MES, MARKET, BUY, 1, now=NOW + NEXT_DAY)
    assert account(ex).can_trade
    assert [p.size for p in ex.positions(ACCOUNT)] == [1]


def test_a_loss_just_short_of_the_limit_keeps_trading(ex: Exchange) -> None:
    ex.place(ACCOUNT, ES, MARKET, BUY, 2, now=NOW + 2)
    market(ex, ES, "5990.50", at=3)  # $975 down with the fees
    assert account(ex).can_trade
    assert [p.size for p in ex.positions(ACCOUNT)] == [2]


# Trailing maximum loss


def test_a_max_loss_breach_closes_the_account_for_good() -> None:
    ex = combine(daily_loss_limit=None)
    market(ex, ES, "6000.00", at=1)
    ex.place(ACCOUNT, ES, MARKET, BUY, 4, now=NOW + 2)
    market(ex, ES, "5990.00", at=3)  # $2,000 and the fees down
    assert ex.positions(ACCOUNT) == []
    assert ex.rule_state(ACCOUNT).status is AccountStatus.CLOSED  # type: ignore[union-attr]
    assert ex.accounts() == []
    assert not account(ex).can_trade
    ex.review(NOW + NEXT_DAY)
    with pytest.raises(Rejection) as excinfo:
        ex.place(ACCOUNT, MES, MARKET, BUY, 1, now=NOW + NEXT_DAY + 1)
    assert refusal(excinfo)[1].startswith("Maximum loss limit:")
    assert ex.accounts() == []


def test_a_flatten_without_a_market_waits_for_one() -> None:
    ex = combine()
    market(ex, ES, "6000.00", at=1)
    ex.place(ACCOUNT, ES, MARKET, BUY, 2, now=NOW + 2)
    ex.set_market(
        ES,
        bid=Decimal("5985.00"),
        bid_size=0,
        ask=Decimal("5985.25"),
        ask_size=5,
        last=Decimal("5985.00"),
        now=NOW + 3,
    )
    assert [p.size for p in ex.positions(ACCOUNT)] == [2]  # no bids to sell into
    assert not account(ex).can_trade
    market(ex, ES, "5985.00", at=4)
    assert ex.positions(ACCOUNT) == []


# Account types


def test_every_account_type_starts_at_its_balance_with_its_rules() -> None:
    made = accounts_of(list(ACCOUNT_TYPES), auto_oco_brackets=True)
    assert [a.id for a in made] == list(range(made[0].id, made[0].id + len(ACCOUNT_TYPES)))
    for made_account, kind in zip(made, ACCOUNT_TYPES.values(), strict=True):
        assert made_account.balance == kind.balance
        assert made_account.rules is kind.rules
        assert made_account.auto_oco_brackets
    assert made[0].name == "50KTC-V2-SIM-1"
    assert account_type(" 150k ").rules is not None
    with pytest.raises(ValueError, match="choose from 50K"):
        account_type("75K")
    with pytest.raises(ValueError, match="at least one"):
        accounts_of([])


def test_a_ruled_account_must_start_at_its_starting_balance() -> None:
    wrong = SimAccount(1, "X", Decimal(1), rules=COMBINE_50K)
    with pytest.raises(ValueError, match="starting balance"):
        Exchange(CATALOGUE, [wrong], now=NOW)


def test_rules_states_given_are_kept() -> None:
    first = combine()
    market(first, ES, "6000.00", at=1)
    first.place(ACCOUNT, ES, MARKET, BUY, 1, now=NOW + 2)
    state = first.rule_state(ACCOUNT)
    assert state is not None
    assert state.holdings
    account_ = attrs.evolve(
        SimAccount(ACCOUNT, "50KTC", COMBINE_50K.starting_balance, rules=COMBINE_50K),
        balance=state.balance,
    )
    second = Exchange(CATALOGUE, [account_], now=NOW + 3, rule_states={ACCOUNT: state})
    assert second.rule_states() == {ACCOUNT: state}
    with pytest.raises(ValueError, match="without rules"):
        Exchange(CATALOGUE, [SimAccount(1, "P", Decimal(1))], now=NOW, rule_states={1: state})
