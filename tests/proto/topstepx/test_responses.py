"""Parsing every TopstepX REST answer: success payloads, error envelopes and HTTP failures."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from tradeforge_proto.core.enums import OrderSide, OrderStatus, OrderType, PositionSide
from tradeforge_proto.core.errors import (
    AuthenticationError,
    OrderRejected,
    ProviderError,
    RateLimited,
    RemoteProtocolError,
    ServerError,
    ValidationFailed,
)
from tradeforge_proto.core.models import (
    Account,
    Bar,
    Contract,
    Fill,
    Order,
    OrderPage,
    Position,
)
from tradeforge_proto.core.operations import HttpResponse
from tradeforge_proto.core.secret import Secret
from tradeforge_proto.providers.topstepx import rest, wire

from .support import (
    ENVELOPE_ENDPOINTS,
    ENVELOPE_ONLY_ENDPOINTS,
    OPERATIONS,
    PAYLOAD_ENDPOINTS,
    PAYLOAD_FIELDS,
    SUCCESS_FIXTURES,
    fixture_bytes,
    fixture_json,
    json_body,
)

JSON = {"Content-Type": "application/json; charset=utf-8"}


def parse(endpoint: str, body: bytes, status: int = 200, headers: Any = None) -> Any:
    return OPERATIONS[endpoint].parse(status, JSON if headers is None else headers, body)


def success(endpoint: str) -> Any:
    return parse(endpoint, fixture_bytes(SUCCESS_FIXTURES[endpoint]))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def assert_utc(value: datetime) -> None:
    assert value.tzinfo is not None
    assert value.utcoffset() is not None
    assert value.utcoffset().total_seconds() == 0


# --- success payloads -------------------------------------------------------------------------


def test_every_endpoint_has_a_success_fixture() -> None:
    assert sorted(SUCCESS_FIXTURES) == sorted(rest.ENDPOINTS)


@pytest.mark.parametrize("endpoint", ["Auth/loginKey", "Auth/loginApp"])
def test_login_returns_a_hidden_token(endpoint: str) -> None:
    token = success(endpoint)
    expected = fixture_json(SUCCESS_FIXTURES[endpoint])["token"]
    assert isinstance(token, Secret)
    assert token.reveal() == expected
    assert expected not in repr(token)
    assert expected not in str(token)
    assert expected not in f"{token}"


def test_validate_returns_the_new_token() -> None:
    token = success("Auth/validate")
    assert isinstance(token, Secret)
    assert token.reveal() == fixture_json("auth_validate.json")["newToken"]
    assert token.reveal() not in repr(token)


@pytest.mark.parametrize("endpoint", ENVELOPE_ONLY_ENDPOINTS)
def test_envelope_only_endpoints_return_none(endpoint: str) -> None:
    assert success(endpoint) is None


def test_accounts() -> None:
    accounts = success("Account/search")
    assert accounts == [
        Account(
            id=20258288,
            name="150KTC-V2-478426-52758441",
            balance=Decimal("150175.38"),
            can_trade=True,
            is_visible=True,
            simulated=True,
        ),
        Account(
            id=465,
            name="PRACTICEMAY1912345",
            balance=Decimal("49817.5"),
            can_trade=False,
            is_visible=False,
            simulated=False,
        ),
    ]
    assert all(isinstance(a.balance, Decimal) for a in accounts)


def test_contract_search() -> None:
    contracts = success("Contract/search")
    assert [c.id for c in contracts] == ["CON.F.US.ENQ.H25", "CON.F.US.MNQ.H25", "CON.F.US.NQG.G25"]
    enq = contracts[0]
    assert enq == Contract(
        id="CON.F.US.ENQ.H25",
        name="ENQH25",
        description="E-mini NASDAQ-100: March 2025",
        tick_size=Decimal("0.25"),
        tick_value=Decimal("5"),
        active=True,
        symbol_id="F.US.ENQ",
    )
    assert contracts[1].tick_value == Decimal("0.5")
    assert contracts[2].tick_size == Decimal("0.005")
    # Exact decimal arithmetic on what was read.
    assert enq.ticks_between(Decimal("21000.00"), Decimal("21001.75")) == 7
    assert contracts[2].is_aligned(Decimal("3.215"))


def test_contract_by_id_includes_expired_contracts() -> None:
    contract = success("Contract/searchById")
    assert isinstance(contract, Contract)
    assert contract.id == "CON.F.US.ENQ.H25"
    assert contract.name == "NQH5"
    assert contract.active is False
    assert contract.tick_size == Decimal("0.25")


def test_available_contracts() -> None:
    contracts = success("Contract/available")
    assert [(c.id, c.tick_size, c.tick_value) for c in contracts] == [
        ("CON.F.US.EP.U25", Decimal("0.25"), Decimal("12.5")),
        ("CON.F.US.GMET.J25", Decimal("0.1"), Decimal("1")),
    ]


def test_bars_come_back_oldest_first() -> None:
    bars = success("History/retrieveBars")
    # The fixture lists them newest first, as the gateway does.
    raw_times = [b["t"] for b in fixture_json("history_retrieve_bars.json")["bars"]]
    assert raw_times[0] > raw_times[-1]
    assert bars == [
        Bar(
            time=utc(2024, 12, 20, 13),
            open=Decimal("2195.8"),
            high=Decimal("2215.0"),
            low=Decimal("2192.9"),
            close=Decimal("2209.8"),
            volume=536,
        ),
        Bar(
            time=utc(2024, 12, 20, 14),
            open=Decimal("2208.1"),
            high=Decimal("2217"),
            low=Decimal("2206.7"),
            close=Decimal("2210.1"),
            volume=87,
        ),
        Bar(
            time=utc(2024, 12, 20, 15),
            open=Decimal("2210.1"),
            high=Decimal("2212.4"),
            low=Decimal("2201.3"),
            close=Decimal("2204"),
            volume=412,
        ),
    ]
    for bar in bars:
        assert_utc(bar.time)


def test_empty_bar_list() -> None:
    body = json_body({"bars": [], "success": True, "errorCode": 0, "errorMessage": None})
    assert parse("History/retrieveBars", body) == []


def test_order_search() -> None:
    filled, working = success("Order/search")
    assert filled == Order(
        id=36598,
        account_id=704,
        contract_id="CON.F.US.EP.U25",
        symbol_id="F.US.EP",
        created_at=utc(2025, 7, 18, 21, 0, 1, 268009),
        updated_at=utc(2025, 7, 18, 21, 0, 1, 496279),
        status=OrderStatus.FILLED,
        type=OrderType.MARKET,
        side=OrderSide.BUY,
        size=1,
        fill_volume=1,
        filled_price=Decimal("6335.25"),
    )
    assert filled.limit_price is None
    assert filled.custom_tag is None
    assert working.status is OrderStatus.OPEN
    assert working.status.is_working
    assert working.type is OrderType.LIMIT
    assert working.side is OrderSide.SELL
    assert working.limit_price == Decimal("6350.5")
    assert working.custom_tag == "tf-entry-0001"
    assert working.created_at == utc(2025, 7, 18, 21, 5, 44, 123456)
    assert working.updated_at is None
    for order in (filled, working):
        assert_utc(order.created_at)


def test_open_orders_carry_bracket_links() -> None:
    (stop,) = success("Order/searchOpen")
    assert stop.type is OrderType.STOP
    assert stop.stop_price == Decimal("23010.75")
    assert stop.parent_order_id == 40110
    assert stop.linked_order_id == 40112
    assert stop.trail_price is None
    assert stop.trail_distance is None
    assert stop.created_at == utc(2025, 7, 21, 13, 36, 3, 496279)
    assert stop.updated_at == stop.created_at


def test_order_by_id() -> None:
    order = success("Order/searchById")
    assert isinstance(order, Order)
    assert order.id == 40113
    assert order.type is OrderType.TRAILING_STOP
    assert order.trail_price == Decimal("3")
    assert order.trail_distance == 12
    assert order.custom_tag == "trail-7"
    assert order.created_at == utc(2025, 7, 21, 13, 40, 0, 1)


def test_order_query_page() -> None:
    page = success("Order/v2/query")
    assert isinstance(page, OrderPage)
    assert page.total_count == 57
    assert [o.id for o in page.orders] == [40112, 40111]
    assert isinstance(page.orders, tuple)
    assert page.orders[0].status is OrderStatus.SUSPENDED
    assert page.orders[0].limit_price == Decimal("23080")


def test_order_query_without_total_count() -> None:
    data = fixture_json("order_v2_query.json")
    del data["totalCount"]
    assert parse("Order/v2/query", json_body(data)).total_count is None
    data["totalCount"] = None
    assert parse("Order/v2/query", json_body(data)).total_count is None


@pytest.mark.parametrize("total", ["57", True, 5.5, [57]])
def test_order_query_total_count_must_be_an_integer(total: Any) -> None:
    data = fixture_json("order_v2_query.json")
    data["totalCount"] = total
    with pytest.raises(RemoteProtocolError, match="totalCount"):
        parse("Order/v2/query", json_body(data))


def test_place_returns_the_order_id() -> None:
    order_id = success("Order/place")
    assert order_id == 9056
    assert type(order_id) is int


def test_large_order_ids_stay_exact() -> None:
    body = json_body({"orderId": 9007199254740993, "success": True, "errorCode": 0})
    assert parse("Order/place", body) == 9007199254740993


def test_positions() -> None:
    long, short = success("Position/searchOpen")
    assert long == Position(
        id=6124,
        account_id=536,
        contract_id="CON.F.US.GMET.J25",
        created_at=utc(2025, 4, 21, 19, 52, 32, 175721),
        side=PositionSide.LONG,
        size=2,
        average_price=Decimal("1575.75"),
    )
    assert long.signed_size == 2
    assert short.side is PositionSide.SHORT
    assert short.signed_size == -4
    assert short.average_price == Decimal("42018")
    assert short.contract_display_name == "MYMM26"
    assert short.created_at == utc(2025, 4, 21, 20, 1, 9, 100000)


def test_trades() -> None:
    closing, opening = success("Trade/search")
    assert closing == Fill(
        id=8604,
        account_id=203,
        contract_id="CON.F.US.EP.H25",
        created_at=utc(2025, 1, 21, 16, 13, 52, 523293),
        price=Decimal("6065.25"),
        side=OrderSide.SELL,
        size=1,
        order_id=14328,
        fees=Decimal("1.4"),
        voided=False,
        profit_and_loss=Decimal("50"),
        commissions=None,
    )
    assert opening.profit_and_loss is None
    assert opening.commissions == Decimal("0.5")
    assert opening.created_at == utc(2025, 1, 21, 16, 13, 4, 142302)
    assert opening.side is OrderSide.BUY


@pytest.mark.parametrize("body", [b'"pong"', b"pong", b"pong\n", b'  "pong"  '])
def test_ping_accepts_plain_and_json_pong(body: bytes) -> None:
    assert parse("Status/ping", body, headers={"Content-Type": "text/plain"}) == "pong"


def test_ping_fixture() -> None:
    assert success("Status/ping") == "pong"


@pytest.mark.parametrize("body", [b"", b"   ", b'""'])
def test_ping_empty_answer_is_a_protocol_error(body: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        parse("Status/ping", body)


def test_ping_broken_json_string_is_a_protocol_error() -> None:
    with pytest.raises(RemoteProtocolError):
        parse("Status/ping", b'"pong')


# --- tolerant reading -------------------------------------------------------------------------


def test_unknown_extra_fields_are_ignored() -> None:
    data = fixture_json("order_search.json")
    data["serverTime"] = "2025-07-18T21:00:02Z"
    data["orders"][0]["someNewField"] = {"nested": [1, 2, 3]}
    data["orders"][0]["d"] = None
    orders = parse("Order/search", json_body(data))
    assert orders == success("Order/search")


def test_order_without_optional_fields() -> None:
    order = {
        "id": 1,
        "accountId": 2,
        "contractId": "CON.F.US.EP.U25",
        "creationTimestamp": "2025-07-18T21:00:01Z",
        "status": 1,
        "type": 1,
        "side": 0,
        "size": 1,
        "limitPrice": 6300.0,
    }
    body = json_body({"orders": [order], "success": True, "errorCode": 0})
    (parsed,) = parse("Order/search", body)
    assert parsed.symbol_id is None
    assert parsed.custom_tag is None
    assert parsed.updated_at is None
    assert parsed.fill_volume == 0
    assert parsed.limit_price == Decimal("6300")


def test_account_without_simulated_flag() -> None:
    account = {"id": 9, "name": "A", "balance": 50000, "canTrade": True, "isVisible": True}
    body = json_body({"accounts": [account], "success": True, "errorCode": 0, "errorMessage": None})
    (parsed,) = parse("Account/search", body)
    assert parsed.simulated is None
    assert parsed.balance == Decimal(50000)


def test_contract_without_symbol_id() -> None:
    contract = {
        "id": "CON.F.US.ENQ.H25",
        "name": "ENQH25",
        "description": "E-mini NASDAQ-100: March 2025",
        "tickSize": 0.25,
        "tickValue": 5,
        "activeContract": True,
    }
    body = json_body({"contracts": [contract], "success": True, "errorCode": 0})
    (parsed,) = parse("Contract/search", body)
    assert parsed.symbol_id is None


def test_unknown_enum_values_are_kept() -> None:
    data = fixture_json("order_search.json")
    data["orders"][0]["status"] = 9
    data["orders"][0]["type"] = 12
    order = parse("Order/search", json_body(data))[0]
    assert order.status == 9
    assert order.status.name == "UNKNOWN_9"
    assert not order.status.is_known
    assert not order.status.is_terminal
    assert order.type.name == "UNKNOWN_12"
    assert not order.type.is_known
    assert order.side.is_known


def test_unknown_position_side_is_kept() -> None:
    data = fixture_json("position_search_open.json")
    data["positions"][0]["type"] = 3
    position = parse("Position/searchOpen", json_body(data))[0]
    assert position.side.name == "UNKNOWN_3"
    assert not position.side.is_known


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-07-18T21:00:01.268009+00:00", utc(2025, 7, 18, 21, 0, 1, 268009)),
        ("2025-07-18T21:00:01.2680091Z", utc(2025, 7, 18, 21, 0, 1, 268009)),
        ("2025-07-18T21:00:01.268009123+00:00", utc(2025, 7, 18, 21, 0, 1, 268009)),
        ("2025-07-18T21:00:01Z", utc(2025, 7, 18, 21, 0, 1)),
        ("2025-07-18T21:00:01.5Z", utc(2025, 7, 18, 21, 0, 1, 500000)),
        ("2025-07-18T23:30:01.25+02:30", utc(2025, 7, 18, 21, 0, 1, 250000)),
        ("2025-07-18T16:00:01-05:00", utc(2025, 7, 18, 21, 0, 1)),
        ("2025-07-18T21:00:01", utc(2025, 7, 18, 21, 0, 1)),
    ],
)
def test_timestamps_become_aware_utc(text: str, expected: datetime) -> None:
    data = fixture_json("position_search_open.json")
    data["positions"][0]["creationTimestamp"] = text
    created = parse("Position/searchOpen", json_body(data))[0].created_at
    assert created == expected
    assert_utc(created)


def test_contract_by_id_reads_the_legacy_array_shape() -> None:
    legacy = fixture_json("contract_search.json")
    chosen = rest.get_contract("CON.F.US.MNQ.H25").parse(200, JSON, json_body(legacy))
    assert chosen.id == "CON.F.US.MNQ.H25"
    assert chosen.tick_value == Decimal("0.5")


@pytest.mark.parametrize(
    "data",
    [
        {"contracts": [], "success": True, "errorCode": 0},
        {"contract": None, "success": True, "errorCode": 0},
        {"success": True, "errorCode": 0, "errorMessage": None},
    ],
    ids=["empty-array", "null-contract", "no-payload"],
)
def test_contract_by_id_without_the_contract(data: dict[str, Any]) -> None:
    with pytest.raises(RemoteProtocolError, match=r"CON\.F\.US\.ENQ\.H25"):
        parse("Contract/searchById", json_body(data))


def test_contract_by_id_legacy_array_without_a_match() -> None:
    legacy = fixture_json("contract_search.json")
    with pytest.raises(RemoteProtocolError):
        rest.get_contract("CON.F.US.ZZZ.Z99").parse(200, JSON, json_body(legacy))


def test_errorcode_may_be_null_or_absent_on_success() -> None:
    body = json_body({"orderId": 1, "success": True, "errorCode": None})
    assert parse("Order/place", body) == 1
    body = json_body({"orderId": 2, "success": True})
    assert parse("Order/place", body) == 2


# --- business failures (HTTP 200, success false) ----------------------------------------------

# endpoint -> (its own error code, the gateway's name for it, the error class raised)
BUSINESS_FAILURES: dict[str, tuple[int, str, type[ProviderError]]] = {
    "Auth/loginKey": (3, "InvalidCredentials", AuthenticationError),
    "Auth/loginApp": (5, "AppVerificationFailed", AuthenticationError),
    "Auth/validate": (3, "ExpiredToken", AuthenticationError),
    "Auth/logout": (1, "InvalidSession", ProviderError),
    "Account/search": (1, "UNKNOWN_1", ProviderError),
    "Contract/search": (2, "UNKNOWN_2", ProviderError),
    "Contract/searchById": (1, "ContractNotFound", ProviderError),
    "Contract/available": (3, "UNKNOWN_3", ProviderError),
    "History/retrieveBars": (4, "LimitInvalid", ProviderError),
    "Order/search": (1, "AccountNotFound", ProviderError),
    "Order/searchOpen": (1, "AccountNotFound", ProviderError),
    "Order/searchById": (1, "OrderNotFound", ProviderError),
    "Order/v2/query": (1, "AccountNotFound", ProviderError),
    "Order/place": (9, "ContractNotActive", OrderRejected),
    "Order/cancel": (6, "AccountRejected", ProviderError),
    "Order/modify": (7, "ContractNotFound", ProviderError),
    "Position/searchOpen": (1, "AccountNotFound", ProviderError),
    "Position/closeContract": (5, "OrderRejected", ProviderError),
    "Position/partialCloseContract": (5, "InvalidCloseSize", ProviderError),
    "Trade/search": (1, "AccountNotFound", ProviderError),
}


def failure_body(endpoint: str, code: int, message: str | None) -> bytes:
    data: dict[str, Any] = {"success": False, "errorCode": code, "errorMessage": message}
    field = PAYLOAD_FIELDS[endpoint]
    if field is not None:
        data[field] = None
    return json_body(data)


def test_business_failure_table_covers_every_envelope_endpoint() -> None:
    assert sorted(BUSINESS_FAILURES) == sorted(ENVELOPE_ENDPOINTS)


@pytest.mark.parametrize("endpoint", ENVELOPE_ENDPOINTS)
def test_business_failure_carries_the_endpoints_code(endpoint: str) -> None:
    code, name, cls = BUSINESS_FAILURES[endpoint]
    with pytest.raises(ProviderError) as info:
        parse(endpoint, failure_body(endpoint, code, "the gateway says no"))
    err = info.value
    assert type(err) is cls
    assert err.code == code
    assert err.code_name == name
    assert err.message == "the gateway says no"
    assert err.endpoint == endpoint
    assert err.status == 200
    assert name in str(err)
    assert "the gateway says no" in str(err)


@pytest.mark.parametrize("endpoint", ENVELOPE_ENDPOINTS)
def test_unknown_error_code(endpoint: str) -> None:
    with pytest.raises(ProviderError) as info:
        parse(endpoint, failure_body(endpoint, 42, None))
    assert info.value.code == 42
    assert info.value.code_name == "UNKNOWN_42"
    assert info.value.message is None


def test_same_code_means_different_things_on_close_and_partial_close() -> None:
    with pytest.raises(ProviderError) as close:
        parse("Position/closeContract", failure_body("Position/closeContract", 5, None))
    with pytest.raises(ProviderError) as partial:
        parse(
            "Position/partialCloseContract",
            failure_body("Position/partialCloseContract", 5, None),
        )
    assert (close.value.code_name, partial.value.code_name) == ("OrderRejected", "InvalidCloseSize")
    with pytest.raises(ProviderError) as partial6:
        parse(
            "Position/partialCloseContract",
            failure_body("Position/partialCloseContract", 6, None),
        )
    assert partial6.value.code_name == "OrderRejected"


def test_login_failure_fixture() -> None:
    with pytest.raises(AuthenticationError) as info:
        parse("Auth/loginKey", fixture_bytes("failure_login_invalid_credentials.json"))
    assert info.value.code == 3
    assert info.value.code_name == "InvalidCredentials"
    assert info.value.message is None
    assert info.value.status == 200


def test_cancel_failure_fixture() -> None:
    with pytest.raises(ProviderError) as info:
        parse("Order/cancel", fixture_bytes("failure_cancel_follower.json"))
    assert info.value.code_name == "AccountRejected"
    assert info.value.message == "Follower accounts cannot cancel orders"


def test_rejected_place_that_still_created_an_order() -> None:
    with pytest.raises(OrderRejected) as info:
        parse("Order/place", fixture_bytes("failure_place_brackets_rejected.json"))
    err = info.value
    assert err.order_id == 9057
    assert err.code == 2
    assert err.code_name == "OrderRejected"
    assert err.message == (
        "Brackets cannot be used with Position Brackets. You must enable Auto OCO Brackets."
    )


@pytest.mark.parametrize("order_id", [None, "9057", True, 9057.0])
def test_rejected_place_without_a_usable_order_id(order_id: Any) -> None:
    body = json_body(
        {"orderId": order_id, "success": False, "errorCode": 2, "errorMessage": "Invalid order"}
    )
    with pytest.raises(OrderRejected) as info:
        parse("Order/place", body)
    assert info.value.order_id is None


def test_rejected_place_without_an_order_id_field() -> None:
    body = json_body({"success": False, "errorCode": 5, "errorMessage": "Outside"})
    with pytest.raises(OrderRejected) as info:
        parse("Order/place", body)
    assert info.value.order_id is None
    assert info.value.code_name == "OutsideTradingHours"


@pytest.mark.parametrize("endpoint", ENVELOPE_ENDPOINTS)
def test_success_true_with_an_error_code_is_a_failure(endpoint: str) -> None:
    code, name, cls = BUSINESS_FAILURES[endpoint]
    data = fixture_json(SUCCESS_FIXTURES[endpoint])
    data["errorCode"] = code
    with pytest.raises(ProviderError) as info:
        parse(endpoint, json_body(data))
    assert type(info.value) is cls
    assert info.value.code_name == name


@pytest.mark.parametrize("endpoint", ENVELOPE_ENDPOINTS)
def test_success_false_with_code_zero_is_still_a_failure(endpoint: str) -> None:
    data = fixture_json(SUCCESS_FIXTURES[endpoint])
    data["success"] = False
    with pytest.raises(ProviderError) as info:
        parse(endpoint, json_body(data))
    # No code to name: the error says the request failed rather than "Success (0)".
    assert info.value.code is None
    assert info.value.code_name is None
    assert "request failed" in str(info.value)


@pytest.mark.parametrize(
    "envelope",
    [
        {"success": "true", "errorCode": 0},
        {"success": 1, "errorCode": 0},
        {"success": None, "errorCode": 0},
        {"errorCode": 0, "errorMessage": None},
        {"success": True, "errorCode": "0"},
        {"success": False, "errorCode": True},
        {"success": False, "errorCode": 2.0},
    ],
)
@pytest.mark.parametrize("endpoint", ENVELOPE_ENDPOINTS)
def test_malformed_envelope(endpoint: str, envelope: dict[str, Any]) -> None:
    data = fixture_json(SUCCESS_FIXTURES[endpoint])
    data.pop("success")
    data.update(envelope)
    with pytest.raises(RemoteProtocolError):
        parse(endpoint, json_body(data))


# --- HTTP-level failures ----------------------------------------------------------------------

VALIDATION_BODY = fixture_bytes("failure_validation_problem.json")


@pytest.mark.parametrize("endpoint", rest.ENDPOINTS)
def test_http_400_validation_problem(endpoint: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        parse(endpoint, VALIDATION_BODY, status=400, headers={"Content-Type": "application/json"})
    err = info.value
    assert err.errors == {"accountId": ("The accountId field is required.",)}
    assert err.message == "One or more validation errors occurred."
    assert err.status == 400
    assert err.endpoint == endpoint
    assert err.code is None
    assert "accountId: The accountId field is required." in str(err)


def test_http_400_with_plain_text_and_odd_shapes() -> None:
    with pytest.raises(ValidationFailed) as info:
        parse("Order/place", b"Bad Request", status=400)
    assert info.value.errors == {}
    assert info.value.message == "Bad Request"
    with pytest.raises(ValidationFailed) as info:
        parse("Order/place", b"", status=400)
    assert info.value.message == "request rejected"
    with pytest.raises(ValidationFailed) as info:
        parse("Order/place", b"[1, 2]", status=400)
    assert info.value.errors == {}
    body = json_body(
        {
            "title": "Invalid",
            "errors": {
                "$.size": "The JSON value could not be converted to System.Int32.",
                "request": ["The request field is required.", 3],
                "ignored": None,
            },
        }
    )
    with pytest.raises(ValidationFailed) as info:
        parse("Order/place", body, status=400)
    assert info.value.errors == {
        "$.size": ("The JSON value could not be converted to System.Int32.",),
        "request": ("The request field is required.", "3"),
    }
    body = json_body({"errorMessage": "missing filter", "errors": []})
    with pytest.raises(ValidationFailed) as info:
        parse("Order/v2/query", body, status=400)
    assert info.value.message == "missing filter"
    assert info.value.errors == {}


@pytest.mark.parametrize("endpoint", rest.ENDPOINTS)
def test_http_401(endpoint: str) -> None:
    with pytest.raises(AuthenticationError) as info:
        parse(endpoint, b"", status=401, headers={})
    assert info.value.status == 401
    assert info.value.code is None
    assert info.value.message


def test_http_401_keeps_the_gateways_message() -> None:
    with pytest.raises(AuthenticationError) as info:
        parse("Order/search", json_body({"message": "Token expired"}), status=401)
    assert info.value.message == "Token expired"


@pytest.mark.parametrize("endpoint", rest.ENDPOINTS)
def test_http_429_with_retry_after_seconds(endpoint: str) -> None:
    with pytest.raises(RateLimited) as info:
        parse(endpoint, b"", status=429, headers={"Retry-After": "7"})
    assert info.value.retry_after == 7.0
    assert info.value.status == 429


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (
            {
                "Retry-After": "Wed, 21 Oct 2015 07:28:30 GMT",
                "Date": "Wed, 21 Oct 2015 07:28:00 GMT",
            },
            30.0,
        ),
        (
            {
                "Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT",
                "Date": "Wed, 21 Oct 2015 07:29:00 GMT",
            },
            0.0,
        ),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:30 GMT"}, None),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:30 -0000", "Date": "x"}, None),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:30 GMT", "Date": "not a date"}, None),
        (
            {
                "Retry-After": "Wed, 32 Oct 2015 07:28:30 GMT",
                "Date": "Wed, 21 Oct 2015 07:28:00 GMT",
            },
            None,
        ),
        (
            {"Retry-After": "Wed, 21 Oct 2015 07:28 GMT", "Date": "Wed, 21 Oct 2015 07:28:00 GMT"},
            None,
        ),
        (
            {
                "Retry-After": "Wed, 21 Foo 2015 07:28:30 GMT",
                "Date": "Wed, 21 Oct 2015 07:28:00 GMT",
            },
            None,
        ),
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": ""}, None),
        ({"Retry-After": "2.5"}, 2.5),
        ({"Retry-After": "-3"}, 0.0),
        ({"Retry-After": "nan"}, None),
        ({"Retry-After": "inf"}, None),
        ({}, None),
    ],
    ids=[
        "date",
        "date-in-past",
        "date-without-date-header",
        "naive-date",
        "bad-date-header",
        "day-out-of-range",
        "time-without-seconds",
        "unknown-month",
        "text",
        "empty",
        "fraction",
        "negative",
        "nan",
        "inf",
        "absent",
    ],
)
def test_http_429_retry_after_forms(headers: dict[str, str], expected: float | None) -> None:
    with pytest.raises(RateLimited) as info:
        parse("Order/place", b"Too Many Requests", status=429, headers=headers)
    assert info.value.retry_after == expected
    assert info.value.message == "Too Many Requests"


@pytest.mark.parametrize(
    "headers",
    [
        {
            "Retry-After": "Wed, 21 Oct 99999999999999999999 07:28:30 GMT",
            "Date": "Wed, 21 Oct 2015 07:28:00 GMT",
        },
        {
            "Retry-After": "Wed, 99999999999 Oct 2015 07:28:30 GMT",
            "Date": "Wed, 21 Oct 2015 07:28:00 GMT",
        },
        {
            "Retry-After": "Wed, 21 Oct 2015 07:28:30 GMT",
            "Date": "Wed, 21 Oct 2015 07:28:99999999999999999999 GMT",
        },
    ],
    ids=["huge-year", "huge-day", "huge-second-in-date"],
)
def test_http_429_with_absurd_http_dates_is_still_rate_limited(headers: dict[str, str]) -> None:
    # A garbled Retry-After must not turn a 429 into a crash: the hint is simply unusable.
    with pytest.raises(RateLimited) as info:
        parse("Order/place", b"", status=429, headers=headers)
    assert info.value.retry_after is None


def test_http_429_default_message() -> None:
    with pytest.raises(RateLimited) as info:
        parse("History/retrieveBars", b"", status=429, headers=())
    assert info.value.retry_after is None
    assert info.value.message


@pytest.mark.parametrize("status", [500, 502, 503])
@pytest.mark.parametrize("endpoint", rest.ENDPOINTS)
def test_http_5xx_html(endpoint: str, status: int) -> None:
    html = fixture_bytes("failure_bad_gateway.html")
    with pytest.raises(ServerError) as info:
        parse(endpoint, html, status=status, headers={"Content-Type": "text/html"})
    assert info.value.status == status
    assert info.value.message is not None
    assert "502 Bad Gateway" in info.value.message


def test_http_5xx_messages() -> None:
    with pytest.raises(ServerError) as info:
        parse("Order/place", json_body({"errorMessage": "boom", "success": False}), status=500)
    assert info.value.message == "boom"
    with pytest.raises(ServerError) as info:
        parse("Order/place", json_body("Service Unavailable"), status=503)
    assert info.value.message == "Service Unavailable"
    with pytest.raises(ServerError) as info:
        parse("Order/place", json_body({"detail": 5}), status=500)
    assert info.value.message is None
    with pytest.raises(ServerError) as info:
        parse("Order/place", b"x" * 5000, status=500)
    assert info.value.message is not None
    assert len(info.value.message) < 300
    assert info.value.message.endswith("...")
    with pytest.raises(ServerError) as info:
        parse("Order/place", b"[1]", status=504)
    assert info.value.message == "[1]"


@pytest.mark.parametrize("status", [404, 403, 405, 409, 302, 101])
@pytest.mark.parametrize("endpoint", rest.ENDPOINTS)
def test_other_statuses(endpoint: str, status: int) -> None:
    with pytest.raises(ProviderError) as info:
        parse(endpoint, b"Not Found", status=status)
    assert type(info.value) is ProviderError
    assert info.value.status == status
    assert info.value.message == "Not Found"
    assert f"HTTP {status}" in str(info.value)


def test_write_failures_that_are_not_rejections() -> None:
    # A place that fails on the HTTP level is not an order rejection.
    with pytest.raises(ValidationFailed):
        parse("Order/place", VALIDATION_BODY, status=400)
    with pytest.raises(ServerError) as info:
        parse("Order/place", b"", status=503)
    assert not isinstance(info.value, OrderRejected)
    assert info.value.message is None


# --- malformed success answers ----------------------------------------------------------------

HTML = fixture_bytes("failure_bad_gateway.html")


@pytest.mark.parametrize("endpoint", ENVELOPE_ENDPOINTS)
def test_html_with_200_is_a_protocol_error(endpoint: str) -> None:
    with pytest.raises(RemoteProtocolError, match="text/html"):
        parse(endpoint, HTML, headers={"Content-Type": "text/html"})
    with pytest.raises(RemoteProtocolError, match="no content type"):
        parse(endpoint, HTML, headers={})


@pytest.mark.parametrize("body", [b"[]", b'[{"success": true}]', b"true", b"null", b"42", b'"ok"'])
@pytest.mark.parametrize("endpoint", ENVELOPE_ENDPOINTS)
def test_json_that_is_not_an_object(endpoint: str, body: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        parse(endpoint, body)


@pytest.mark.parametrize("endpoint", ENVELOPE_ENDPOINTS)
def test_missing_success_field(endpoint: str) -> None:
    data = fixture_json(SUCCESS_FIXTURES[endpoint])
    del data["success"]
    with pytest.raises(RemoteProtocolError, match="success"):
        parse(endpoint, json_body(data))


@pytest.mark.parametrize("endpoint", PAYLOAD_ENDPOINTS)
def test_missing_payload_field_is_an_error_but_null_is_empty(endpoint: str) -> None:
    field = PAYLOAD_FIELDS[endpoint]
    data = fixture_json(SUCCESS_FIXTURES[endpoint])
    del data[field]
    with pytest.raises(RemoteProtocolError):
        parse(endpoint, json_body(data))
    data[field] = None
    if field not in LIST_FIELDS:
        with pytest.raises(RemoteProtocolError):
            parse(endpoint, json_body(data))
        return
    result = parse(endpoint, json_body(data))
    assert (list(result.orders) if endpoint == "Order/v2/query" else result) == []


LIST_FIELDS = {"accounts", "contracts", "bars", "orders", "positions", "trades"}


@pytest.mark.parametrize("value", [5.5, {"id": 1}, True, ["x"]])
@pytest.mark.parametrize("endpoint", PAYLOAD_ENDPOINTS)
def test_payload_of_the_wrong_type(endpoint: str, value: Any) -> None:
    field = PAYLOAD_FIELDS[endpoint]
    data = fixture_json(SUCCESS_FIXTURES[endpoint])
    data[field] = value
    with pytest.raises(RemoteProtocolError):
        parse(endpoint, json_body(data))


def _with(name: str, path: tuple[Any, ...], value: Any, *, delete: bool = False) -> bytes:
    data = copy.deepcopy(fixture_json(name))
    target = data
    for key in path[:-1]:
        target = target[key]
    if delete:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return json_body(data)


# (endpoint, fixture path to change, bad value); None as value with delete=True removes the key.
BAD_ENTITIES: list[tuple[str, tuple[Any, ...], Any]] = [
    ("Account/search", ("accounts", 0, "balance"), "abc"),
    ("Account/search", ("accounts", 0, "balance"), "NaN"),
    ("Account/search", ("accounts", 0, "balance"), None),
    ("Account/search", ("accounts", 0, "balance"), True),
    ("Account/search", ("accounts", 0, "id"), None),
    ("Account/search", ("accounts", 0, "id"), "20258288"),
    ("Account/search", ("accounts", 0, "id"), 1.5),
    ("Account/search", ("accounts", 0, "canTrade"), "true"),
    ("Account/search", ("accounts", 0, "canTrade"), 1),
    ("Account/search", ("accounts", 0, "name"), 5),
    ("Account/search", ("accounts", 1), "not an account"),
    ("Account/search", ("accounts", 1), [1]),
    ("Contract/search", ("contracts", 0, "tickSize"), None),
    ("Contract/search", ("contracts", 0, "activeContract"), None),
    ("Contract/searchById", ("contract", "id"), None),
    ("Contract/searchById", ("contract",), "CON.F.US.ENQ.H25"),
    ("Contract/available", ("contracts", 1, "description"), None),
    ("History/retrieveBars", ("bars", 0, "t"), "yesterday"),
    ("History/retrieveBars", ("bars", 0, "t"), 1734703200),
    ("History/retrieveBars", ("bars", 1, "v"), 1.5),
    ("History/retrieveBars", ("bars", 2, "o"), None),
    ("Order/search", ("orders", 0, "id"), None),
    ("Order/search", ("orders", 0, "status"), None),
    ("Order/search", ("orders", 0, "status"), "Filled"),
    ("Order/search", ("orders", 0, "side"), True),
    ("Order/search", ("orders", 0, "creationTimestamp"), None),
    ("Order/search", ("orders", 0, "creationTimestamp"), "0001-01-01T00:00:00+01:00"),
    ("Order/search", ("orders", 0, "filledPrice"), "6335.25.1"),
    ("Order/searchOpen", ("orders", 0, "parentOrderId"), "40110"),
    ("Order/searchById", ("order", "size"), None),
    ("Order/v2/query", ("orders", 1, "contractId"), None),
    ("Position/searchOpen", ("positions", 0, "type"), None),
    ("Position/searchOpen", ("positions", 0, "averagePrice"), "abc"),
    ("Trade/search", ("trades", 0, "price"), None),
    ("Trade/search", ("trades", 0, "voided"), None),
    ("Trade/search", ("trades", 1, "orderId"), None),
]


@pytest.mark.parametrize(("endpoint", "path", "value"), BAD_ENTITIES)
def test_bad_entity_fields_are_protocol_errors(
    endpoint: str, path: tuple[Any, ...], value: Any
) -> None:
    body = _with(SUCCESS_FIXTURES[endpoint], path, value)
    with pytest.raises(RemoteProtocolError):
        parse(endpoint, body)


@pytest.mark.parametrize(
    ("endpoint", "path"),
    [
        ("Account/search", ("accounts", 0, "balance")),
        ("Contract/search", ("contracts", 0, "id")),
        ("History/retrieveBars", ("bars", 0, "c")),
        ("Order/search", ("orders", 0, "contractId")),
        ("Position/searchOpen", ("positions", 1, "size")),
        ("Trade/search", ("trades", 0, "creationTimestamp")),
    ],
)
def test_missing_required_entity_fields_are_protocol_errors(
    endpoint: str, path: tuple[Any, ...]
) -> None:
    body = _with(SUCCESS_FIXTURES[endpoint], path, None, delete=True)
    with pytest.raises(RemoteProtocolError, match=r"malformed"):
        parse(endpoint, body)


def test_protocol_error_names_the_bad_field() -> None:
    body = _with("account_search.json", ("accounts", 0, "balance"), "abc")
    with pytest.raises(RemoteProtocolError) as info:
        parse("Account/search", body)
    assert "balance" in str(info.value)
    assert "Account" in str(info.value)


def test_numeric_strings_are_read_as_decimals() -> None:
    body = _with("account_search.json", ("accounts", 0, "balance"), " 150175.380000000 ")
    assert parse("Account/search", body)[0].balance == Decimal("150175.38")


@pytest.mark.parametrize("value", [None, "", 12345, ["t"]])
@pytest.mark.parametrize("endpoint", ["Auth/loginKey", "Auth/loginApp", "Auth/validate"])
def test_token_must_be_a_nonempty_string(endpoint: str, value: Any) -> None:
    field = PAYLOAD_FIELDS[endpoint]
    data = fixture_json(SUCCESS_FIXTURES[endpoint])
    data[field] = value
    with pytest.raises(RemoteProtocolError):
        parse(endpoint, json_body(data))


@pytest.mark.parametrize("value", ["9056", True, 9056.5, None, [9056]])
def test_place_order_id_must_be_an_integer(value: Any) -> None:
    body = json_body({"orderId": value, "success": True, "errorCode": 0})
    with pytest.raises(RemoteProtocolError, match="orderId"):
        parse("Order/place", body)


# --- empty bodies -----------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ["Position/closeContract", "Position/partialCloseContract"])
@pytest.mark.parametrize("body", [b"", b"  \r\n"])
@pytest.mark.parametrize("status", [200, 204])
def test_close_accepts_an_empty_success_body(endpoint: str, body: bytes, status: int) -> None:
    assert parse(endpoint, body, status=status, headers={}) is None


@pytest.mark.parametrize("endpoint", ["Position/closeContract", "Position/partialCloseContract"])
def test_close_empty_body_on_failure_statuses_is_still_a_failure(endpoint: str) -> None:
    with pytest.raises(ServerError):
        parse(endpoint, b"", status=500)
    with pytest.raises(AuthenticationError):
        parse(endpoint, b"", status=401)


@pytest.mark.parametrize(
    "endpoint",
    [
        e
        for e in ENVELOPE_ENDPOINTS
        if e not in {"Position/closeContract", "Position/partialCloseContract"}
    ],
)
def test_other_endpoints_refuse_an_empty_success_body(endpoint: str) -> None:
    with pytest.raises(RemoteProtocolError, match="empty"):
        parse(endpoint, b"")
    with pytest.raises(RemoteProtocolError, match="empty"):
        parse(endpoint, b" \n", status=204)


# --- the wire helpers used directly -----------------------------------------------------------


def test_from_wire_refuses_non_objects() -> None:
    with pytest.raises(RemoteProtocolError, match="Order"):
        wire.from_wire(Order, [1, 2])
    with pytest.raises(RemoteProtocolError):
        wire.many_from_wire(Order, {"id": 1})
    assert wire.many_from_wire(Order, None) == []


def test_structure_hook_reads_items() -> None:
    items = fixture_json("position_search_open.json")["positions"]
    read = wire.structure_hook(Position)
    assert [read(item) for item in items] == success("Position/searchOpen")


def test_parse_response_and_map() -> None:
    op = OPERATIONS["Order/place"].map(lambda order_id: order_id + 1)
    assert op.parse(200, (), fixture_bytes("order_place.json")) == 9057
    assert op.safety is OPERATIONS["Order/place"].safety
    response = HttpResponse(
        200, (("content-type", "application/json"),), b'{"orderId":7,"success":true}'
    )
    assert OPERATIONS["Order/place"].parse_response(response) == 7


def test_whole_numbers_written_as_floats_are_read_as_integers() -> None:
    body = _with("history_retrieve_bars.json", ("bars", 0, "v"), 412.0)
    newest = parse("History/retrieveBars", body)[-1]
    assert newest.volume == 412
    assert type(newest.volume) is int
