"""Every REST endpoint of the gateway as an operation builder.

Each function builds the exact request (path, headers, JSON body) and pairs it with the parser of
the endpoint's answer. Bearer tokens are not part of the request: the session adds them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Final, TypeVar

from ...core import bounds
from ...core.enums import (
    BarUnit,
    OpenIntEnum,
    OrderSide,
    OrderSortField,
    OrderStatus,
    OrderType,
    SortDirection,
)
from ...core.errors import (
    AuthenticationError,
    FeatureDisabled,
    OrderRejected,
    RemoteProtocolError,
)
from ...core.jsoncodec import dumps, loads
from ...core.models import (
    Account,
    AccountId,
    Bar,
    BarRequest,
    Bracket,
    Contract,
    ContractId,
    Fill,
    Order,
    OrderId,
    OrderModification,
    OrderPage,
    OrderQuery,
    OrderRequest,
    Position,
)
from ...core.operations import Change, HttpRequest, HttpResponse, Operation, RateBucket, Safety
from ...core.secret import Secret
from .codes import (
    AccountSearchErrorCode,
    CancelOrderErrorCode,
    ClosePositionErrorCode,
    LoginErrorCode,
    LogoutErrorCode,
    ModifyOrderErrorCode,
    PartialClosePositionErrorCode,
    PlaceOrderErrorCode,
    RetrieveBarErrorCode,
    SearchContractByIdErrorCode,
    SearchErrorCode,
    SearchOrderByIdErrorCode,
    ValidateErrorCode,
)
from .responses import ErrorFactory, check_status, read_envelope
from .wire import format_timestamp, from_wire, many_from_wire

T = TypeVar("T")

PREFIX: Final = "/api"
JSON_HEADERS: Final = (("Content-Type", "application/json"), ("Accept", "application/json"))

BRACKETS_DISABLED: Final = (
    "bracket (OCO) orders are disabled: the gateway cannot cancel a bracket group atomically, so "
    "a filled or cancelled leg can leave an orphaned child order working on the market. "
    "Opt in with allow_brackets=True (TS_ENABLE_BRACKETS=true) only if you monitor the legs."
)
TRAILING_DISABLED: Final = (
    "trailing stop orders are disabled: the gateway has misprocessed the trail value (a price "
    "level read as a distance, oversized trails on modify). Opt in with "
    "allow_trailing_stop=True (TS_ENABLE_TRAILING_STOP=true) only after testing on practice."
)


def _request(path: str, body: Mapping[str, Any] | None) -> HttpRequest:
    return HttpRequest(
        method="POST",
        path=f"{PREFIX}/{path}",
        headers=JSON_HEADERS,
        body=dumps(body) if body is not None else b"",
    )


def _operation(
    path: str,
    body: Mapping[str, Any] | None,
    codes: type[OpenIntEnum],
    payload: Callable[[dict[str, Any]], T],
    *,
    safety: Safety = Safety.READ,
    bucket: RateBucket = RateBucket.GENERAL,
    authenticated: bool = True,
    error: ErrorFactory | None = None,
    context: Mapping[str, object] | None = None,
    empty_is_success: bool = False,
) -> Operation[T]:
    def parse(response: HttpResponse) -> T:
        if empty_is_success and 200 <= response.status < 300 and not response.body.strip():
            # Some close answers have been seen with an empty 200 body; the order went through.
            return payload({})
        if error is None:
            data = read_envelope(path, codes, response)
        else:
            data = read_envelope(path, codes, response, error=error)
        return payload(data)

    return Operation(
        name=path,
        request=_request(path, body),
        parser=parse,
        safety=safety,
        bucket=bucket,
        authenticated=authenticated,
        context=dict(context or {}),
    )


def _no_payload(_: dict[str, Any]) -> None:
    return None


def _field(data: Mapping[str, Any], name: str, endpoint: str) -> Any:
    if name not in data or data[name] is None:
        raise RemoteProtocolError(f"{endpoint}: success answer without '{name}'")
    return data[name]


def _items(data: Mapping[str, Any], name: str, endpoint: str) -> Any:
    """A list payload field: required to be present, but null reads as an empty list."""
    if name not in data:
        raise RemoteProtocolError(f"{endpoint}: success answer without '{name}'")
    return data[name]


def _token(name: str, endpoint: str) -> Callable[[dict[str, Any]], Secret]:
    def payload(data: dict[str, Any]) -> Secret:
        value = _field(data, name, endpoint)
        if not isinstance(value, str) or not value:
            raise RemoteProtocolError(f"{endpoint}: '{name}' is not a token")
        return Secret(value)

    return payload


def _time(value: datetime | None) -> str | None:
    return None if value is None else format_timestamp(value)


def _compact(body: Mapping[str, Any]) -> dict[str, Any]:
    """Leave out optional fields that are not set (the gateway treats absent as null)."""
    return {k: v for k, v in body.items() if v is not None}


# --- Auth -----------------------------------------------------------------------------------


def login_key(username: str, api_key: Secret | str) -> Operation[Secret]:
    """Auth/loginKey: log in with the platform username and an API key; gives a 24 h token."""
    key = api_key.reveal() if isinstance(api_key, Secret) else api_key
    path = "Auth/loginKey"
    return _operation(
        path,
        {"userName": username, "apiKey": key},
        LoginErrorCode,
        _token("token", path),
        safety=Safety.AUTH,
        authenticated=False,
        error=AuthenticationError,
    )


def login_app(
    username: str, password: Secret | str, device_id: str, app_id: str, verify_key: Secret | str
) -> Operation[Secret]:
    """Auth/loginApp: application login used by firms' authorized applications."""

    def reveal(value: Secret | str) -> str:
        return value.reveal() if isinstance(value, Secret) else value

    path = "Auth/loginApp"
    body = {
        "userName": username,
        "password": reveal(password),
        "deviceId": device_id,
        "appId": app_id,
        "verifyKey": reveal(verify_key),
    }
    return _operation(
        path,
        body,
        LoginErrorCode,
        _token("token", path),
        safety=Safety.AUTH,
        authenticated=False,
        error=AuthenticationError,
    )


def validate() -> Operation[Secret]:
    """Auth/validate: exchange the current (bearer) token for a fresh one."""
    path = "Auth/validate"
    return _operation(
        path,
        None,
        ValidateErrorCode,
        _token("newToken", path),
        safety=Safety.AUTH,
        error=AuthenticationError,
    )


def logout() -> Operation[None]:
    """Auth/logout: end the session of the bearer token."""
    return _operation("Auth/logout", None, LogoutErrorCode, _no_payload, safety=Safety.AUTH)


# --- Accounts and contracts -----------------------------------------------------------------


def search_accounts(only_active: bool = True) -> Operation[list[Account]]:
    """Account/search: the user's trading accounts."""
    return _operation(
        "Account/search",
        {"onlyActiveAccounts": only_active},
        SearchErrorCode,
        lambda data: many_from_wire(Account, _items(data, "accounts", "Account/search")),
    )


def search_contracts(search_text: str, *, live: bool = False) -> Operation[list[Contract]]:
    """Contract/search: contracts matching a text (loose match, at most about 20 results).

    ``live`` selects the live or simulated data subscription, not an environment.
    """
    return _operation(
        "Contract/search",
        {"live": live, "searchText": search_text},
        SearchErrorCode,
        lambda data: many_from_wire(Contract, _items(data, "contracts", "Contract/search")),
    )


def get_contract(contract_id: ContractId) -> Operation[Contract]:
    """Contract/searchById: one contract, expired ones included."""
    path = "Contract/searchById"

    def payload(data: dict[str, Any]) -> Contract:
        single = data.get("contract")
        if single is not None:
            contract = from_wire(Contract, single)
            if contract.id != contract_id:
                raise RemoteProtocolError(
                    f"{path}: asked for {contract_id!r}, the answer is about {contract.id!r}"
                )
            return contract
        # Older gateway versions answered with a one-element 'contracts' array.
        for contract in many_from_wire(Contract, data.get("contracts")):
            if contract.id == contract_id:
                return contract
        raise RemoteProtocolError(f"{path}: success answer without the contract {contract_id!r}")

    return _operation(path, {"contractId": contract_id}, SearchContractByIdErrorCode, payload)


def available_contracts(*, live: bool = False) -> Operation[list[Contract]]:
    """Contract/available: the tradeable catalogue, one active month per product."""
    return _operation(
        "Contract/available",
        {"live": live},
        SearchErrorCode,
        lambda data: many_from_wire(Contract, _items(data, "contracts", "Contract/available")),
    )


# --- History --------------------------------------------------------------------------------


def retrieve_bars(
    contract_id: ContractId | BarRequest,
    unit: BarUnit | None = None,
    unit_number: int = 1,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 20_000,
    live: bool = False,
    include_partial_bar: bool = False,
) -> Operation[list[Bar]]:
    """History/retrieveBars: the ``limit`` most recent bars in [start, end], oldest first.

    The gateway answers newest first and caps one answer at 20,000 bars; the result here is in
    chronological order. Uses the history rate budget.
    """
    if isinstance(contract_id, BarRequest):
        request = contract_id
    else:
        if unit is None or start is None or end is None:
            raise TypeError("retrieve_bars needs unit, start and end")
        request = BarRequest(
            contract_id=contract_id,
            unit=unit,
            unit_number=unit_number,
            start=start,
            end=end,
            limit=limit,
            live=live,
            include_partial_bar=include_partial_bar,
        )
    body = {
        "contractId": request.contract_id,
        "live": request.live,
        "startTime": format_timestamp(request.start),
        "endTime": format_timestamp(request.end),
        "unit": int(request.unit),
        "unitNumber": request.unit_number,
        "limit": request.limit,
        "includePartialBar": request.include_partial_bar,
    }

    def payload(data: dict[str, Any]) -> list[Bar]:
        bars = many_from_wire(Bar, _items(data, "bars", "History/retrieveBars"))
        return sorted(bars, key=lambda bar: bar.time)

    return _operation(
        "History/retrieveBars", body, RetrieveBarErrorCode, payload, bucket=RateBucket.HISTORY
    )


# --- Orders ---------------------------------------------------------------------------------


def _orders(endpoint: str) -> Callable[[dict[str, Any]], list[Order]]:
    return lambda data: many_from_wire(Order, _items(data, "orders", endpoint))


def search_orders(
    account_id: AccountId, start: datetime, end: datetime | None = None
) -> Operation[list[Order]]:
    """Order/search: orders of an account created in [start, end]."""
    body = _compact(
        {"accountId": account_id, "startTimestamp": _time(start), "endTimestamp": _time(end)}
    )
    return _operation("Order/search", body, AccountSearchErrorCode, _orders("Order/search"))


def search_open_orders(account_id: AccountId) -> Operation[list[Order]]:
    """Order/searchOpen: working orders of an account (suspended bracket legs are not listed)."""
    return _operation(
        "Order/searchOpen",
        {"accountId": account_id},
        AccountSearchErrorCode,
        _orders("Order/searchOpen"),
    )


def get_order(account_id: AccountId, order_id: OrderId) -> Operation[Order]:
    """Order/searchById: one order of an account."""
    path = "Order/searchById"
    return _operation(
        path,
        {"accountId": account_id, "orderId": order_id},
        SearchOrderByIdErrorCode,
        lambda data: from_wire(Order, _field(data, "order", path)),
    )


def query_orders(query: OrderQuery) -> Operation[OrderPage]:
    """Order/v2/query: filtered, sorted, paged order search (``page_offset`` counts rows)."""
    path = "Order/v2/query"
    statuses = [int(OrderStatus(s)) for s in query.statuses] or None
    body = _compact(
        {
            "filter": _compact(
                {
                    "accountId": query.account_id,
                    "statuses": statuses,
                    "contractId": query.contract_id,
                    "createdAfter": _time(query.created_after),
                    "createdBefore": _time(query.created_before),
                }
            ),
            "pageSize": query.page_size,
            "pageOffset": query.page_offset,
            "sortBy": None if query.sort_by is None else int(OrderSortField(query.sort_by)),
            "sortDirection": (
                None if query.sort_direction is None else int(SortDirection(query.sort_direction))
            ),
            "includeTotalCount": query.include_total_count or None,
        }
    )

    def payload(data: dict[str, Any]) -> OrderPage:
        orders = many_from_wire(Order, _items(data, "orders", path))
        total = data.get("totalCount")
        if total is not None and (isinstance(total, bool) or not isinstance(total, int)):
            raise RemoteProtocolError(f"{path}: totalCount is not an integer: {total!r}")
        return OrderPage(orders=tuple(orders), total_count=total)

    return _operation(path, body, AccountSearchErrorCode, payload)


def _bracket(bracket: Bracket | None) -> dict[str, int] | None:
    return None if bracket is None else {"ticks": bracket.ticks, "type": int(bracket.type)}


def place_order(
    account_id: AccountId | OrderRequest,
    contract_id: ContractId | None = None,
    side: OrderSide | None = None,
    type: OrderType | None = None,
    size: int = 1,
    *,
    limit_price: Any = None,
    stop_price: Any = None,
    trail_price: Any = None,
    custom_tag: str | None = None,
    stop_loss: Bracket | None = None,
    take_profit: Bracket | None = None,
    allow_brackets: bool = False,
    allow_trailing_stop: bool = False,
) -> Operation[OrderId]:
    """Order/place: place an order; gives the new order id. Never retried.

    Accepts an ``OrderRequest`` or its fields. Brackets and trailing stops raise
    ``FeatureDisabled`` unless explicitly allowed. A refusal raises ``OrderRejected``, whose
    ``order_id`` is set when the gateway created the (rejected) order anyway.
    """
    if isinstance(account_id, OrderRequest):
        order = account_id
    else:
        if contract_id is None or side is None or type is None:
            raise TypeError("place_order needs account_id, contract_id, side and type")
        order = OrderRequest(
            account_id=account_id,
            contract_id=contract_id,
            side=side,
            type=type,
            size=size,
            limit_price=limit_price,
            stop_price=stop_price,
            trail_price=trail_price,
            custom_tag=custom_tag,
            stop_loss=stop_loss,
            take_profit=take_profit,
        )
    if order.has_brackets and not allow_brackets:
        raise FeatureDisabled(BRACKETS_DISABLED)
    if order.type is OrderType.TRAILING_STOP and not allow_trailing_stop:
        raise FeatureDisabled(TRAILING_DISABLED)
    path = "Order/place"
    body = _compact(
        {
            "accountId": order.account_id,
            "contractId": order.contract_id,
            "type": int(order.type),
            "side": int(order.side),
            "size": order.size,
            "limitPrice": order.limit_price,
            "stopPrice": order.stop_price,
            "trailPrice": order.trail_price,
            "customTag": order.custom_tag,
            "stopLossBracket": _bracket(order.stop_loss),
            "takeProfitBracket": _bracket(order.take_profit),
        }
    )

    def parse(response: HttpResponse) -> OrderId:
        try:
            data = read_envelope(path, PlaceOrderErrorCode, response, error=OrderRejected)
        except OrderRejected as exc:
            exc.order_id = _rejected_order_id(response)
            raise
        order_id = _field(data, "orderId", path)
        if isinstance(order_id, bool) or not isinstance(order_id, int):
            raise RemoteProtocolError(f"{path}: orderId is not an integer: {order_id!r}")
        return order_id

    return Operation(
        name=path,
        request=_request(path, body),
        parser=parse,
        safety=Safety.WRITE,
        context={
            "change": Change.PLACE,
            "account_id": order.account_id,
            "contract_id": order.contract_id,
            "custom_tag": order.custom_tag,
            "request": order,
        },
    )


def _rejected_order_id(response: HttpResponse) -> int | None:
    # Only called once the body has been read as a JSON object envelope.
    data = loads(response.body)
    value = data.get("orderId") if isinstance(data, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def cancel_order(account_id: AccountId, order_id: OrderId) -> Operation[None]:
    """Order/cancel: cancel a working order. Never retried."""
    bounds.identifier(account_id, "account_id")
    bounds.identifier(order_id, "order_id")
    return _operation(
        "Order/cancel",
        {"accountId": account_id, "orderId": order_id},
        CancelOrderErrorCode,
        _no_payload,
        safety=Safety.WRITE,
        context={"change": Change.CANCEL, "account_id": account_id, "order_id": order_id},
    )


def modify_order(
    account_id: AccountId | OrderModification,
    order_id: OrderId | None = None,
    *,
    size: int | None = None,
    limit_price: Any = None,
    stop_price: Any = None,
    trail_price: Any = None,
    allow_trailing_stop: bool = False,
) -> Operation[None]:
    """Order/modify: change size or prices of a working order. Never retried."""
    if isinstance(account_id, OrderModification):
        change = account_id
    else:
        if order_id is None:
            raise TypeError("modify_order needs account_id and order_id")
        change = OrderModification(
            account_id=account_id,
            order_id=order_id,
            size=size,
            limit_price=limit_price,
            stop_price=stop_price,
            trail_price=trail_price,
        )
    if change.trail_price is not None and not allow_trailing_stop:
        raise FeatureDisabled(TRAILING_DISABLED)
    body = _compact(
        {
            "accountId": change.account_id,
            "orderId": change.order_id,
            "size": change.size,
            "limitPrice": change.limit_price,
            "stopPrice": change.stop_price,
            "trailPrice": change.trail_price,
        }
    )
    return _operation(
        "Order/modify",
        body,
        ModifyOrderErrorCode,
        _no_payload,
        safety=Safety.WRITE,
        context={
            "change": Change.MODIFY,
            "account_id": change.account_id,
            "order_id": change.order_id,
            "request": change,
        },
    )


# --- Positions and trades -------------------------------------------------------------------


def search_open_positions(account_id: AccountId) -> Operation[list[Position]]:
    """Position/searchOpen: the account's open positions."""
    return _operation(
        "Position/searchOpen",
        {"accountId": account_id},
        AccountSearchErrorCode,
        lambda data: many_from_wire(Position, _items(data, "positions", "Position/searchOpen")),
    )


def close_position(account_id: AccountId, contract_id: ContractId) -> Operation[None]:
    """Position/closeContract: flatten a position at market. Working SL/TP orders stay working."""
    bounds.identifier(account_id, "account_id")
    bounds.contract_id(contract_id)
    return _operation(
        "Position/closeContract",
        {"accountId": account_id, "contractId": contract_id},
        ClosePositionErrorCode,
        _no_payload,
        safety=Safety.WRITE,
        context={"change": Change.CLOSE, "account_id": account_id, "contract_id": contract_id},
        empty_is_success=True,
    )


def partial_close_position(
    account_id: AccountId, contract_id: ContractId, size: int
) -> Operation[None]:
    """Position/partialCloseContract: reduce a position by ``size`` at market."""
    bounds.identifier(account_id, "account_id")
    bounds.contract_id(contract_id)
    bounds.size(size)
    return _operation(
        "Position/partialCloseContract",
        {"accountId": account_id, "contractId": contract_id, "size": size},
        PartialClosePositionErrorCode,
        _no_payload,
        safety=Safety.WRITE,
        context={
            "change": Change.PARTIAL_CLOSE,
            "account_id": account_id,
            "contract_id": contract_id,
            "size": size,
        },
        empty_is_success=True,
    )


def search_trades(
    account_id: AccountId, start: datetime, end: datetime | None = None
) -> Operation[list[Fill]]:
    """Trade/search: the account's fills (half-turn trades) in [start, end]."""
    body = _compact(
        {"accountId": account_id, "startTimestamp": _time(start), "endTimestamp": _time(end)}
    )
    return _operation(
        "Trade/search",
        body,
        AccountSearchErrorCode,
        lambda data: many_from_wire(Fill, _items(data, "trades", "Trade/search")),
    )


# --- Status ---------------------------------------------------------------------------------


def ping() -> Operation[str]:
    """Status/ping: a liveness probe; answers "pong"."""
    path = "Status/ping"

    def parse(response: HttpResponse) -> str:
        check_status(path, response)
        text = response.body.decode("utf-8", "replace").strip()
        if text.startswith('"'):
            value = loads(response.body)
            text = value if isinstance(value, str) else text
        if text.lower() != "pong":
            raise RemoteProtocolError(f"{path}: expected 'pong', got {text[:80]!r}")
        return text

    return Operation(
        name=path,
        request=HttpRequest("GET", f"{PREFIX}/{path}", (("Accept", "text/plain"),)),
        parser=parse,
        authenticated=False,
    )


ENDPOINTS: Final = (
    "Auth/loginKey",
    "Auth/loginApp",
    "Auth/validate",
    "Auth/logout",
    "Account/search",
    "Contract/search",
    "Contract/searchById",
    "Contract/available",
    "History/retrieveBars",
    "Order/search",
    "Order/searchOpen",
    "Order/searchById",
    "Order/v2/query",
    "Order/place",
    "Order/cancel",
    "Order/modify",
    "Position/searchOpen",
    "Position/closeContract",
    "Position/partialCloseContract",
    "Trade/search",
    "Status/ping",
)
