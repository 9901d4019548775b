"""What the rules need to know about a contract: its tick economics and its weight in the count.

The firm counts position size in minis; a micro counts as a tenth of one. Weights are Decimals so
that ten micros are exactly one mini.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Final, Protocol

import attrs

from ..core.models import ContractId


class TickSpec(Protocol):
    """Anything with a tick size and a tick value: a ``ContractSpec`` or a core ``Contract``."""

    @property
    def tick_size(self) -> Decimal: ...

    @property
    def tick_value(self) -> Decimal: ...


@attrs.frozen
class ContractSpec:
    """The tick size in price units and the tick value in dollars per tick per contract."""

    tick_size: Decimal = attrs.field(converter=Decimal)
    tick_value: Decimal = attrs.field(converter=Decimal)

    def __attrs_post_init__(self) -> None:
        if not (self.tick_size.is_finite() and self.tick_size > 0):
            raise ValueError(f"tick_size must be positive, got {self.tick_size}")
        if not (self.tick_value.is_finite() and self.tick_value > 0):
            raise ValueError(f"tick_value must be positive, got {self.tick_value}")


def symbol_root(contract_id: ContractId) -> str:
    """The root of a ``CON.F.US.<ROOT>.<expiry>`` id (``MES`` for ``CON.F.US.MES.M25``).

    Any other id is returned whole, so a mapping may also be keyed by contract id.
    """
    parts = contract_id.split(".")
    if len(parts) == 5 and parts[0] == "CON":
        return parts[3]
    return contract_id


def _weight_entries(value: Mapping[str, Decimal | int | str]) -> tuple[tuple[str, Decimal], ...]:
    entries = tuple(sorted((key, Decimal(weight)) for key, weight in value.items()))
    for key, weight in entries:
        if not (weight.is_finite() and weight > 0):
            raise ValueError(f"the weight of {key} must be positive, got {weight}")
    return entries


@attrs.frozen
class ContractWeights:
    """How many minis one contract counts as, by contract id or by symbol root.

    A contract id is looked up first, then its root; anything unlisted counts as ``default``
    (one full mini, the cautious choice).
    """

    entries: tuple[tuple[str, Decimal], ...] = attrs.field(converter=_weight_entries)
    default: Decimal = attrs.field(default=Decimal(1), converter=Decimal)

    def weight(self, contract_id: ContractId) -> Decimal:
        """The weight of one contract of ``contract_id``."""
        table = dict(self.entries)
        found = table.get(contract_id)
        if found is None:
            found = table.get(symbol_root(contract_id), self.default)
        return found


MICRO: Final = Decimal("0.1")
"""A micro contract counts as a tenth of a mini."""
MINI: Final = Decimal(1)
"""A mini (or any full-size contract) counts as one."""

CME_WEIGHTS: Final = ContractWeights(
    {
        **dict.fromkeys(("MES", "MNQ", "MYM", "M2K", "MGC", "MCL"), MICRO),
        **dict.fromkeys(("ES", "NQ", "YM", "RTY", "GC", "CL"), MINI),
        # The same minis under the gateway's own roots (see projectx-gateway.md section 6).
        **dict.fromkeys(("EP", "ENQ", "GCE", "CLE"), MINI),
    }
)
"""The usual CME micros (0.1) and their minis (1), by CME ticker and by gateway root."""
