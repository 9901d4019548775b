"""Shared test data for the TopstepX REST layer: fixture loading and one operation per endpoint."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from tradeforge_proto.core.enums import BarUnit, OrderSide, OrderType
from tradeforge_proto.core.models import OrderQuery
from tradeforge_proto.core.operations import Operation
from tradeforge_proto.core.secret import Secret
from tradeforge_proto.providers.topstepx import rest

FIXTURES = Path(__file__).parent / "fixtures"

API_KEY = "k3y-SUPER-secret-0123456789"
PASSWORD = "hunter2-pa55word"
VERIFY_KEY = "verify-9f8e7d6c5b4a"


def fixture_bytes(name: str) -> bytes:
    """The raw bytes of a fixture file."""
    return (FIXTURES / name).read_bytes()


def fixture_json(name: str) -> Any:
    """A fixture file decoded as JSON."""
    return orjson.loads(fixture_bytes(name))


def json_body(value: Any) -> bytes:
    """``value`` encoded as a response body."""
    return orjson.dumps(value)


# One representative operation builder per endpoint (the parsers do not depend on the arguments,
# except Contract/searchById which looks for its contract id in legacy answers).
BUILDERS: dict[str, Callable[[], Operation[Any]]] = {
    "Auth/loginKey": lambda: rest.login_key("jdoe", API_KEY),
    "Auth/loginApp": lambda: rest.login_app(
        "jdoe", Secret(PASSWORD), "device-1", "app-1", Secret(VERIFY_KEY)
    ),
    "Auth/validate": rest.validate,
    "Auth/logout": rest.logout,
    "Account/search": rest.search_accounts,
    "Contract/search": lambda: rest.search_contracts("NQ"),
    "Contract/searchById": lambda: rest.get_contract("CON.F.US.ENQ.H25"),
    "Contract/available": rest.available_contracts,
    "History/retrieveBars": lambda: rest.retrieve_bars(
        "CON.F.US.RTY.Z24",
        BarUnit.HOUR,
        1,
        start=datetime(2024, 12, 1, tzinfo=UTC),
        end=datetime(2024, 12, 31, 21, tzinfo=UTC),
        limit=7,
    ),
    "Order/search": lambda: rest.search_orders(704, datetime(2025, 7, 18, 21, tzinfo=UTC)),
    "Order/searchOpen": lambda: rest.search_open_orders(704),
    "Order/searchById": lambda: rest.get_order(704, 40113),
    "Order/v2/query": lambda: rest.query_orders(OrderQuery(account_id=704)),
    "Order/place": lambda: rest.place_order(
        465, "CON.F.US.DA6.M25", OrderSide.SELL, OrderType.MARKET, 1
    ),
    "Order/cancel": lambda: rest.cancel_order(465, 26974),
    "Order/modify": lambda: rest.modify_order(465, 26974, stop_price="1604.0"),
    "Position/searchOpen": lambda: rest.search_open_positions(536),
    "Position/closeContract": lambda: rest.close_position(536, "CON.F.US.GMET.J25"),
    "Position/partialCloseContract": lambda: rest.partial_close_position(
        536, "CON.F.US.GMET.J25", 1
    ),
    "Trade/search": lambda: rest.search_trades(203, datetime(2025, 1, 20, tzinfo=UTC)),
    "Status/ping": rest.ping,
}

OPERATIONS: dict[str, Operation[Any]] = {name: build() for name, build in BUILDERS.items()}

SUCCESS_FIXTURES: dict[str, str] = {
    "Auth/loginKey": "auth_login_key.json",
    "Auth/loginApp": "auth_login_app.json",
    "Auth/validate": "auth_validate.json",
    "Auth/logout": "auth_logout.json",
    "Account/search": "account_search.json",
    "Contract/search": "contract_search.json",
    "Contract/searchById": "contract_search_by_id.json",
    "Contract/available": "contract_available.json",
    "History/retrieveBars": "history_retrieve_bars.json",
    "Order/search": "order_search.json",
    "Order/searchOpen": "order_search_open.json",
    "Order/searchById": "order_search_by_id.json",
    "Order/v2/query": "order_v2_query.json",
    "Order/place": "order_place.json",
    "Order/cancel": "order_cancel.json",
    "Order/modify": "order_modify.json",
    "Position/searchOpen": "position_search_open.json",
    "Position/closeContract": "position_close_contract.json",
    "Position/partialCloseContract": "position_partial_close_contract.json",
    "Trade/search": "trade_search.json",
    "Status/ping": "status_ping.json",
}

# Endpoints that answer with the JSON envelope (all but the ping).
ENVELOPE_ENDPOINTS: tuple[str, ...] = tuple(e for e in rest.ENDPOINTS if e != "Status/ping")

# The payload field each envelope endpoint must carry on success (None: envelope only).
PAYLOAD_FIELDS: dict[str, str | None] = {
    "Auth/loginKey": "token",
    "Auth/loginApp": "token",
    "Auth/validate": "newToken",
    "Auth/logout": None,
    "Account/search": "accounts",
    "Contract/search": "contracts",
    "Contract/searchById": "contract",
    "Contract/available": "contracts",
    "History/retrieveBars": "bars",
    "Order/search": "orders",
    "Order/searchOpen": "orders",
    "Order/searchById": "order",
    "Order/v2/query": "orders",
    "Order/place": "orderId",
    "Order/cancel": None,
    "Order/modify": None,
    "Position/searchOpen": "positions",
    "Position/closeContract": None,
    "Position/partialCloseContract": None,
    "Trade/search": "trades",
}

PAYLOAD_ENDPOINTS: tuple[str, ...] = tuple(e for e, f in PAYLOAD_FIELDS.items() if f is not None)
ENVELOPE_ONLY_ENDPOINTS: tuple[str, ...] = tuple(e for e, f in PAYLOAD_FIELDS.items() if f is None)
