"""The simulator's contract catalogue: gateway roots and ids, real tick sizes and values, expiries.

Contract months follow each product's listing cycle. Equity-index futures are quarterly (H M U Z)
and roll to the next quarter on the second Friday of the expiry month (a week before the
third-Friday expiry, as volume moves). Crude oil lists every month and trades the next calendar
month; gold trades the next even month (G J M Q V Z) after the current one. Dates are taken from
``when`` as given.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Final

import attrs

from tradeforge_proto.core.models import Contract

__all__ = ["MONTH_CODES", "ContractSpec", "default_catalogue", "front_month", "month_code"]

MONTH_CODES: Final = "FGHJKMNQUVXZ"
"""Futures month codes, January to December."""

_MONTH_NAMES: Final = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_FRIDAY: Final = 4

YearMonth = tuple[int, int]


@attrs.frozen
class ContractSpec:
    """A contract the simulator trades, its per-contract costs per fill and a starting price."""

    contract: Contract
    fee: Decimal
    commission: Decimal
    base_price: Decimal


def month_code(year: int, month: int) -> str:
    """The gateway's expiry suffix: month code and two-digit year, e.g. ``Z25``."""
    return f"{MONTH_CODES[month - 1]}{year % 100:02d}"


def _add_months(year: int, month: int, months: int) -> YearMonth:
    total = year * 12 + month - 1 + months
    return total // 12, total % 12 + 1


def _second_friday(year: int, month: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(_FRIDAY - first.weekday()) % 7 + 7)


EXPIRY_TIME: Final = time(14, 30)
"""UTC time of day a contract stops trading on its expiry date (the index futures' morning
settlement, 09:30 New York)."""


def expiry_of(contract_id: str) -> datetime | None:
    """When a contract stops trading: the third Friday of its month code (``Z26``), at
    ``EXPIRY_TIME``; None for an id without a month code."""
    code = contract_id.rpartition(".")[2]
    if len(code) != 3 or code[0] not in MONTH_CODES or not code[1:].isdigit():
        return None
    year, month = 2000 + int(code[1:]), MONTH_CODES.index(code[0]) + 1
    third_friday = _second_friday(year, month) + timedelta(days=7)
    return datetime.combine(third_friday, EXPIRY_TIME, tzinfo=UTC)


def _quarterly(when: datetime) -> YearMonth:
    year, month = when.year, when.month
    expiry = month + (-month % 3)
    if expiry == month and when.date() >= _second_friday(year, month):
        return _add_months(year, month, 3)
    return year, expiry


def _next_month(when: datetime) -> YearMonth:
    return _add_months(when.year, when.month, 1)


def _next_even_month(when: datetime) -> YearMonth:
    return _add_months(when.year, when.month, 2 if when.month % 2 == 0 else 1)


def front_month(when: datetime) -> str:
    """Expiry suffix (e.g. ``Z25``) of the active quarterly contract on the date of ``when``."""
    return month_code(*_quarterly(when))


@attrs.frozen
class _Product:
    root: str
    ticker: str
    title: str
    tick_size: Decimal
    tick_value: Decimal
    fee: Decimal
    commission: Decimal
    base_price: Decimal
    cycle: Callable[[datetime], YearMonth]

    def spec(self, year: int, month: int, *, active: bool) -> ContractSpec:
        contract = Contract(
            id=f"CON.F.US.{self.root}.{month_code(year, month)}",
            name=f"{self.ticker}{MONTH_CODES[month - 1]}{year % 10}",
            description=f"{self.title}: {_MONTH_NAMES[month - 1]} {year}",
            tick_size=self.tick_size,
            tick_value=self.tick_value,
            active=active,
            symbol_id=f"F.US.{self.root}",
        )
        return ContractSpec(contract, self.fee, self.commission, self.base_price)


def _product(
    root: str,
    ticker: str,
    title: str,
    tick: tuple[str, str],
    costs: tuple[str, str],
    *,
    base_price: str,
    cycle: Callable[[datetime], YearMonth] = _quarterly,
) -> _Product:
    return _Product(
        root,
        ticker,
        title,
        Decimal(tick[0]),
        Decimal(tick[1]),
        Decimal(costs[0]),
        Decimal(costs[1]),
        Decimal(base_price),
        cycle,
    )


# Ticks are (size, dollars per tick); costs are (exchange and clearing fees, commission) per
# contract per fill, in the range Topstep charges.
_PRODUCTS: Final = (
    _product(
        "MES",
        "MES",
        "Micro E-mini S&P 500",
        ("0.25", "1.25"),
        ("0.37", "0.25"),
        base_price="6000.00",
    ),
    _product(
        "MNQ",
        "MNQ",
        "Micro E-mini Nasdaq-100",
        ("0.25", "0.5"),
        ("0.37", "0.25"),
        base_price="21000.00",
    ),
    _product(
        "EP", "ES", "E-mini S&P 500", ("0.25", "12.5"), ("1.40", "0.50"), base_price="6000.00"
    ),
    _product(
        "ENQ", "NQ", "E-mini NASDAQ-100", ("0.25", "5"), ("1.40", "0.50"), base_price="21000.00"
    ),
    _product(
        "MYM", "MYM", "Micro E-mini Dow Jones", ("1.0", "0.5"), ("0.37", "0.25"), base_price="44000"
    ),
    _product(
        "M2K",
        "M2K",
        "Micro E-mini Russell 2000",
        ("0.10", "0.5"),
        ("0.37", "0.25"),
        base_price="2300.0",
    ),
    _product(
        "RTY", "RTY", "E-mini Russell 2000", ("0.10", "5"), ("1.40", "0.50"), base_price="2300.0"
    ),
    _product(
        "CLE",
        "CL",
        "Crude Oil",
        ("0.01", "10"),
        ("1.52", "0.50"),
        base_price="70.00",
        cycle=_next_month,
    ),
    _product(
        "GCE",
        "GC",
        "Gold",
        ("0.10", "10"),
        ("1.62", "0.50"),
        base_price="2650.0",
        cycle=_next_even_month,
    ),
)


def default_catalogue(when: datetime) -> tuple[ContractSpec, ...]:
    """The active contract of every product on ``when``, then last quarter's expired MES."""
    specs = [product.spec(*product.cycle(when), active=True) for product in _PRODUCTS]
    expired = _add_months(*_quarterly(when), -3)
    specs.append(_PRODUCTS[0].spec(*expired, active=False))
    return tuple(specs)
