"""What the project-x-py SDK needs from Gateway payloads, recorded as plain data.

Source: the PyPI wheel ``project_x_py-4.4.1-py3-none-any.whl`` (project-x-py 4.4.1, by
TexasCoding), read but not installed. The facts below come from these modules of it:

- ``project_x_py/models.py``: the dataclasses ``Account``, ``Instrument``, ``Order``,
  ``Position`` and ``Trade``. Each is built with ``from_api``, which passes the known keys of
  a payload to the dataclass and drops unknown ones; a field without a default is therefore
  a key the payload must carry (even when its type allows null), a field with a default is
  optional. ``Order.from_api`` fills ``fillVolume`` from ``filledSize`` and
  ``Trade.from_api`` fills ``fees`` from ``commissions`` when the first key is absent.
- ``project_x_py/types/trading.py``: ``OrderSide``, ``OrderType``, ``OrderStatus``,
  ``PositionType``, ``TradeLogType``; ``project_x_py/types/market_data.py``: ``DomType``.
- ``project_x_py/client/auth.py`` (``/Account/search``: ``accounts``),
  ``client/market_data.py`` (``/Contract/search``: ``contracts``; ``/Contract/searchById``:
  ``contract``; ``/History/retrieveBars``: ``bars`` whose keys ``t o h l c v`` are renamed to
  timestamp/open/high/low/close/volume and ``t`` parsed as an ISO-8601 datetime),
  ``client/trading.py`` (``/Position/searchOpen``: ``positions``; ``/Trade/search``:
  ``trades``), ``order_manager/core.py`` (``/Order/search`` and ``/Order/searchOpen``:
  ``orders``); every one of them first requires ``success`` to be true.
- ``project_x_py/realtime/connection_management.py`` and ``realtime/event_handling.py``: the
  user hub's ``GatewayUserAccount/Order/Position/Trade`` handlers pass their first argument
  on as is; the market hub's ``GatewayQuote/Trade/Depth`` handlers take the arguments
  ``[contractId, payload]``.
- ``project_x_py/order_manager/tracking.py``: a ``GatewayUserOrder`` argument is unwrapped
  through its ``data`` key (``{action, data}``), must carry an ``id``, its ``status`` is
  checked to lie in 0..10, and on a change to status 2, 3, 4 or 5 it is built into an
  ``Order``. A ``GatewayUserTrade`` argument is unwrapped the same way and must carry an
  integer ``orderId`` (the fill is attached to that order); no ``Trade`` is built from it.
- ``project_x_py/position_manager/tracking.py``: a ``GatewayUserPosition`` argument is
  unwrapped when it has both ``action`` and ``data``; the position must carry
  ``contractId``, ``type`` (0, 1 or 2), ``size`` (a number) and ``averagePrice``; other
  ``Position`` fields are defaulted for a new position. ``GatewayUserAccount`` payloads are
  forwarded to callbacks without being read.
- ``project_x_py/realtime_data_manager/validation.py`` and ``data_processing.py``: a quote
  needs ``symbol`` and is read for ``lastPrice``, ``bestBid``, ``bestAsk``, ``volume``; a
  market trade needs ``symbolId``, ``price``, ``timestamp`` and ``volume`` and is read for
  ``type`` (TradeLogType); both are dropped unless the last dot-separated part of the symbol
  equals that of the instrument's ``symbolId``. A trade payload may be a list of such dicts.
- ``project_x_py/orderbook/realtime.py``: a depth payload is a list of entries (or one entry)
  read for ``type`` (DomType), ``price`` and ``volume`` (``size`` as a fallback) with ``.get``
  defaults of 0, so a missing key silently reads as 0; the record treats the three as
  required. Only entries of type TRADE (5) feed its trade tape; BID/ASK (2/1), BEST_BID or
  NEW_BEST_BID (4/9) and BEST_ASK or NEW_BEST_ASK (3/10) update the book, RESET (6) clears it.
  ``orderbook/realtime.py`` also reads ``bestBid``, ``bestAsk``, ``bidSize`` and ``askSize``
  of a quote.

JSON type names: "string", "integer" (a JSON number without a fraction, not a boolean),
"number" (any JSON number, not a boolean), "boolean", "null".
"""

from __future__ import annotations

from typing import Final

Fields = dict[str, tuple[str, ...]]
Model = dict[str, Fields]

SOURCE: Final = "project-x-py 4.4.1 (PyPI wheel project_x_py-4.4.1-py3-none-any.whl)"

STR: Final = ("string",)
INT: Final = ("integer",)
NUM: Final = ("number",)
BOOL: Final = ("boolean",)
OPT_STR: Final = ("string", "null")
OPT_INT: Final = ("integer", "null")
OPT_NUM: Final = ("number", "null")

# --- models (project_x_py/models.py) ---

ACCOUNT: Final[Model] = {
    "required": {
        "id": INT,
        "name": STR,
        "balance": NUM,
        "canTrade": BOOL,
        "isVisible": BOOL,
        "simulated": BOOL,
    },
    "optional": {},
}

INSTRUMENT: Final[Model] = {
    "required": {
        "id": STR,
        "name": STR,
        "description": STR,
        "tickSize": NUM,
        "tickValue": NUM,
        "activeContract": BOOL,
    },
    "optional": {"symbolId": OPT_STR},
}

ORDER: Final[Model] = {
    "required": {
        "id": INT,
        "accountId": INT,
        "contractId": STR,
        "creationTimestamp": STR,
        "updateTimestamp": OPT_STR,  # no default: the key must be there, null allowed
        "status": INT,
        "type": INT,
        "side": INT,
        "size": INT,
    },
    "optional": {
        "symbolId": OPT_STR,
        "fillVolume": OPT_INT,
        "limitPrice": OPT_NUM,
        "stopPrice": OPT_NUM,
        "filledPrice": OPT_NUM,
        "customTag": OPT_STR,
    },
}

POSITION: Final[Model] = {
    "required": {
        "id": INT,
        "accountId": INT,
        "contractId": STR,
        "creationTimestamp": STR,
        "type": INT,
        "size": INT,
        "averagePrice": NUM,
    },
    "optional": {"contractDisplayName": OPT_STR},
}

TRADE: Final[Model] = {
    "required": {
        "id": INT,
        "accountId": INT,
        "contractId": STR,
        "creationTimestamp": STR,
        "price": NUM,
        "profitAndLoss": OPT_NUM,  # no default: null marks a half-turn trade
        "fees": NUM,
        "side": INT,
        "size": INT,
        "voided": BOOL,
        "orderId": INT,
    },
    "optional": {"commissions": OPT_NUM},
}

# from_api aliases: the source key stands in for the model key when the model key is absent.
ALIASES: Final[dict[str, dict[str, str]]] = {
    "Order": {"fillVolume": "filledSize"},
    "Trade": {"fees": "commissions"},
}

# --- REST (client/*.py, order_manager/core.py) ---

BAR: Final[Model] = {
    "required": {"t": STR, "o": NUM, "h": NUM, "l": NUM, "c": NUM, "v": NUM},
    "optional": {},
}

# endpoint -> (key holding the payload, "list" or "object", model name)
RESPONSES: Final[dict[str, tuple[str, str, str]]] = {
    "/api/Account/search": ("accounts", "list", "Account"),
    "/api/Contract/search": ("contracts", "list", "Instrument"),
    "/api/Contract/searchById": ("contract", "object", "Instrument"),
    "/api/History/retrieveBars": ("bars", "list", "Bar"),
    "/api/Order/search": ("orders", "list", "Order"),
    "/api/Order/searchOpen": ("orders", "list", "Order"),
    "/api/Position/searchOpen": ("positions", "list", "Position"),
    "/api/Trade/search": ("trades", "list", "Trade"),
}

# --- user hub: the ``data`` of each ``{action, data}`` argument ---

USER_ORDER: Final[Model] = ORDER  # built into an Order when it turns terminal
USER_ORDER_STATUS_RANGE: Final = range(11)  # 0..10, tracking.py's sanity range
USER_POSITION: Final[Model] = {
    "required": {"contractId": STR, "type": INT, "size": NUM, "averagePrice": NUM},
    "optional": {"id": INT, "accountId": INT, "creationTimestamp": STR},
}
USER_TRADE: Final[Model] = {"required": {"orderId": INT}, "optional": {}}
USER_ACCOUNT: Final[Model] = {"required": {}, "optional": {}}  # forwarded, not read

USER_EVENTS: Final[dict[str, Model]] = {
    "GatewayUserAccount": USER_ACCOUNT,
    "GatewayUserOrder": USER_ORDER,
    "GatewayUserPosition": USER_POSITION,
    "GatewayUserTrade": USER_TRADE,
}

# --- market hub: the payload after the contract id ---

QUOTE: Final[Model] = {
    "required": {"symbol": STR},
    "optional": {
        "lastPrice": OPT_NUM,
        "bestBid": OPT_NUM,
        "bestAsk": OPT_NUM,
        "volume": OPT_NUM,
        "bidSize": OPT_NUM,
        "askSize": OPT_NUM,
    },
}
MARKET_TRADE: Final[Model] = {
    "required": {"symbolId": STR, "price": NUM, "timestamp": STR, "volume": NUM},
    "optional": {"type": INT},
}
DEPTH_ENTRY: Final[Model] = {
    "required": {"type": INT, "price": NUM, "volume": NUM},
    "optional": {"size": NUM},
}

# --- enums (types/trading.py, types/market_data.py) ---

ORDER_SIDE: Final = {0: "BUY", 1: "SELL"}
ORDER_TYPE: Final = {
    1: "LIMIT",
    2: "MARKET",
    3: "STOP_LIMIT",
    4: "STOP",
    5: "TRAILING_STOP",
    6: "JOIN_BID",
    7: "JOIN_ASK",
}
ORDER_STATUS: Final = {
    0: "NONE",
    1: "OPEN",
    2: "FILLED",
    3: "CANCELLED",
    4: "EXPIRED",
    5: "REJECTED",
    6: "PENDING",
    7: "PENDING_CANCELLATION",
    8: "SUSPENDED",
}
POSITION_TYPE: Final = {0: "UNDEFINED", 1: "LONG", 2: "SHORT"}
TRADE_LOG_TYPE: Final = {0: "BUY", 1: "SELL"}
DOM_TYPE: Final = {
    0: "UNKNOWN",
    1: "ASK",
    2: "BID",
    3: "BEST_ASK",
    4: "BEST_BID",
    5: "TRADE",
    6: "RESET",
    7: "SESSION_LOW",
    8: "SESSION_HIGH",
    9: "NEW_BEST_BID",
    10: "NEW_BEST_ASK",
    11: "FILL",
}

# enum-valued keys of each model
ENUMS: Final[dict[str, dict[str, dict[int, str]]]] = {
    "Order": {"status": ORDER_STATUS, "type": ORDER_TYPE, "side": ORDER_SIDE},
    "Position": {"type": POSITION_TYPE},
    "Trade": {"side": ORDER_SIDE},
    "Quote": {},
    "MarketTrade": {"type": TRADE_LOG_TYPE},
    "DepthEntry": {"type": DOM_TYPE},
}

MODELS: Final[dict[str, Model]] = {
    "Account": ACCOUNT,
    "Instrument": INSTRUMENT,
    "Order": ORDER,
    "Position": POSITION,
    "Trade": TRADE,
    "Bar": BAR,
    "Quote": QUOTE,
    "MarketTrade": MARKET_TRADE,
    "DepthEntry": DEPTH_ENTRY,
}
