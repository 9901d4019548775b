"""The simulator's REST side: every gateway endpoint, as pure request -> response functions.

Requests are validated the way ASP.NET model binding does (HTTP 400 with an ``errors``
dictionary; numbers must fit their .NET type), business failures answer HTTP 200 with the
endpoint's own ``errorCode``, missing or expired tokens answer 401, a client over its budget 429,
and a failure of the simulator itself 500 (``internal_error``). Paths match case-insensitively.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Final

from tradeforge_proto.core.bars import SHORTEST_SECONDS
from tradeforge_proto.core.enums import BarUnit, OrderSide, OrderStatus, OrderType
from tradeforge_proto.core.errors import RemoteProtocolError
from tradeforge_proto.core.jsoncodec import dumps, loads
from tradeforge_proto.core.models import Bar, Bracket, Order
from tradeforge_proto.core.operations import HttpRequest, HttpResponse, RateBucket
from tradeforge_proto.providers.topstepx.wire import parse_timestamp, to_wire
from tradeforge_proto.rules import Hours, TradingCalendar, trading_day

from .engine import Rejection
from .market import UnitUnavailable

_INTRADAY: Final = frozenset({BarUnit.SECOND, BarUnit.MINUTE, BarUnit.HOUR, BarUnit.TICK})
_GAP_SEARCHES: Final = 32  # requests one answer may take to skip closed stretches
_GAP_SEARCH_DAYS: Final = 370
_MICROSECOND: Final = timedelta(microseconds=1)

if TYPE_CHECKING:
    from .simulation import Simulation

JSON: Final = (("content-type", "application/json; charset=utf-8"),)
MAX_BARS: Final = 20_000
MAX_PAGE: Final = 100
INTERNAL_ERROR_CODE: Final = 500
INT32: Final = range(-(2**31), 2**31)
INT64: Final = range(-(2**63), 2**63)
DECIMAL_MAX: Final = Decimal(2**96 - 1)  # the largest System.Decimal
Body = dict[str, Any]


class BadRequest(Exception):
    """Model binding failed: answered 400 with per-field messages."""

    def __init__(self, errors: Mapping[str, list[str]]) -> None:
        self.errors = dict(errors)
        super().__init__(errors)


def envelope(
    payload: Mapping[str, Any] | None = None, *, code: int = 0, message: str | None = None
) -> HttpResponse:
    """HTTP 200 with the gateway's envelope."""
    body = {**(payload or {}), "success": code == 0, "errorCode": code, "errorMessage": message}
    return HttpResponse(200, JSON, dumps(body))


def internal_error() -> HttpResponse:
    """HTTP 500 with the envelope, for a request the simulator failed to handle.

    Its ``errorCode`` is ``INTERNAL_ERROR_CODE`` (500, like the status): no endpoint's own enum
    goes past 10, so a client never reads it as one of the endpoint's business failures.
    """
    body = {
        "success": False,
        "errorCode": INTERNAL_ERROR_CODE,
        "errorMessage": "An unexpected error occurred.",
    }
    return HttpResponse(500, JSON, dumps(body))


def problem(status: int, errors: Mapping[str, list[str]], title: str) -> HttpResponse:
    """An ASP.NET ProblemDetails answer."""
    body = {
        "type": "https://tools.ietf.org/html/rfc9110#section-15.5.1",
        "title": title,
        "status": status,
        "errors": dict(errors),
    }
    return HttpResponse(
        status, (("content-type", "application/problem+json; charset=utf-8"),), dumps(body)
    )


def plain(status: int, text: str = "") -> HttpResponse:
    """A short text answer (401, 404, 429, 5xx)."""
    return HttpResponse(status, (("content-type", "text/plain; charset=utf-8"),), text.encode())


# --- field readers (what model binding accepts) ---------------------------------------------

_MISSING: Final = object()


def _field(body: Body, name: str, kind: str, *, required: bool) -> Any:
    value = body.get(name, _MISSING)
    if value is _MISSING or value is None:
        if required:
            raise BadRequest({name: [f"The {name} field is required."]})
        return None
    try:
        return _READERS[kind](value)
    except (ValueError, TypeError, InvalidOperation, ArithmeticError):
        raise BadRequest(
            {f"$.{name}": [f"The JSON value could not be converted to {_NET_TYPES[kind]}."]}
        ) from None


def _int(value: Any) -> int:
    """A System.Int32."""
    if type(value) is not int or value not in INT32:
        raise ValueError(value)
    return value


def _long(value: Any) -> int:
    """A System.Int64."""
    if type(value) is not int or value not in INT64:
        raise ValueError(value)
    return value


def _bool(value: Any) -> bool:
    if type(value) is not bool:
        raise ValueError(value)
    return value


def _str(value: Any) -> str:
    if type(value) is not str:
        raise ValueError(value)
    return value


def _decimal(value: Any) -> Decimal:
    """A System.Decimal: a JSON number within its range (a float through its shortest repr)."""
    if type(value) not in (int, float):
        raise ValueError(value)
    number = Decimal(repr(value)) if type(value) is float else Decimal(value)
    if not number.is_finite() or abs(number) > DECIMAL_MAX:
        raise ValueError(value)
    return number


def _time(value: Any) -> datetime:
    return parse_timestamp(_str(value))


def _object(value: Any) -> dict[str, Any]:
    if type(value) is not dict:
        raise ValueError(value)
    return value


def _int_list(value: Any) -> list[int]:
    if type(value) is not list:
        raise ValueError(value)
    return [_int(v) for v in value]


_READERS: Final[dict[str, Callable[[Any], Any]]] = {
    "int": _int,
    "long": _long,
    "bool": _bool,
    "str": _str,
    "decimal": _decimal,
    "time": _time,
    "object": _object,
    "ints": _int_list,
}
_NET_TYPES: Final = {
    "int": "System.Int32",
    "long": "System.Int64",
    "bool": "System.Boolean",
    "str": "System.String",
    "decimal": "System.Decimal",
    "time": "System.DateTime",
    "object": "an object",
    "ints": "System.Int32[]",
}


def _epoch(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def _wire(items: list[Any]) -> list[dict[str, Any]]:
    return [to_wire(item) for item in items]


# --- endpoints ------------------------------------------------------------------------------

Handler = Callable[["Simulation", Body, str, float], HttpResponse]


def login_key(sim: Simulation, body: Body, _: str, now: float) -> HttpResponse:
    username = _field(body, "userName", "str", required=True)
    api_key = _field(body, "apiKey", "str", required=True)
    if not sim.credentials_match(username, api_key):
        return envelope({"token": None}, code=3)
    return envelope({"token": sim.tokens.issue(username, now)})


def login_app(sim: Simulation, body: Body, _: str, now: float) -> HttpResponse:
    for name in ("userName", "password", "deviceId", "appId", "verifyKey"):
        _field(body, name, "str", required=True)
    return envelope({"token": None}, code=4)  # no authorized application is registered


def validate(sim: Simulation, _: Body, user: str, now: float) -> HttpResponse:
    return envelope({"newToken": sim.tokens.issue(user, now)})


def logout(sim: Simulation, _: Body, __: str, now: float) -> HttpResponse:
    return envelope()


def search_accounts(sim: Simulation, body: Body, _: str, now: float) -> HttpResponse:
    only_active = _field(body, "onlyActiveAccounts", "bool", required=True)
    return envelope({"accounts": _wire(sim.exchange.accounts(only_active))})


def search_contracts(sim: Simulation, body: Body, _: str, now: float) -> HttpResponse:
    live = _field(body, "live", "bool", required=True)
    text = (_field(body, "searchText", "str", required=False) or "").strip().lower()
    found = [
        c
        for c in sim.exchange.contracts(live=live)
        if c.active
        and (
            not text
            or text in c.id.lower()
            or text in c.name.lower()
            or text in c.description.lower()
            or text in (c.symbol_id or "").lower()
        )
    ]
    return envelope({"contracts": _wire(found[:20])})


def contract_by_id(sim: Simulation, body: Body, _: str, now: float) -> HttpResponse:
    contract_id = _field(body, "contractId", "str", required=True)
    contract = sim.exchange.contract(contract_id)
    if contract is None:
        return envelope({"contract": None}, code=1)
    return envelope({"contract": to_wire(contract)})


def available_contracts(sim: Simulation, body: Body, _: str, now: float) -> HttpResponse:
    live = _field(body, "live", "bool", required=True)
    return envelope(
        {"contracts": _wire([c for c in sim.exchange.contracts(live=live) if c.active])}
    )


def retrieve_bars(sim: Simulation, body: Body, _: str, now: float) -> HttpResponse:
    contract_id = _field(body, "contractId", "str", required=True)
    _field(body, "live", "bool", required=True)
    start = _field(body, "startTime", "time", required=True)
    end = _field(body, "endTime", "time", required=True)
    unit = _field(body, "unit", "int", required=True)
    unit_number = _field(body, "unitNumber", "int", required=True)
    limit = _field(body, "limit", "int", required=True)
    partial = _field(body, "includePartialBar", "bool", required=True)
    if sim.exchange.contract(contract_id) is None:
        return envelope({"bars": None}, code=1)
    if unit not in range(1, 8):
        return envelope({"bars": None}, code=2)
    if unit_number <= 0:
        return envelope({"bars": None}, code=3)
    if not 0 < limit <= MAX_BARS:
        return envelope({"bars": None}, code=4)

    def fetch(top: datetime, count: int) -> list[Bar]:
        return sim.market.bars(
            contract_id,
            BarUnit(unit),
            unit_number,
            start=start,
            end=top,
            limit=count,
            include_partial_bar=partial,
            now=now,
        )

    try:
        bars = session_bars(
            sim.config.calendar,
            fetch,
            unit=BarUnit(unit),
            unit_number=unit_number,
            end=end,
            limit=limit,
        )
    except UnitUnavailable as exc:  # finer than hours for an expired contract
        return envelope({"bars": None}, code=2, message=str(exc))
    return envelope({"bars": _wire(bars)})


def session_bars(
    calendar: TradingCalendar,
    fetch: Callable[[datetime, int], list[Bar]],
    *,
    unit: BarUnit,
    unit_number: int,
    end: datetime,
    limit: int,
) -> list[Bar]:
    """The ``limit`` most recent bars up to ``end`` (newest first) that overlap a session: no
    intraday bar while the market was closed (a history gap), daily and longer bars whole.

    ``fetch(top, count)`` gives the ``count`` most recent bars up to ``top``; closed stretches
    are skipped by asking again before them, jumping a closed weekend or holiday at once.
    """
    if calendar.hours is Hours.ALWAYS or unit not in _INTRADAY:
        return fetch(end, limit)
    length = timedelta(seconds=0 if unit is BarUnit.TICK else SHORTEST_SECONDS[unit] * unit_number)

    def in_session(bar: Bar) -> bool:
        if unit is BarUnit.TICK:
            return calendar.is_open(bar.time)
        return calendar.overlaps(bar.time, bar.time + length)

    kept: list[Bar] = []
    top = end
    for _ in range(_GAP_SEARCHES):
        wanted = limit - len(kept)
        bars = fetch(top, wanted)
        found = [bar for bar in bars if in_session(bar)]
        kept.extend(found)
        if len(kept) >= limit or len(bars) < wanted:
            break
        oldest = min(bar.time for bar in bars)
        top = oldest - _MICROSECOND
        if not found:
            close = _last_close_before(calendar, oldest)
            if close is None:
                break
            top = min(top, close)
    return kept[:limit]


def _last_close_before(calendar: TradingCalendar, moment: datetime) -> datetime | None:
    """When the latest session that closed at or before ``moment`` closed."""
    day = trading_day(moment)
    for _ in range(_GAP_SEARCH_DAYS):
        if calendar.has_session(day):
            close = calendar.session_close(day)
            if close <= moment:
                return close
        day -= timedelta(days=1)
    return None


def _account(body: Body) -> int:
    return int(_field(body, "accountId", "int", required=True))


def search_orders(sim: Simulation, body: Body, _: str, now: float) -> HttpResponse:
    account = _account(body)
    start = _field(body, "startTimestamp", "time", required=True)
    end = _field(body, "endTimestamp", "time", required=False)
    return _rejecting(
        lambda: {"orders": _wire(sim.exchange.orders(account, start.timestamp(), _epoch(end)))}
    )


def search_open_orders(sim: Simulation, body: Body, _: str, now: float) -> HttpResponse:
    account = _account(body)
    return _rejecting(lambda: {"orders": _wire(sim.exchange.open_orders(account))})


def order_by_id(sim: Simulation, body: Body, _: str, now: float) -> HttpResponse:
    account = _account(body)
    order_id = _field(body, "orderId", "long", required=True)
    return _rejecting(lambda: {"order": to_wire(sim.exchange.order(account, order_id))})


def query_orders(sim: Simulation, body: Body, _: str, now: float) -> HttpResponse:
    if "filter" not in body:
        raise BadRequest(
            {
                "$": [
                    "JSON deserialization for type 'SearchOrdersQueryRequest' was missing required "
                    "properties including: 'filter'."
                ]
            }
        )
    flt = _field(body, "filter", "object", required=True)
    account = _account(flt)
    statuses = _field(flt, "statuses", "ints", required=False)
    contract_id = _field(flt, "contractId", "str", required=False)
    after = _field(flt, "createdAfter", "time", required=False)
    before = _field(flt, "createdBefore", "time", required=False)
    size = _field(body, "pageSize", "int", required=False) or MAX_PAGE
    offset = _field(body, "pageOffset", "int", required=False) or 0
    sort_by = _field(body, "sortBy", "int", required=False) or 0
    descending = (_field(body, "sortDirection", "int", required=False) or 0) == 1
    with_total = bool(_field(body, "includeTotalCount", "bool", required=False))

    def page() -> dict[str, Any]:
        orders = sim.exchange.orders(account, _epoch(after) or 0.0, _epoch(before))
        wanted = {OrderStatus(s) for s in statuses} if statuses else None
        matching = [
            o
            for o in orders
            if (wanted is None or o.status in wanted)
            and (contract_id is None or o.contract_id == contract_id)
        ]
        key: Callable[[Order], Any] = (
            (lambda o: o.id) if sort_by == 1 else (lambda o: (o.created_at, o.id))
        )
        matching.sort(key=key, reverse=descending)
        chosen = matching[max(offset, 0) : max(offset, 0) + max(1, min(size, MAX_PAGE))]
        result: dict[str, Any] = {"orders": _wire(chosen)}
        if with_total:
            result["totalCount"] = len(matching)
        return result

    return _rejecting(page)


def _bracket(body: Body, name: str) -> Bracket | None:
    raw = _field(body, name, "object", required=False)
    if raw is None:
        return None
    ticks = _field(raw, "ticks", "int", required=True)
    kind = _field(raw, "type", "int", required=True)
    return Bracket(ticks, OrderType(kind))


def place_order(sim: Simulation, body: Body, _: str, now: float) -> HttpResponse:
    account = _account(body)
    contract_id = _field(body, "contractId", "str", required=True)
    kind = _field(body, "type", "int", required=True)
    side = _field(body, "side", "int", required=True)
    size = _field(body, "size", "int", required=True)
    limit_price = _field(body, "limitPrice", "decimal", required=False)
    stop_price = _field(body, "stopPrice", "decimal", required=False)
    trail_price = _field(body, "trailPrice", "decimal", required=False)
    tag = _field(body, "customTag", "str", required=False)
    stop_loss = _bracket(body, "stopLossBracket")
    take_profit = _bracket(body, "takeProfitBracket")
    if side not in (0, 1):
        return envelope({"orderId": None}, code=2, message="Invalid order side specified.")
    try:
        order_id = sim.exchange.place(
            account,
            contract_id,
            OrderType(kind),
            OrderSide(side),
            size,
            limit_price=limit_price,
            stop_price=stop_price,
            trail_price=trail_price,
            custom_tag=tag,
            stop_loss=stop_loss,
            take_profit=take_profit,
            now=now,
        )
    except Rejection as exc:
        return envelope({"orderId": exc.order_id}, code=int(exc.code), message=exc.message)
    return envelope({"orderId": order_id})


def cancel_order(sim: Simulation, body: Body, _: str, now: float) -> HttpResponse:
    account = _account(body)
    order_id = _field(body, "orderId", "long", required=True)
    return _rejecting(lambda: sim.exchange.cancel(account, order_id, now=now))


def modify_order(sim: Simulation, body: Body, _: str, now: float) -> HttpResponse:
    account = _account(body)
    order_id = _field(body, "orderId", "long", required=True)
    size = _field(body, "size", "int", required=False)
    limit_price = _field(body, "limitPrice", "decimal", required=False)
    stop_price = _field(body, "stopPrice", "decimal", required=False)
    trail_price = _field(body, "trailPrice", "decimal", required=False)
    return _rejecting(
        lambda: sim.exchange.modify(
            account,
            order_id,
            size=size,
            limit_price=limit_price,
            stop_price=stop_price,
            trail_price=trail_price,
            now=now,
        )
    )


def open_positions(sim: Simulation, body: Body, _: str, now: float) -> HttpResponse:
    account = _account(body)
    return _rejecting(lambda: {"positions": _wire(sim.exchange.positions(account))})


def close_position(sim: Simulation, body: Body, _: str, now: float) -> HttpResponse:
    account = _account(body)
    contract_id = _field(body, "contractId", "str", required=True)
    return _rejecting(lambda: sim.exchange.close_position(account, contract_id, now=now))


def partial_close_position(sim: Simulation, body: Body, _: str, now: float) -> HttpResponse:
    account = _account(body)
    contract_id = _field(body, "contractId", "str", required=True)
    size = _field(body, "size", "int", required=True)
    return _rejecting(
        lambda: sim.exchange.partial_close_position(account, contract_id, size, now=now)
    )


def search_trades(sim: Simulation, body: Body, _: str, now: float) -> HttpResponse:
    account = _account(body)
    start = _field(body, "startTimestamp", "time", required=False)
    end = _field(body, "endTimestamp", "time", required=False)
    return _rejecting(
        lambda: {"trades": _wire(sim.exchange.fills(account, _epoch(start) or 0.0, _epoch(end)))}
    )


def _rejecting(action: Callable[[], Any]) -> HttpResponse:
    """Run an exchange call; a Rejection becomes the endpoint's error envelope."""
    try:
        result = action()
    except Rejection as exc:
        return envelope(code=int(exc.code), message=exc.message)
    return envelope(result if isinstance(result, dict) else None)


# path (lower case) -> (handler, needs a token, rate bucket)
ROUTES: Final[dict[str, tuple[Handler, bool, RateBucket]]] = {
    "/api/auth/loginkey": (login_key, False, RateBucket.GENERAL),
    "/api/auth/loginapp": (login_app, False, RateBucket.GENERAL),
    "/api/auth/validate": (validate, True, RateBucket.GENERAL),
    "/api/auth/logout": (logout, True, RateBucket.GENERAL),
    "/api/account/search": (search_accounts, True, RateBucket.GENERAL),
    "/api/contract/search": (search_contracts, True, RateBucket.GENERAL),
    "/api/contract/searchbyid": (contract_by_id, True, RateBucket.GENERAL),
    "/api/contract/available": (available_contracts, True, RateBucket.GENERAL),
    "/api/history/retrievebars": (retrieve_bars, True, RateBucket.HISTORY),
    "/api/order/search": (search_orders, True, RateBucket.GENERAL),
    "/api/order/searchopen": (search_open_orders, True, RateBucket.GENERAL),
    "/api/order/searchbyid": (order_by_id, True, RateBucket.GENERAL),
    "/api/order/v2/query": (query_orders, True, RateBucket.GENERAL),
    "/api/order/place": (place_order, True, RateBucket.GENERAL),
    "/api/order/cancel": (cancel_order, True, RateBucket.GENERAL),
    "/api/order/modify": (modify_order, True, RateBucket.GENERAL),
    "/api/position/searchopen": (open_positions, True, RateBucket.GENERAL),
    "/api/position/closecontract": (close_position, True, RateBucket.GENERAL),
    "/api/position/partialclosecontract": (partial_close_position, True, RateBucket.GENERAL),
    "/api/trade/search": (search_trades, True, RateBucket.GENERAL),
}


# Endpoints whose request has no body model (anything sent is ignored, as model binding does).
NO_BODY: Final = frozenset({"/api/auth/validate", "/api/auth/logout"})


def parse_body(request: HttpRequest) -> Body:
    """The JSON object of a request body; BadRequest for anything else."""
    if not request.body.strip():
        raise BadRequest({"": ["A non-empty request body is required."]})
    try:
        data = loads(request.body)
    except RemoteProtocolError:
        raise BadRequest({"$": ["The JSON value could not be parsed."]}) from None
    if type(data) is not dict:
        raise BadRequest({"$": ["The JSON value could not be converted to the request type."]})
    return data


def now_utc(now: float) -> datetime:
    """``now`` as an aware datetime."""
    return datetime.fromtimestamp(now, UTC)
