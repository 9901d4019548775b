"""The exact HTTP requests built for every TopstepX REST endpoint, and the checks done before."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from tradeforge_proto.core.enums import (
    BarUnit,
    OrderSide,
    OrderSortField,
    OrderStatus,
    OrderType,
    SortDirection,
)
from tradeforge_proto.core.errors import FeatureDisabled, LocalProtocolError
from tradeforge_proto.core.models import (
    BarRequest,
    Bracket,
    OrderModification,
    OrderQuery,
    OrderRequest,
)
from tradeforge_proto.core.operations import Change, Operation, RateBucket, Safety
from tradeforge_proto.core.secret import Secret
from tradeforge_proto.providers.topstepx import rest

from .support import API_KEY, BUILDERS, OPERATIONS, PASSWORD, VERIFY_KEY

JSON_HEADERS = (("Content-Type", "application/json"), ("Accept", "application/json"))

ACCOUNT = 465
CONTRACT = "CON.F.US.DA6.M25"


def canonical(value: Any) -> str:
    """A type-exact comparison form: 1, 1.0 and true all differ, key order does not matter."""
    return json.dumps(value, sort_keys=True)


def decoded_body(op: Operation[Any]) -> Any:
    return json.loads(op.request.body)


def assert_post(op: Operation[Any], path: str, body: dict[str, Any] | None) -> None:
    request = op.request
    assert request.method == "POST"
    assert request.path == path
    assert request.headers == JSON_HEADERS
    assert request.header("content-type") == "application/json"
    assert request.header("Authorization") is None
    if body is None:
        assert request.body == b""
    else:
        assert canonical(decoded_body(op)) == canonical(body)


# --- one exact request per endpoint -----------------------------------------------------------

T0 = datetime(2025, 7, 18, 21, 0, tzinfo=UTC)
T1 = datetime(2025, 7, 18, 22, 0, tzinfo=UTC)

# (endpoint, builder, expected path, expected decoded body or None for an empty body)
REQUEST_CASES: list[tuple[str, Callable[[], Operation[Any]], str, dict[str, Any] | None]] = [
    (
        "Auth/loginKey",
        lambda: rest.login_key("jdoe", "my-api-key"),
        "/api/Auth/loginKey",
        {"userName": "jdoe", "apiKey": "my-api-key"},
    ),
    (
        "Auth/loginApp",
        lambda: rest.login_app("admin", Secret("pw"), "dev-42", "app-7", Secret("vk")),
        "/api/Auth/loginApp",
        {
            "userName": "admin",
            "password": "pw",
            "deviceId": "dev-42",
            "appId": "app-7",
            "verifyKey": "vk",
        },
    ),
    ("Auth/validate", rest.validate, "/api/Auth/validate", None),
    ("Auth/logout", rest.logout, "/api/Auth/logout", None),
    (
        "Account/search",
        rest.search_accounts,
        "/api/Account/search",
        {"onlyActiveAccounts": True},
    ),
    (
        "Contract/search",
        lambda: rest.search_contracts("NQ"),
        "/api/Contract/search",
        {"live": False, "searchText": "NQ"},
    ),
    (
        "Contract/searchById",
        lambda: rest.get_contract("CON.F.US.ENQ.H25"),
        "/api/Contract/searchById",
        {"contractId": "CON.F.US.ENQ.H25"},
    ),
    (
        "Contract/available",
        lambda: rest.available_contracts(live=True),
        "/api/Contract/available",
        {"live": True},
    ),
    (
        "History/retrieveBars",
        lambda: rest.retrieve_bars(
            "CON.F.US.RTY.Z24",
            BarUnit.HOUR,
            1,
            start=datetime(2024, 12, 1, tzinfo=UTC),
            end=datetime(2024, 12, 31, 21, tzinfo=UTC),
            limit=7,
        ),
        "/api/History/retrieveBars",
        {
            "contractId": "CON.F.US.RTY.Z24",
            "live": False,
            "startTime": "2024-12-01T00:00:00Z",
            "endTime": "2024-12-31T21:00:00Z",
            "unit": 3,
            "unitNumber": 1,
            "limit": 7,
            "includePartialBar": False,
        },
    ),
    (
        "Order/search",
        lambda: rest.search_orders(704, T0, T1),
        "/api/Order/search",
        {
            "accountId": 704,
            "startTimestamp": "2025-07-18T21:00:00Z",
            "endTimestamp": "2025-07-18T22:00:00Z",
        },
    ),
    (
        "Order/searchOpen",
        lambda: rest.search_open_orders(704),
        "/api/Order/searchOpen",
        {"accountId": 704},
    ),
    (
        "Order/searchById",
        lambda: rest.get_order(704, 36598),
        "/api/Order/searchById",
        {"accountId": 704, "orderId": 36598},
    ),
    (
        "Order/v2/query",
        lambda: rest.query_orders(OrderQuery(account_id=704)),
        "/api/Order/v2/query",
        {"filter": {"accountId": 704}},
    ),
    (
        "Order/place",
        lambda: rest.place_order(ACCOUNT, CONTRACT, OrderSide.SELL, OrderType.MARKET, 1),
        "/api/Order/place",
        {"accountId": ACCOUNT, "contractId": CONTRACT, "type": 2, "side": 1, "size": 1},
    ),
    (
        "Order/cancel",
        lambda: rest.cancel_order(ACCOUNT, 26974),
        "/api/Order/cancel",
        {"accountId": ACCOUNT, "orderId": 26974},
    ),
    (
        "Order/modify",
        lambda: rest.modify_order(ACCOUNT, 26974, size=1, stop_price=Decimal("1604.25")),
        "/api/Order/modify",
        {"accountId": ACCOUNT, "orderId": 26974, "size": 1, "stopPrice": 1604.25},
    ),
    (
        "Position/searchOpen",
        lambda: rest.search_open_positions(536),
        "/api/Position/searchOpen",
        {"accountId": 536},
    ),
    (
        "Position/closeContract",
        lambda: rest.close_position(536, "CON.F.US.GMET.J25"),
        "/api/Position/closeContract",
        {"accountId": 536, "contractId": "CON.F.US.GMET.J25"},
    ),
    (
        "Position/partialCloseContract",
        lambda: rest.partial_close_position(536, "CON.F.US.GMET.J25", 1),
        "/api/Position/partialCloseContract",
        {"accountId": 536, "contractId": "CON.F.US.GMET.J25", "size": 1},
    ),
    (
        "Trade/search",
        lambda: rest.search_trades(
            203,
            datetime(2025, 1, 20, 15, 47, 39, 882000, tzinfo=UTC),
            datetime(2025, 1, 30, 15, 47, 39, 882000, tzinfo=UTC),
        ),
        "/api/Trade/search",
        {
            "accountId": 203,
            "startTimestamp": "2025-01-20T15:47:39.882000Z",
            "endTimestamp": "2025-01-30T15:47:39.882000Z",
        },
    ),
]

POST_ENDPOINTS = [case[0] for case in REQUEST_CASES]


def test_every_endpoint_has_a_request_case_and_a_builder() -> None:
    assert len(rest.ENDPOINTS) == 21
    assert len(set(rest.ENDPOINTS)) == 21
    assert sorted([*POST_ENDPOINTS, "Status/ping"]) == sorted(rest.ENDPOINTS)
    assert sorted(BUILDERS) == sorted(rest.ENDPOINTS)


@pytest.mark.parametrize(("endpoint", "build", "path", "body"), REQUEST_CASES, ids=POST_ENDPOINTS)
def test_post_request_is_exact(
    endpoint: str, build: Callable[[], Operation[Any]], path: str, body: dict[str, Any] | None
) -> None:
    op = build()
    assert op.name == endpoint
    assert path == f"/api/{endpoint}"
    assert_post(op, path, body)


def test_ping_is_a_plain_get() -> None:
    op = rest.ping()
    assert op.name == "Status/ping"
    assert op.request.method == "GET"
    assert op.request.path == "/api/Status/ping"
    assert op.request.headers == (("Accept", "text/plain"),)
    assert op.request.body == b""


# --- operation metadata -----------------------------------------------------------------------

WRITE_ENDPOINTS = {
    "Order/place",
    "Order/cancel",
    "Order/modify",
    "Position/closeContract",
    "Position/partialCloseContract",
}
AUTH_ENDPOINTS = {"Auth/loginKey", "Auth/loginApp", "Auth/validate", "Auth/logout"}
UNAUTHENTICATED = {"Auth/loginKey", "Auth/loginApp", "Status/ping"}


@pytest.mark.parametrize("endpoint", rest.ENDPOINTS)
def test_safety_bucket_and_authentication(endpoint: str) -> None:
    op = OPERATIONS[endpoint]
    assert op.name == endpoint
    if endpoint in WRITE_ENDPOINTS:
        assert op.safety is Safety.WRITE
        assert not op.retryable
    elif endpoint in AUTH_ENDPOINTS:
        assert op.safety is Safety.AUTH
        assert op.retryable
    else:
        assert op.safety is Safety.READ
        assert op.retryable
    expected_bucket = (
        RateBucket.HISTORY if endpoint == "History/retrieveBars" else RateBucket.GENERAL
    )
    assert op.bucket is expected_bucket
    assert op.authenticated is (endpoint not in UNAUTHENTICATED)


def test_place_context_carries_what_reconciliation_needs() -> None:
    op = rest.place_order(
        ACCOUNT,
        CONTRACT,
        OrderSide.BUY,
        OrderType.LIMIT,
        2,
        limit_price="6335.25",
        custom_tag="t-1",
    )
    assert op.context["account_id"] == ACCOUNT
    assert op.context["contract_id"] == CONTRACT
    assert op.context["custom_tag"] == "t-1"
    request = op.context["request"]
    assert isinstance(request, OrderRequest)
    assert request.limit_price == Decimal("6335.25")
    assert request.size == 2


def test_place_context_without_custom_tag() -> None:
    op = rest.place_order(ACCOUNT, CONTRACT, "buy", "market")
    assert op.context["custom_tag"] is None
    assert op.context["account_id"] == ACCOUNT


@pytest.mark.parametrize(
    ("op", "expected"),
    [
        (
            rest.cancel_order(ACCOUNT, 26974),
            {"change": Change.CANCEL, "account_id": ACCOUNT, "order_id": 26974},
        ),
        (
            rest.modify_order(ACCOUNT, 26974, size=3),
            {
                "change": Change.MODIFY,
                "account_id": ACCOUNT,
                "order_id": 26974,
                "request": OrderModification(ACCOUNT, 26974, size=3),
            },
        ),
        (
            rest.close_position(536, "C"),
            {"change": Change.CLOSE, "account_id": 536, "contract_id": "C"},
        ),
        (
            rest.partial_close_position(536, "C", 2),
            {"change": Change.PARTIAL_CLOSE, "account_id": 536, "contract_id": "C", "size": 2},
        ),
    ],
    ids=["cancel", "modify", "close", "partialClose"],
)
def test_write_contexts(op: Operation[Any], expected: dict[str, Any]) -> None:
    assert dict(op.context) == expected


# --- secrets ----------------------------------------------------------------------------------


def test_login_key_sends_the_key_but_never_shows_it() -> None:
    op = OPERATIONS["Auth/loginKey"]
    assert decoded_body(op)["apiKey"] == API_KEY
    assert API_KEY not in repr(op)
    assert API_KEY not in str(op)
    assert API_KEY not in repr(op.request)


def test_login_key_accepts_a_secret() -> None:
    op = rest.login_key("jdoe", Secret(API_KEY))
    assert decoded_body(op) == {"userName": "jdoe", "apiKey": API_KEY}
    assert API_KEY not in repr(op)


def test_login_app_sends_password_and_verify_key_but_never_shows_them() -> None:
    op = OPERATIONS["Auth/loginApp"]
    body = decoded_body(op)
    assert body["password"] == PASSWORD
    assert body["verifyKey"] == VERIFY_KEY
    for secret in (PASSWORD, VERIFY_KEY):
        assert secret not in repr(op)
        assert secret not in repr(op.request)


def test_plain_string_login_app_credentials_are_sent_as_is() -> None:
    op = rest.login_app("u", "plain-pw", "d", "a", "plain-vk")
    body = decoded_body(op)
    assert (body["password"], body["verifyKey"]) == ("plain-pw", "plain-vk")


def test_authorization_header_is_masked_in_repr() -> None:
    original = rest.search_open_orders(704).request
    request = original.with_header("Authorization", "Bearer abc")
    assert request.header("authorization") == "Bearer abc"
    assert "abc" not in repr(request)
    assert "********" in repr(request)
    # The builder's request is left untouched and the JSON headers are kept.
    assert original.header("Authorization") is None
    assert request.header("Content-Type") == "application/json"
    # Setting it again replaces the header instead of adding a second one.
    again = request.with_header("authorization", "Bearer xyz")
    assert [k.lower() for k, _ in again.headers].count("authorization") == 1
    assert again.header("Authorization") == "Bearer xyz"


@pytest.mark.parametrize(
    ("name", "value"),
    [("Authorization", "Bearer abc\r\nX-Evil: 1"), ("X-Bad\r\nName", "v"), ("", "v")],
)
def test_header_injection_is_refused(name: str, value: str) -> None:
    with pytest.raises(LocalProtocolError):
        rest.ping().request.with_header(name, value)


# --- bodies of the richer endpoints -----------------------------------------------------------


def test_limit_order_with_tag_and_decimal_price() -> None:
    op = rest.place_order(
        ACCOUNT,
        CONTRACT,
        OrderSide.BUY,
        OrderType.LIMIT,
        3,
        limit_price=Decimal("6335.250000000"),
        custom_tag="entry-1",
    )
    assert_post(
        op,
        "/api/Order/place",
        {
            "accountId": ACCOUNT,
            "contractId": CONTRACT,
            "type": 1,
            "side": 0,
            "size": 3,
            "limitPrice": 6335.25,
            "customTag": "entry-1",
        },
    )
    assert b'"limitPrice":6335.25' in op.request.body


def test_whole_prices_are_sent_as_json_integers() -> None:
    op = rest.place_order(
        ACCOUNT, CONTRACT, OrderSide.SELL, OrderType.STOP, 1, stop_price=Decimal("1604.000")
    )
    assert canonical(decoded_body(op)["stopPrice"]) == "1604"


def test_float_and_string_prices_are_sent_exactly() -> None:
    op = rest.place_order(ACCOUNT, CONTRACT, "sell", "limit", 1, limit_price=0.1)
    assert b'"limitPrice":0.1' in op.request.body
    op = rest.place_order(ACCOUNT, CONTRACT, 0, 3, 1, limit_price="23080.5", stop_price=23080)
    assert canonical(decoded_body(op)) == canonical(
        {
            "accountId": ACCOUNT,
            "contractId": CONTRACT,
            "type": 3,
            "side": 0,
            "size": 1,
            "limitPrice": 23080.5,
            "stopPrice": 23080,
        }
    )


def test_place_accepts_an_order_request() -> None:
    order = OrderRequest(
        account_id=ACCOUNT,
        contract_id=CONTRACT,
        side=OrderSide.BUY,
        type=OrderType.JOIN_BID,
        size=4,
        custom_tag="jb",
    )
    op = rest.place_order(order)
    assert canonical(decoded_body(op)) == canonical(
        {
            "accountId": ACCOUNT,
            "contractId": CONTRACT,
            "type": 6,
            "side": 0,
            "size": 4,
            "customTag": "jb",
        }
    )
    assert op.context["request"] is order


def test_place_needs_contract_side_and_type() -> None:
    with pytest.raises(TypeError):
        rest.place_order(ACCOUNT, CONTRACT, OrderSide.BUY)


def test_brackets_when_allowed() -> None:
    op = rest.place_order(
        ACCOUNT,
        CONTRACT,
        OrderSide.SELL,
        OrderType.MARKET,
        1,
        stop_loss=Bracket(10, OrderType.STOP),
        take_profit=Bracket(-20, OrderType.LIMIT),
        allow_brackets=True,
    )
    assert canonical(decoded_body(op)) == canonical(
        {
            "accountId": ACCOUNT,
            "contractId": CONTRACT,
            "type": 2,
            "side": 1,
            "size": 1,
            "stopLossBracket": {"ticks": 10, "type": 4},
            "takeProfitBracket": {"ticks": -20, "type": 1},
        }
    )


def test_single_buy_bracket_when_allowed() -> None:
    op = rest.place_order(
        ACCOUNT,
        CONTRACT,
        OrderSide.BUY,
        OrderType.MARKET,
        1,
        stop_loss=Bracket(-8, OrderType.STOP),
        allow_brackets=True,
    )
    body = decoded_body(op)
    assert body["stopLossBracket"] == {"ticks": -8, "type": 4}
    assert "takeProfitBracket" not in body


def test_trailing_stop_when_allowed() -> None:
    op = rest.place_order(
        ACCOUNT,
        CONTRACT,
        OrderSide.SELL,
        OrderType.TRAILING_STOP,
        1,
        trail_price=Decimal("23000.25"),
        allow_trailing_stop=True,
    )
    body = decoded_body(op)
    assert canonical(body) == canonical(
        {
            "accountId": ACCOUNT,
            "contractId": CONTRACT,
            "type": 5,
            "side": 1,
            "size": 1,
            "trailPrice": 23000.25,
        }
    )


def test_retrieve_bars_from_a_request_object_and_other_time_zones() -> None:
    eastern = timezone(timedelta(hours=-5))
    request = BarRequest(
        contract_id="CON.F.US.EP.U25",
        unit="minute",
        unit_number=5,
        start=datetime(2025, 7, 18, 9, 30, 0, 250000, tzinfo=eastern),
        end=datetime(2025, 7, 18, 16, 0, tzinfo=eastern),
        limit=20_000,
        live=True,
        include_partial_bar=True,
    )
    op = rest.retrieve_bars(request)
    assert_post(
        op,
        "/api/History/retrieveBars",
        {
            "contractId": "CON.F.US.EP.U25",
            "live": True,
            "startTime": "2025-07-18T14:30:00.250000Z",
            "endTime": "2025-07-18T21:00:00Z",
            "unit": 2,
            "unitNumber": 5,
            "limit": 20000,
            "includePartialBar": True,
        },
    )
    assert op.bucket is RateBucket.HISTORY


def test_retrieve_bars_tick_unit_and_default_limit() -> None:
    op = rest.retrieve_bars(
        "C", BarUnit.TICK, 100, start=T0, end=T1, include_partial_bar=True, live=True
    )
    body = decoded_body(op)
    assert (body["unit"], body["unitNumber"], body["limit"]) == (7, 100, 20000)
    assert body["includePartialBar"] is True
    assert body["live"] is True


def test_retrieve_bars_needs_unit_start_and_end() -> None:
    with pytest.raises(TypeError):
        rest.retrieve_bars("C", BarUnit.MINUTE, 1, start=T0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"start": datetime(2025, 1, 1), "end": T1},
        {"start": T0, "end": datetime(2025, 12, 1)},
        {"start": T1, "end": T0},
        {"start": T0, "end": T1, "unit": BarUnit.UNSPECIFIED},
        {"start": T0, "end": T1, "unit": 42},
        {"start": T0, "end": T1, "unit_number": 0},
        {"start": T0, "end": T1, "limit": 0},
    ],
    ids=["naive-start", "naive-end", "reversed", "unspecified", "unknown-unit", "unit0", "limit0"],
)
def test_retrieve_bars_refuses_bad_requests(kwargs: dict[str, Any]) -> None:
    args = {"unit": BarUnit.MINUTE, "unit_number": 1, **kwargs}
    with pytest.raises(LocalProtocolError):
        rest.retrieve_bars("C", **args)


def test_search_without_end_leaves_it_out() -> None:
    body = decoded_body(rest.search_orders(704, T0))
    assert canonical(body) == canonical(
        {"accountId": 704, "startTimestamp": "2025-07-18T21:00:00Z"}
    )
    body = decoded_body(rest.search_trades(704, T0))
    assert canonical(body) == canonical(
        {"accountId": 704, "startTimestamp": "2025-07-18T21:00:00Z"}
    )


def test_search_timestamps_are_converted_to_utc_with_microseconds() -> None:
    plus2 = timezone(timedelta(hours=2))
    start = datetime(2025, 7, 18, 23, 0, 1, 268009, tzinfo=plus2)
    body = decoded_body(rest.search_orders(704, start))
    assert body["startTimestamp"] == "2025-07-18T21:00:01.268009Z"


@pytest.mark.parametrize(
    "build",
    [
        lambda: rest.search_orders(704, datetime(2025, 7, 18, 21)),
        lambda: rest.search_orders(704, T0, datetime(2025, 7, 18, 22)),
        lambda: rest.search_trades(704, datetime(2025, 7, 18, 21)),
        lambda: rest.search_trades(704, T0, datetime(2025, 7, 18, 22)),
        lambda: rest.query_orders(OrderQuery(account_id=1, created_after=datetime(2025, 1, 1))),
        lambda: rest.query_orders(OrderQuery(account_id=1, created_before=datetime(2025, 1, 1))),
    ],
    ids=["orders-start", "orders-end", "trades-start", "trades-end", "query-after", "query-before"],
)
def test_naive_datetimes_are_refused(build: Callable[[], Operation[Any]]) -> None:
    with pytest.raises(LocalProtocolError):
        build()


def test_search_accounts_all() -> None:
    assert decoded_body(rest.search_accounts(only_active=False)) == {"onlyActiveAccounts": False}


def test_contract_search_live() -> None:
    body = decoded_body(rest.search_contracts("ES", live=True))
    assert canonical(body) == canonical({"live": True, "searchText": "ES"})


def test_order_query_full_body() -> None:
    query = OrderQuery(
        account_id=704,
        statuses=(OrderStatus.OPEN, OrderStatus.SUSPENDED),
        contract_id="CON.F.US.MNQ.U25",
        created_after=datetime(2025, 7, 21, tzinfo=UTC),
        created_before=datetime(2025, 7, 22, 0, 0, 0, 123456, tzinfo=UTC),
        page_size=100,
        page_offset=200,
        sort_by=OrderSortField.CREATED_AT,
        sort_direction=SortDirection.DESCENDING,
        include_total_count=True,
    )
    assert_post(
        rest.query_orders(query),
        "/api/Order/v2/query",
        {
            "filter": {
                "accountId": 704,
                "statuses": [1, 8],
                "contractId": "CON.F.US.MNQ.U25",
                "createdAfter": "2025-07-21T00:00:00Z",
                "createdBefore": "2025-07-22T00:00:00.123456Z",
            },
            "pageSize": 100,
            "pageOffset": 200,
            "sortBy": 0,
            "sortDirection": 1,
            "includeTotalCount": True,
        },
    )


def test_order_query_zero_offset_and_ascending_sort_are_sent() -> None:
    query = OrderQuery(
        account_id=704,
        page_offset=0,
        sort_by=OrderSortField.ID,
        sort_direction=SortDirection.ASCENDING,
    )
    body = decoded_body(rest.query_orders(query))
    assert canonical(body) == canonical(
        {"filter": {"accountId": 704}, "pageOffset": 0, "sortBy": 1, "sortDirection": 0}
    )


def test_modify_variants() -> None:
    body = decoded_body(rest.modify_order(ACCOUNT, 26974, size=2))
    assert canonical(body) == canonical({"accountId": ACCOUNT, "orderId": 26974, "size": 2})
    body = decoded_body(rest.modify_order(ACCOUNT, 26974, limit_price="6340.5"))
    assert canonical(body) == canonical(
        {"accountId": ACCOUNT, "orderId": 26974, "limitPrice": 6340.5}
    )
    change = OrderModification(account_id=ACCOUNT, order_id=26974, trail_price=Decimal("6300"))
    body = decoded_body(rest.modify_order(change, allow_trailing_stop=True))
    assert canonical(body) == canonical(
        {"accountId": ACCOUNT, "orderId": 26974, "trailPrice": 6300}
    )


def test_modify_needs_an_order_id_and_a_change() -> None:
    with pytest.raises(TypeError):
        rest.modify_order(ACCOUNT, size=1)
    with pytest.raises(LocalProtocolError):
        rest.modify_order(ACCOUNT, 26974)


@pytest.mark.parametrize("size", [0, -1, True, 1.5])
def test_modify_refuses_bad_sizes(size: Any) -> None:
    with pytest.raises(LocalProtocolError):
        rest.modify_order(ACCOUNT, 26974, size=size)


@pytest.mark.parametrize("size", [0, -2, True, 2.0, "1"])
def test_partial_close_refuses_bad_sizes(size: Any) -> None:
    with pytest.raises(LocalProtocolError):
        rest.partial_close_position(536, "C", size)


# --- order safety switches --------------------------------------------------------------------


@pytest.mark.parametrize(
    "legs",
    [
        {"stop_loss": Bracket(-10, OrderType.STOP)},
        {"take_profit": Bracket(20, OrderType.LIMIT)},
        {"stop_loss": Bracket(-10, OrderType.STOP), "take_profit": Bracket(20, OrderType.LIMIT)},
    ],
    ids=["stop-loss", "take-profit", "both"],
)
def test_brackets_are_disabled_by_default(legs: dict[str, Bracket]) -> None:
    with pytest.raises(FeatureDisabled, match="allow_brackets"):
        rest.place_order(ACCOUNT, CONTRACT, OrderSide.BUY, OrderType.MARKET, 1, **legs)
    order = OrderRequest(ACCOUNT, CONTRACT, OrderSide.BUY, OrderType.MARKET, 1, **legs)
    with pytest.raises(FeatureDisabled):
        rest.place_order(order)
    assert rest.place_order(order, allow_brackets=True).request.path == "/api/Order/place"


def test_trailing_stop_is_disabled_by_default() -> None:
    with pytest.raises(FeatureDisabled, match="allow_trailing_stop"):
        rest.place_order(
            ACCOUNT, CONTRACT, OrderSide.SELL, OrderType.TRAILING_STOP, 1, trail_price="6300"
        )


def test_brackets_allowed_do_not_unlock_trailing_stops() -> None:
    with pytest.raises(FeatureDisabled):
        rest.place_order(
            ACCOUNT,
            CONTRACT,
            OrderSide.SELL,
            OrderType.TRAILING_STOP,
            1,
            trail_price="6300",
            allow_brackets=True,
        )


def test_modify_trail_price_is_disabled_by_default() -> None:
    with pytest.raises(FeatureDisabled, match="allow_trailing_stop"):
        rest.modify_order(ACCOUNT, 26974, trail_price="6300.25")
    change = OrderModification(ACCOUNT, 26974, size=1, trail_price=Decimal("6300.25"))
    with pytest.raises(FeatureDisabled):
        rest.modify_order(change)


# --- order validation -------------------------------------------------------------------------


def place(**overrides: Any) -> Operation[int]:
    args: dict[str, Any] = {
        "account_id": ACCOUNT,
        "contract_id": CONTRACT,
        "side": OrderSide.BUY,
        "type": OrderType.MARKET,
        "size": 1,
    }
    args.update(overrides)
    return rest.place_order(**args)


@pytest.mark.parametrize(
    "overrides",
    [
        {"size": 0},
        {"size": -3},
        {"size": True},
        {"size": 1.0},
        {"type": OrderType.LIMIT},
        {"type": OrderType.STOP},
        {"type": OrderType.STOP_LIMIT, "limit_price": "6300"},
        {"limit_price": "6300"},
        {"stop_price": "6300"},
        {"type": OrderType.LIMIT, "limit_price": "6300", "stop_price": "6290"},
        {"type": OrderType.LIMIT, "limit_price": 0},
        {"type": OrderType.LIMIT, "limit_price": "-1.25"},
        {"type": OrderType.LIMIT, "limit_price": "NaN"},
        {"type": OrderType.LIMIT, "limit_price": float("inf")},
        {"type": OrderType.LIMIT, "limit_price": "abc"},
        {"type": OrderType.LIMIT, "limit_price": True},
        {"type": OrderType.LIMIT, "limit_price": [6300]},
        {"type": OrderType.UNKNOWN},
        {"type": 42},
        {"side": OrderSide(7)},
        {"custom_tag": ""},
        {"custom_tag": "   "},
    ],
    ids=[
        "size-0",
        "size-negative",
        "size-bool",
        "size-float",
        "limit-without-price",
        "stop-without-price",
        "stop-limit-without-stop",
        "market-with-limit",
        "market-with-stop",
        "limit-with-stop",
        "price-zero",
        "price-negative",
        "price-nan",
        "price-inf",
        "price-text",
        "price-bool",
        "price-list",
        "type-unknown",
        "type-undocumented",
        "side-undocumented",
        "tag-empty",
        "tag-blank",
    ],
)
def test_invalid_orders_are_refused(overrides: dict[str, Any]) -> None:
    with pytest.raises(LocalProtocolError):
        place(**overrides)


@pytest.mark.parametrize(
    ("side", "stop_loss", "take_profit"),
    [
        (OrderSide.BUY, 10, None),
        (OrderSide.BUY, None, -20),
        (OrderSide.BUY, 0, None),
        (OrderSide.BUY, None, 0),
        (OrderSide.SELL, -10, None),
        (OrderSide.SELL, None, 20),
        (OrderSide.SELL, 10, 20),
    ],
)
def test_bracket_tick_signs_are_checked(
    side: OrderSide, stop_loss: int | None, take_profit: int | None
) -> None:
    legs: dict[str, Bracket] = {}
    if stop_loss is not None:
        legs["stop_loss"] = Bracket(stop_loss, OrderType.STOP)
    if take_profit is not None:
        legs["take_profit"] = Bracket(take_profit, OrderType.LIMIT)
    with pytest.raises(LocalProtocolError, match="ticks"):
        place(side=side, allow_brackets=True, **legs)


def test_bracket_tick_signs_that_are_right() -> None:
    buy = place(
        side=OrderSide.BUY,
        stop_loss=Bracket(-4, OrderType.STOP),
        take_profit=Bracket(8, OrderType.LIMIT),
        allow_brackets=True,
    )
    sell = place(
        side=OrderSide.SELL,
        stop_loss=Bracket(4, OrderType.STOP),
        take_profit=Bracket(-8, OrderType.LIMIT),
        allow_brackets=True,
    )
    assert decoded_body(buy)["stopLossBracket"] == {"ticks": -4, "type": 4}
    assert decoded_body(sell)["takeProfitBracket"] == {"ticks": -8, "type": 1}


@pytest.mark.parametrize(
    "price",
    [
        Decimal("6335.2500000000000001"),
        "0.12345678901234567890",
        Decimal("1.1E-400"),
        Decimal("123456789.0123456789"),
    ],
)
def test_prices_a_json_double_cannot_carry_are_refused(price: Any) -> None:
    with pytest.raises(LocalProtocolError, match=r"digits|decimal places"):
        place(type=OrderType.LIMIT, limit_price=price)
    with pytest.raises(LocalProtocolError, match=r"digits|decimal places"):
        rest.modify_order(ACCOUNT, 26974, stop_price=price)


def test_whole_prices_beyond_64_bits_are_refused() -> None:
    with pytest.raises(LocalProtocolError):
        place(type=OrderType.LIMIT, limit_price=Decimal("1E+30"))


@pytest.mark.parametrize(
    "build",
    [
        lambda: place(side="sideways"),
        lambda: place(side=True),
        lambda: place(type="iceberg"),
        lambda: rest.retrieve_bars("C", "fortnight", 1, start=T0, end=T1),
    ],
    ids=["side-name", "side-bool", "type-name", "bar-unit-name"],
)
def test_unparseable_enum_arguments_are_local_protocol_errors(
    build: Callable[[], Operation[Any]],
) -> None:
    # Every other misuse of OrderRequest/BarRequest is a LocalProtocolError (a TradeForgeError);
    # a side, type or unit that cannot be parsed should be one too, so misuse is caught uniformly.
    with pytest.raises(LocalProtocolError):
        build()
