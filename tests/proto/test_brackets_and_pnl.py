"""Brackets signed for the side, P&L of a position and of a day, and what a flatten reports."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tradeforge_proto import Brackets, Flattened, realized_pnl, unrealized_pnl
from tradeforge_proto.core.bounds import InvalidValue
from tradeforge_proto.core.enums import OrderSide, OrderType, PositionSide
from tradeforge_proto.core.errors import LocalProtocolError, ProviderError, single_error
from tradeforge_proto.core.models import Bracket, Contract, Fill, Position

NOW = datetime(2026, 12, 2, 15, tzinfo=UTC)
ES = Contract("CON.F.US.EP.Z26", "ESZ6", "E-mini S&P", Decimal("0.25"), Decimal("12.5"), True)
TICK = Decimal("0.25")


@pytest.mark.parametrize(
    ("side", "stop", "target"),
    [(OrderSide.BUY, -8, 12), (OrderSide.SELL, 8, -12)],
)
def test_distances_in_ticks_are_signed_by_the_side(side: OrderSide, stop: int, target: int) -> None:
    legs = Brackets.ticks(stop_loss=8, take_profit=12).for_entry(side, TICK)
    assert legs == (Bracket(stop, OrderType.STOP), Bracket(target, OrderType.LIMIT))


def test_distances_in_points_become_ticks() -> None:
    legs = Brackets.points(stop_loss="2", take_profit=Decimal("3.5")).for_entry(OrderSide.BUY, TICK)
    assert legs == (Bracket(-8, OrderType.STOP), Bracket(14, OrderType.LIMIT))


def test_one_leg_alone_and_a_trailing_stop() -> None:
    only_stop = Brackets.ticks(stop_loss=10, trailing=True).for_entry(OrderSide.SELL, TICK)
    assert only_stop == (Bracket(10, OrderType.TRAILING_STOP), None)
    only_target = Brackets.points(take_profit=1).for_entry(OrderSide.SELL, TICK)
    assert only_target == (None, Bracket(-4, OrderType.LIMIT))


def test_bad_brackets_are_refused_with_what_is_wrong() -> None:
    with pytest.raises(LocalProtocolError, match="stop_loss, a take_profit or both"):
        Brackets.ticks()
    with pytest.raises(InvalidValue, match="positive number of ticks"):
        Brackets.ticks(stop_loss=-8)
    with pytest.raises(InvalidValue, match="take_profit"):
        Brackets.ticks(take_profit=0)
    with pytest.raises(InvalidValue, match="stop_loss"):
        Brackets.points(stop_loss="-1")
    off_grid = Brackets.points(stop_loss="0.3")
    with pytest.raises(LocalProtocolError, match=r"not a whole number of ticks of 0\.25"):
        off_grid.for_entry(OrderSide.BUY, TICK)


def position(side: PositionSide, size: int, average: str) -> Position:
    return Position(1, 7, ES.id, NOW, side, size, Decimal(average))


def test_open_pnl_of_long_and_short_positions() -> None:
    assert unrealized_pnl(position(PositionSide.LONG, 2, "6000"), Decimal("6001.25"), ES) == 125
    assert unrealized_pnl(position(PositionSide.SHORT, 1, "6000"), Decimal("6001"), ES) == -50
    other = Contract("CON.F.US.MES.Z26", "MESZ6", "Micro", TICK, Decimal("1.25"), True)
    with pytest.raises(ValueError, match=r"not on CON\.F\.US\.MES\.Z26"):
        unrealized_pnl(position(PositionSide.LONG, 1, "6000"), Decimal(6000), other)


def fill(pnl: str | None, fees: str, commissions: str | None, *, voided: bool = False) -> Fill:
    return Fill(
        id=1,
        account_id=7,
        contract_id=ES.id,
        created_at=NOW,
        price=Decimal(6000),
        side=OrderSide.SELL,
        size=1,
        order_id=2,
        fees=Decimal(fees),
        profit_and_loss=None if pnl is None else Decimal(pnl),
        commissions=None if commissions is None else Decimal(commissions),
        voided=voided,
    )


def test_the_day_s_realized_pnl_counts_fees_and_commissions_and_skips_voided_fills() -> None:
    fills = [
        fill(None, "1.40", "0.50"),
        fill("125", "1.40", "0.50"),
        fill("1000", "1.40", None, voided=True),
        fill("-50", "1.40", None),
    ]
    assert realized_pnl(fills) == Decimal("69.80")  # -1.90 + 123.10 - 51.40
    assert realized_pnl([]) == 0


def test_a_flatten_says_whether_it_did_everything() -> None:
    assert Flattened((1,), ("X",)).complete
    failure = ProviderError("gone", endpoint="Order/cancel", status=200, code=2)
    assert not Flattened((), (), (("cancel order 1", failure),)).complete


def test_a_success_without_what_was_asked_reads_plainly() -> None:
    error = ProviderError("no active contract for ZZZ", endpoint="Contract/available", status=200)
    assert str(error) == "no active contract for ZZZ (answer of Contract/available)"
    refused = ProviderError("nope", endpoint="Order/place", status=200, code=2, code_name="X")
    assert str(refused) == "Order/place: X (2) - nope"


class Cancelled(BaseException):
    """Stands for an event loop's cancellation exception."""


def test_the_one_error_a_task_group_stands_for() -> None:
    error = ProviderError("x", endpoint="E", status=500)
    twice = BaseExceptionGroup("g", [error, BaseExceptionGroup("inner", [error, Cancelled()])])
    assert single_error(twice, Cancelled) is error
    other = ValueError("y")
    assert single_error(BaseExceptionGroup("g", [error, other]), Cancelled) is None
    assert single_error(BaseExceptionGroup("g", [Cancelled()]), Cancelled) is None
