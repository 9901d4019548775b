"""Contract weights, tick specs, account rules and the presets' published figures."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import attrs
import pytest

from tradeforge_proto.core.models import Contract
from tradeforge_proto.rules import (
    CME_WEIGHTS,
    COMBINE_50K,
    COMBINE_100K,
    COMBINE_150K,
    EXPRESS_FUNDED_50K,
    MICRO,
    MINI,
    PRESETS,
    AccountRules,
    ContractSpec,
    ContractWeights,
    Holding,
    symbol_root,
    to_dollars,
)


@pytest.mark.parametrize(
    ("contract_id", "root"),
    [("CON.F.US.MES.M25", "MES"), ("CON.F.US.EP.Z25", "EP"), ("MNQ", "MNQ"), ("A.B.C", "A.B.C")],
)
def test_symbol_root(contract_id: str, root: str) -> None:
    assert symbol_root(contract_id) == root


@pytest.mark.parametrize("root", ["MES", "MNQ", "MYM", "M2K", "MGC", "MCL"])
def test_micros_count_a_tenth(root: str) -> None:
    assert CME_WEIGHTS.weight(f"CON.F.US.{root}.H27") == MICRO == Decimal("0.1")
    assert CME_WEIGHTS.weight(root) * 10 == MINI


@pytest.mark.parametrize("root", ["ES", "NQ", "YM", "RTY", "GC", "CL", "EP", "ENQ", "GCE", "CLE"])
def test_minis_count_one(root: str) -> None:
    assert CME_WEIGHTS.weight(f"CON.F.US.{root}.H27") == 1


def test_a_contract_id_wins_over_its_root_and_unknowns_take_the_default() -> None:
    weights = ContractWeights({"MES": "0.1", "CON.F.US.MES.H27": 1}, default=Decimal("0.5"))
    assert weights.weight("CON.F.US.MES.H27") == 1
    assert weights.weight("CON.F.US.MES.M27") == Decimal("0.1")
    assert weights.weight("CON.F.US.ZZZ.M27") == Decimal("0.5")
    assert CME_WEIGHTS.weight("CON.F.US.TYA.M27") == 1


@pytest.mark.parametrize("bad", [0, -1, "NaN"])
def test_a_weight_must_be_positive(bad: object) -> None:
    with pytest.raises(ValueError, match="weight of X"):
        ContractWeights({"X": bad})  # type: ignore[dict-item]


@pytest.mark.parametrize(
    ("size", "value"), [("0", "1"), ("1", "0"), ("Infinity", "1"), ("1", "-2")]
)
def test_a_spec_must_be_positive(size: str, value: str) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        ContractSpec(Decimal(size), Decimal(value))


def test_a_core_contract_serves_as_a_tick_spec() -> None:
    contract = Contract("CON.F.US.EP.Z26", "ESZ6", "E-mini", Decimal("0.25"), Decimal("12.5"), True)
    held = Holding(contract.id, 2, Decimal("10000"))
    assert held.unrealized(Decimal("5001"), contract) == Decimal(100)
    assert held.average_price == Decimal(5000)
    assert to_dollars(Decimal(1), ContractSpec(Decimal("0.03125"), Decimal("31.25"))) == 1000


@pytest.mark.parametrize(
    ("rules", "figures"),
    [
        (COMBINE_50K, (50_000, 2_000, 1_000, 5, 3_000)),
        (COMBINE_100K, (100_000, 3_000, 2_000, 10, 6_000)),
        (COMBINE_150K, (150_000, 4_500, 3_000, 15, 9_000)),
        (EXPRESS_FUNDED_50K, (50_000, 2_000, 1_000, 5, None)),
    ],
)
def test_preset_figures(
    rules: AccountRules, figures: tuple[int, int, int, int, int | None]
) -> None:
    start, max_loss, daily, contracts, target = figures
    assert (rules.starting_balance, rules.max_loss) == (Decimal(start), Decimal(max_loss))
    assert (rules.daily_loss_limit, rules.max_contracts) == (Decimal(daily), Decimal(contracts))
    assert rules.profit_target == target
    assert rules.initial_floor == start - max_loss
    assert rules.lock_level == start
    assert rules.weights is CME_WEIGHTS
    assert rules in PRESETS.values()


def test_presets_are_evolved_not_edited() -> None:
    smaller = attrs.evolve(COMBINE_50K, daily_loss_limit=800, floor_lock=None, warning_share="0.9")
    assert smaller.daily_loss_limit == Decimal(800)
    assert smaller.lock_level is None
    assert smaller.warning_share == Decimal("0.9")
    assert COMBINE_50K.daily_loss_limit == 1_000
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        COMBINE_50K.max_loss = Decimal(1)  # type: ignore[misc]
    assert hash(smaller) != hash(COMBINE_50K)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("max_loss", 0, "must be positive"),
        ("daily_loss_limit", -5, "must be positive"),
        ("floor_lock", -1, "must not be negative"),
        ("consistency_share", Decimal("1.5"), "at most 1"),
        ("warning_share", 0, "above 0"),
        ("starting_balance", 1.5, "finite Decimal"),
        ("max_loss", "Infinity", "finite Decimal"),
    ],
)
def test_rules_refuse_bad_figures(field: str, value: object, message: str) -> None:
    changes: dict[str, Any] = {field: value}
    with pytest.raises(ValueError, match=message):
        attrs.evolve(COMBINE_50K, **changes)
