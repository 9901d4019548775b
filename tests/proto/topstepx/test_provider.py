"""The TopStepX provider object: the generic Provider interface over the REST builders."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from tradeforge_proto.core import (
    BarRequest,
    BarUnit,
    Bracket,
    ConfigurationError,
    FeatureDisabled,
    OrderModification,
    OrderQuery,
    OrderRequest,
    OrderSide,
    OrderType,
    RemoteProtocolError,
    Secret,
)
from tradeforge_proto.core.jsoncodec import dumps
from tradeforge_proto.providers import topstepx
from tradeforge_proto.providers.topstepx import TopStepX, rest

T0 = datetime(2025, 7, 18, 21, 0, tzinfo=UTC)
T1 = datetime(2025, 7, 18, 22, 0, tzinfo=UTC)
PROVIDER = TopStepX(username="jdoe", api_key=Secret("key-123"))

PAIRS = [
    (PROVIDER.login(), rest.login_key("jdoe", "key-123")),
    (PROVIDER.refresh(), rest.validate()),
    (PROVIDER.logout(), rest.logout()),
    (PROVIDER.get_accounts(False), rest.search_accounts(False)),
    (PROVIDER.search_contracts("MES", live=True), rest.search_contracts("MES", live=True)),
    (PROVIDER.get_contract("CON.F.US.MES.Z25"), rest.get_contract("CON.F.US.MES.Z25")),
    (PROVIDER.get_available_contracts(live=True), rest.available_contracts(live=True)),
    (
        PROVIDER.retrieve_bars(BarRequest("C", BarUnit.MINUTE, 5, T0, T1, limit=10)),
        rest.retrieve_bars("C", BarUnit.MINUTE, 5, start=T0, end=T1, limit=10),
    ),
    (PROVIDER.search_orders(7, T0, T1), rest.search_orders(7, T0, T1)),
    (PROVIDER.get_open_orders(7), rest.search_open_orders(7)),
    (PROVIDER.get_order(7, 99), rest.get_order(7, 99)),
    (PROVIDER.query_orders(OrderQuery(7)), rest.query_orders(OrderQuery(7))),
    (
        PROVIDER.place_order(OrderRequest(7, "C", OrderSide.SELL, OrderType.MARKET, 2)),
        rest.place_order(7, "C", OrderSide.SELL, OrderType.MARKET, 2),
    ),
    (PROVIDER.cancel_order(7, 99), rest.cancel_order(7, 99)),
    (
        PROVIDER.modify_order(OrderModification(7, 99, size=3)),
        rest.modify_order(7, 99, size=3),
    ),
    (PROVIDER.get_open_positions(7), rest.search_open_positions(7)),
    (PROVIDER.close_position(7, "C"), rest.close_position(7, "C")),
    (PROVIDER.partial_close_position(7, "C", 1), rest.partial_close_position(7, "C", 1)),
    (PROVIDER.search_trades(7, T0), rest.search_trades(7, T0)),
    (PROVIDER.ping(), rest.ping()),
]


@pytest.mark.parametrize(("ours", "direct"), PAIRS, ids=[p[1].name for p in PAIRS])
def test_provider_builds_the_same_operation_as_the_endpoint_function(ours, direct):
    assert ours.name == direct.name
    assert ours.request == direct.request
    assert ours.safety is direct.safety
    assert ours.bucket is direct.bucket
    assert ours.authenticated == direct.authenticated


def test_every_endpoint_is_reachable_from_the_provider():
    assert {direct.name for _, direct in PAIRS} == set(rest.ENDPOINTS) - {"Auth/loginApp"}
    assert PROVIDER.name == "topstepx"


def test_login_needs_credentials():
    with pytest.raises(ConfigurationError, match="username and an API key"):
        TopStepX().login()
    with pytest.raises(ConfigurationError):
        TopStepX(username="u", api_key=Secret("")).login()


def test_feature_opt_ins_follow_the_provider():
    bracketed = OrderRequest(
        7, "C", OrderSide.BUY, OrderType.MARKET, 1, stop_loss=Bracket(-10, OrderType.STOP)
    )
    trailing = OrderRequest(7, "C", OrderSide.SELL, OrderType.TRAILING_STOP, 1, trail_price=10)
    with pytest.raises(FeatureDisabled, match="bracket"):
        PROVIDER.place_order(bracketed)
    with pytest.raises(FeatureDisabled, match="trailing"):
        PROVIDER.place_order(trailing)
    with pytest.raises(FeatureDisabled, match="trailing"):
        PROVIDER.modify_order(OrderModification(7, 99, trail_price=10))
    bold = TopStepX(allow_brackets=True, allow_trailing_stop=True)
    assert b"stopLossBracket" in bold.place_order(bracketed).request.body
    assert b'"trailPrice":10' in bold.place_order(trailing).request.body
    assert (
        b'"trailPrice":10'
        in bold.modify_order(OrderModification(7, 99, trail_price=10)).request.body
    )


def test_contract_by_id_refuses_an_answer_about_another_contract():
    op = topstepx.get_contract("CON.F.US.MES.Z25")
    body = dumps(
        {
            "contract": {
                "id": "CON.F.US.MNQ.Z25",
                "name": "MNQZ5",
                "description": "Micro Nasdaq",
                "tickSize": 0.25,
                "tickValue": 0.5,
                "activeContract": True,
                "symbolId": "F.US.MNQ",
            },
            "success": True,
            "errorCode": 0,
        }
    )
    with pytest.raises(RemoteProtocolError, match=re.escape("CON.F.US.MNQ.Z25")):
        op.parse(200, {}, body)
