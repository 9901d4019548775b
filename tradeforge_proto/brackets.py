"""Brackets a trader describes as distances from the entry, signed for the order's side here.

The gateway takes a stop loss and a take profit as signed tick offsets from the fill price: below
it (negative) for a buy's stop, above it for its target, and the other way round for a sell. A
``Brackets`` holds positive distances, in ticks or in price units, and ``for_entry`` gives the
gateway's signed legs, refusing a price distance that is not a whole number of ticks.
"""

from __future__ import annotations

from decimal import Decimal

import attrs

from .core import bounds
from .core.enums import OrderSide, OrderType
from .core.errors import LocalProtocolError
from .core.models import Bracket

Distance = int | Decimal


def _distance(name: str, value: object, *, in_ticks: bool) -> Distance | None:
    if value is None:
        return None
    if in_ticks:
        ticks = bounds.ticks(value, name)
        if ticks < 0:
            raise bounds.InvalidValue(name, "is a distance: a positive number of ticks", value)
        return ticks
    return bounds.price(value, name)


@attrs.frozen
class Brackets:
    """A stop loss and/or a take profit, as positive distances from the entry price."""

    stop_loss: Distance | None = None
    take_profit: Distance | None = None
    in_ticks: bool = True
    """True: the distances are ticks; False: price units (points)."""
    trailing: bool = False
    """True: the stop loss trails (a trailing stop) instead of resting."""

    def __attrs_post_init__(self) -> None:
        if self.stop_loss is None and self.take_profit is None:
            raise LocalProtocolError("brackets need a stop_loss, a take_profit or both")

    @classmethod
    def ticks(
        cls,
        *,
        stop_loss: int | None = None,
        take_profit: int | None = None,
        trailing: bool = False,
    ) -> Brackets:
        """Distances in ticks, e.g. ``Brackets.ticks(stop_loss=8, take_profit=16)``."""
        return cls(
            _distance("stop_loss", stop_loss, in_ticks=True),
            _distance("take_profit", take_profit, in_ticks=True),
            in_ticks=True,
            trailing=trailing,
        )

    @classmethod
    def points(
        cls,
        *,
        stop_loss: Decimal | int | str | None = None,
        take_profit: Decimal | int | str | None = None,
        trailing: bool = False,
    ) -> Brackets:
        """Distances in price units, e.g. ``Brackets.points(stop_loss="2", take_profit="4")``."""
        return cls(
            _distance("stop_loss", stop_loss, in_ticks=False),
            _distance("take_profit", take_profit, in_ticks=False),
            in_ticks=False,
            trailing=trailing,
        )

    def for_entry(
        self, side: OrderSide, tick_size: Decimal
    ) -> tuple[Bracket | None, Bracket | None]:
        """The gateway's (stop loss, take profit) legs for an entry on ``side``."""
        down = -1 if side is OrderSide.BUY else 1
        stop = self._ticks("stop_loss", self.stop_loss, tick_size)
        target = self._ticks("take_profit", self.take_profit, tick_size)
        stop_type = OrderType.TRAILING_STOP if self.trailing else OrderType.STOP
        return (
            None if stop is None else Bracket(stop * down, stop_type),
            None if target is None else Bracket(-target * down, OrderType.LIMIT),
        )

    def _ticks(self, name: str, distance: Distance | None, tick_size: Decimal) -> int | None:
        if distance is None:
            return None
        if self.in_ticks:
            return int(distance)
        ticks = Decimal(distance) / tick_size
        if ticks != ticks.to_integral_value():
            raise LocalProtocolError(
                f"{name} of {distance} is not a whole number of ticks of {tick_size}"
            )
        return bounds.ticks(int(ticks), name)
