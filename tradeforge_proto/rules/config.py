"""The figures an account is held to: every one configurable, presets being plain instances.

Change a figure with ``attrs.evolve(preset, daily_loss_limit=Decimal(800))``. Money is in dollars
as ``Decimal``; position size is in weighted contracts (minis, a micro being a tenth).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import attrs

from .contracts import CME_WEIGHTS, ContractWeights


def _number(value: object) -> Decimal:
    number = Decimal(value) if isinstance(value, int | str | Decimal) else value
    if not isinstance(number, Decimal) or not number.is_finite():
        raise ValueError(f"a figure must be a finite Decimal, int or decimal text, got {value!r}")
    return number


def _optional_number(value: object) -> Decimal | None:
    return None if value is None else _number(value)


def _positive(_: object, attribute: attrs.Attribute[Any], value: Decimal | None) -> None:
    if value is not None and value <= 0:
        raise ValueError(f"{attribute.name} must be positive, got {value}")


def _not_negative(_: object, attribute: attrs.Attribute[Any], value: Decimal | None) -> None:
    if value is not None and value < 0:
        raise ValueError(f"{attribute.name} must not be negative, got {value}")


def _share(_: object, attribute: attrs.Attribute[Any], value: Decimal | None) -> None:
    if value is not None and not 0 < value <= 1:
        raise ValueError(f"{attribute.name} must be above 0 and at most 1, got {value}")


@attrs.frozen
class AccountRules:
    """One account type's limits; ``None`` switches a rule off.

    ``floor_lock`` is where the trailing floor stops, as an amount above the starting balance:
    the firm's default of 0 locks the floor once it reaches the starting balance; ``None`` lets it
    trail the end-of-day high for ever.
    """

    name: str
    """How messages name the account type, e.g. "50K Combine"."""
    starting_balance: Decimal = attrs.field(converter=_number, validator=_positive)
    max_loss: Decimal = attrs.field(converter=_number, validator=_positive)
    """Distance of the trailing floor below the end-of-day balance high."""
    daily_loss_limit: Decimal | None = attrs.field(converter=_optional_number, validator=_positive)
    """Loss of one trading day (realized and unrealized) that stops trading until the next."""
    max_contracts: Decimal | None = attrs.field(converter=_optional_number, validator=_positive)
    """Largest total position, in weighted contracts."""
    profit_target: Decimal | None = attrs.field(
        default=None, converter=_optional_number, validator=_positive
    )
    consistency_share: Decimal | None = attrs.field(
        default=None, converter=_optional_number, validator=_share
    )
    """Largest share of the total profit that the best day may make (0.5: below half)."""
    floor_lock: Decimal | None = attrs.field(
        default=Decimal(0), converter=_optional_number, validator=_not_negative
    )
    warning_share: Decimal = attrs.field(
        default=Decimal("0.8"), converter=_number, validator=_share
    )
    """Share of a loss limit (or of the distance to the floor) used when a warning is given."""
    weights: ContractWeights = CME_WEIGHTS
    """How contracts count towards ``max_contracts``."""

    @property
    def initial_floor(self) -> Decimal:
        """The trailing floor before any end of day: the starting balance less the max loss."""
        return self.starting_balance - self.max_loss

    @property
    def lock_level(self) -> Decimal | None:
        """The balance at which the trailing floor stops rising, or ``None`` when it never does."""
        return None if self.floor_lock is None else self.starting_balance + self.floor_lock
