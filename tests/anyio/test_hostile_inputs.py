"""Hostile values given to the library's calls are refused before anything is sent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import anyio
import pytest

from tradeforge_anyio.client import TradingClient
from tradeforge_proto.core import (
    BarsCapExceeded,
    BarUnit,
    InvalidValue,
    OrderSide,
    OrderType,
)
from tradeforge_sim.auth import DEFAULT_API_KEY, DEFAULT_USERNAME
from tradeforge_sim.server import SimServer

pytestmark = pytest.mark.anyio
ACCOUNT = 20258288
HOSTILE_PRICES = [
    "1E+300000",
    "1E+1000000000",
    Decimal("1E+1000000000"),
    Decimal("1E-1000000000"),
    "1_000",
    " 1.00 ",
    "NaN",
    float("inf"),
    10**400,
    "9" * 100_000,
]


def client_for(sim: SimServer) -> TradingClient:
    return TradingClient.for_simulator(sim.api_url, DEFAULT_USERNAME, DEFAULT_API_KEY)


async def test_hostile_prices_are_refused_at_once_and_the_client_keeps_trading():
    async with SimServer() as sim, client_for(sim) as client:
        mes = await client.resolve_contract("MES")
        working = await client.place_order(
            ACCOUNT, mes.id, OrderSide.BUY, OrderType.LIMIT, 1, limit_price="1000"
        )
        with anyio.fail_after(10):  # a safety net: each refusal is immediate
            for price in HOSTILE_PRICES:
                with pytest.raises(InvalidValue, match="limit_price"):
                    await client.place_order(
                        ACCOUNT, mes.id, OrderSide.BUY, OrderType.LIMIT, 1, limit_price=price
                    )
                with pytest.raises(InvalidValue, match="limit_price"):
                    await client.modify_order(ACCOUNT, working, limit_price=price)
        assert [o.id for o in await client.get_open_orders(ACCOUNT)] == [working]
        await client.modify_order(ACCOUNT, working, limit_price="1000.25")
        (order,) = await client.get_open_orders(ACCOUNT)
        assert order.limit_price == Decimal("1000.25")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("size", "1"),
        ("size", 1.0),
        ("size", True),
        ("size", 10**6),
        ("account_id", True),
        ("account_id", 2**64),
        ("contract_id", "x" * 1_000_000),
        ("contract_id", "CON F"),
        ("custom_tag", "tag\x00"),
        ("custom_tag", "tag\r\nX-Injected: 1"),
    ],
)
async def test_lenient_or_oversized_values_are_refused_before_sending(field, value):
    async with SimServer() as sim, client_for(sim) as client:
        mes = await client.resolve_contract("MES")
        order = {
            "account_id": ACCOUNT,
            "contract_id": mes.id,
            "side": OrderSide.BUY,
            "type": OrderType.MARKET,
            "size": 1,
            field: value,
        }
        with pytest.raises(InvalidValue, match=field):
            await client.place_order(**order)  # type: ignore[arg-type]
        assert await client.get_open_positions(ACCOUNT) == []


async def test_a_bar_window_past_the_cap_stops_after_one_bar_over_it():
    async with SimServer() as sim, client_for(sim) as client:
        mes = await client.resolve_contract("MES")
        end = datetime.now(UTC)
        with pytest.raises(BarsCapExceeded) as capped:
            await client.get_bars(
                mes.id, BarUnit.SECOND, 1, start=end - timedelta(days=365), end=end, max_bars=500
            )
        assert capped.value.cap == 500
        assert "narrow the window" in str(capped.value)
        with pytest.raises(BarsCapExceeded):
            await client.get_bars(
                mes.id, BarUnit.SECOND, 1, start=end - timedelta(days=1), end=end, limit=501,
                max_bars=500,
            )  # fmt: skip
        bars = await client.get_bars(
            mes.id, BarUnit.SECOND, 1, start=end - timedelta(days=365), end=end, limit=500,
            max_bars=500,
        )  # fmt: skip
        assert len(bars) == 500
