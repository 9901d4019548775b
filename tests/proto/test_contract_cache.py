"""Resolved contracts are kept for a while on the caller's clock, and no longer."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tradeforge_proto.contractcache import CAPACITY, TTL, ContractCache, symbol_key
from tradeforge_proto.core.bounds import InvalidValue
from tradeforge_proto.core.models import Contract


def contract(name: str) -> Contract:
    return Contract(f"CON.F.US.{name}.Z26", name, name, Decimal("0.25"), Decimal("1.25"), True)


def test_a_contract_is_kept_for_the_ttl_by_symbol_and_data_kind() -> None:
    cache = ContractCache()
    mes = contract("MES")
    cache.put(" mes ", False, mes, now=100.0)
    assert cache.get("MES", False, now=100.0 + TTL - 1) is mes
    assert cache.get("MES", True, now=101.0) is None  # live data is another question
    assert cache.get("MES", False, now=100.0 + TTL) is None  # expired, and forgotten
    assert len(cache) == 0


def test_a_clock_that_went_back_does_not_keep_an_answer() -> None:
    cache = ContractCache()
    cache.put("MES", False, contract("MES"), now=100.0)
    assert cache.get("MES", False, now=99.0) is None


def test_the_least_recently_used_symbol_goes_first() -> None:
    cache = ContractCache(capacity=2)
    for name in ("MES", "MNQ"):
        cache.put(name, False, contract(name), now=0.0)
    assert cache.get("MES", False, now=1.0) is not None  # MES used last
    cache.put("M2K", False, contract("M2K"), now=2.0)
    assert cache.get("MNQ", False, now=3.0) is None
    assert cache.get("MES", False, now=3.0) is not None
    assert len(cache) == 2
    assert CAPACITY >= 2


def test_symbols_are_bounded_text() -> None:
    assert symbol_key(" es ") == "ES"
    for bad in ("", " ", "X" * 33):
        with pytest.raises(InvalidValue):
            symbol_key(bad)
    with pytest.raises(ValueError, match="capacity >= 1"):
        ContractCache(capacity=0)
