"""The gateway's two SignalR hubs: subscription methods and decoding of every event.

User events arrive as a bare entity, an ``{"action", "data"}`` envelope or a list of either, with
null fields left out. Market events carry ``(contractId, data)``; quotes are partial and merged
into the last known quote per contract; trade and depth ``data`` is a list (a single object is
accepted too). The market path is hand-decoded for speed with the same value readers as the
REST mapping.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

import attrs

from ...core.enums import DepthType, OpenIntEnum, TradeSide
from ...core.errors import RemoteProtocolError
from ...core.events import (
    AccountUpdated,
    DepthReceived,
    FillReceived,
    MarketTradeReceived,
    OrderUpdated,
    PositionUpdated,
    QuoteUpdated,
    SessionLoggedOut,
    StreamEvent,
)
from ...core.jsoncodec import _DECIMALS, to_decimal
from ...core.models import (
    Account,
    ContractId,
    DepthUpdate,
    Fill,
    MarketTrade,
    Order,
    Position,
    Quote,
)
from ...core.slots import slot_setters
from ...core.subscriptions import Channel, Subscription
from .wire import _TIMESTAMPS, from_wire, parse_timestamp, read_int, read_str

Call = tuple[str, tuple[Any, ...]]
E = TypeVar("E", bound=OpenIntEnum)

USER_HUB: Final = "user"
MARKET_HUB: Final = "market"

_USER_METHODS: Final[dict[Channel, str]] = {
    Channel.ACCOUNTS: "Accounts",
    Channel.ORDERS: "Orders",
    Channel.POSITIONS: "Positions",
    Channel.FILLS: "Trades",
}
_MARKET_METHODS: Final[dict[Channel, str]] = {
    Channel.QUOTES: "ContractQuotes",
    Channel.TRADES: "ContractTrades",
    Channel.DEPTH: "ContractMarketDepth",
}


def _call(verb: str, methods: Mapping[Channel, str], sub: Subscription) -> Call:
    method = f"{verb}{methods[sub.channel]}"
    return (method, ()) if sub.key is None else (method, (sub.key,))


# --- value readers (strict types, tolerant of absence) -------------------------------------


_Reader = Callable[[Any], Any]

_QUOTE_READERS: Final[dict[str, tuple[str, _Reader]]] = {
    "symbol": ("symbol", read_str),
    "symbolName": ("symbol_name", read_str),
    "lastPrice": ("last_price", to_decimal),
    "bestBid": ("best_bid", to_decimal),
    "bestAsk": ("best_ask", to_decimal),
    "change": ("change", to_decimal),
    "changePercent": ("change_percent", to_decimal),
    "open": ("open", to_decimal),
    "high": ("high", to_decimal),
    "low": ("low", to_decimal),
    "volume": ("volume", read_int),
    "lastUpdated": ("last_updated", parse_timestamp),
    "timestamp": ("timestamp", parse_timestamp),
}


def _items(data: Any) -> list[Any]:
    """Trade and depth payloads are lists; tolerate a single object."""
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        return [data]
    raise ValueError(f"expected a list or an object, got {type(data).__name__}")


def _entities(arguments: tuple[Any, ...]) -> list[Mapping[str, Any]]:
    """User-hub payloads: a bare entity, an {action, data} envelope, or lists of either."""
    found: list[Mapping[str, Any]] = []
    for argument in arguments:
        for item in argument if isinstance(argument, list) else [argument]:
            is_envelope = isinstance(item, dict) and "data" in item and "id" not in item
            entity = item["data"] if is_envelope else item
            if not isinstance(entity, dict):
                raise ValueError(f"expected an entity object, got {type(entity).__name__}")
            found.append(entity)
    return found


def _position(data: Mapping[str, Any]) -> Position:
    # A flat position is announced with size 0; its direction and price may be left out.
    if data.get("size") == 0:
        data = {"type": 0, "averagePrice": 0, **data}
    return from_wire(Position, data)


_USER_EVENTS: Final[dict[str, Callable[[Mapping[str, Any]], StreamEvent]]] = {
    "gatewayuseraccount": lambda d: AccountUpdated(from_wire(Account, d)),
    "gatewayuserorder": lambda d: OrderUpdated(from_wire(Order, d)),
    "gatewayuserposition": lambda d: PositionUpdated(_position(d)),
    "gatewayusertrade": lambda d: FillReceived(from_wire(Fill, d)),
}


@attrs.define
class UserHub:
    """The user hub: accounts, orders, positions and fills of the logged-in user."""

    url: str
    name: str = USER_HUB
    market_data: bool = False

    def handles(self, subscription: Subscription) -> bool:
        """True for the user channels."""
        return subscription.channel in _USER_METHODS

    def subscribe_call(self, subscription: Subscription) -> Call:
        """The hub method and arguments that start a subscription."""
        return _call("Subscribe", _USER_METHODS, subscription)

    def unsubscribe_call(self, subscription: Subscription) -> Call:
        """The hub method and arguments that end a subscription."""
        return _call("Unsubscribe", _USER_METHODS, subscription)

    def decode(self, target: str, arguments: tuple[Any, ...]) -> list[StreamEvent]:
        """Generic events for one server invocation; unknown targets give nothing."""
        key = target.lower()
        if key == "gatewaylogout":
            return [SessionLoggedOut(self.name)]
        build = _USER_EVENTS.get(key)
        if build is None:
            return []
        try:
            return [build(entity) for entity in _entities(arguments)]
        except ValueError as exc:
            raise RemoteProtocolError(f"{target}: {exc}") from None


# --- market hub ------------------------------------------------------------------------------
#
# Market data arrives by the thousand per second, so its decoding is written out by hand: the
# caches behind to_decimal and parse_timestamp are read inline, and the frozen events are built by
# filling the slots of a bare instance, which skips the object.__setattr__ call per field that a
# frozen attrs __init__ makes. Every fallback goes through the same readers as the REST mapping.


_QUOTE_SLOTS: Final = (
    "contract_id",
    "symbol",
    "symbol_name",
    "last_price",
    "best_bid",
    "best_ask",
    "change",
    "change_percent",
    "open",
    "high",
    "low",
    "volume",
    "last_updated",
    "timestamp",
)
# Each wire field of a quote: the index of its value in _QUOTE_SLOTS order, and its reader.
_QUOTE_FIELDS: Final[dict[str, tuple[int, _Reader]]] = {
    wire: (_QUOTE_SLOTS.index(name), read) for wire, (name, read) in _QUOTE_READERS.items()
}
_NO_QUOTE: Final = (None,) * (len(_QUOTE_SLOTS) - 1)  # every field but the contract id


def _quote_builder() -> Callable[[list[Any]], Quote]:
    s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, s12, s13 = slot_setters(Quote, *_QUOTE_SLOTS)

    def build(values: list[Any]) -> Quote:
        """The Quote holding ``values``, given in _QUOTE_SLOTS order."""
        # Unrolled: a loop over the setters costs more than attrs' own __init__.
        quote = object.__new__(Quote)
        s0(quote, values[0])
        s1(quote, values[1])
        s2(quote, values[2])
        s3(quote, values[3])
        s4(quote, values[4])
        s5(quote, values[5])
        s6(quote, values[6])
        s7(quote, values[7])
        s8(quote, values[8])
        s9(quote, values[9])
        s10(quote, values[10])
        s11(quote, values[11])
        s12(quote, values[12])
        s13(quote, values[13])
        return quote

    return build


_build_quote: Final = _quote_builder()
(_SET_QUOTE,) = slot_setters(QuoteUpdated, "quote")
_SET_DEPTH_CONTRACT, _SET_DEPTH_UPDATES = slot_setters(DepthReceived, "contract_id", "updates")
_DEPTH_UPDATE_SETTERS: Final = slot_setters(
    DepthUpdate, "contract_id", "type", "price", "volume", "timestamp", "current_volume"
)
_DEPTH_TYPES: Final[dict[int, DepthType]] = {int(m): m for m in DepthType}
_TRADE_SIDES: Final[dict[int, TradeSide]] = {int(m): m for m in TradeSide}


@attrs.define
class MarketHub:
    """The market hub: quotes (merged per contract), trade prints and depth."""

    url: str
    name: str = MARKET_HUB
    market_data: bool = True
    _quotes: dict[ContractId, Quote] = attrs.field(factory=dict, repr=False)
    # The merged field values behind each quote (in _QUOTE_SLOTS order), so that a partial
    # update costs only its own fields.
    _quote_fields: dict[ContractId, list[Any]] = attrs.field(factory=dict, repr=False)

    def handles(self, subscription: Subscription) -> bool:
        """True for the market channels."""
        return subscription.channel in _MARKET_METHODS

    def subscribe_call(self, subscription: Subscription) -> Call:
        """The hub method and arguments that start a subscription."""
        return _call("Subscribe", _MARKET_METHODS, subscription)

    def unsubscribe_call(self, subscription: Subscription) -> Call:
        """The hub method and arguments that end a subscription."""
        return _call("Unsubscribe", _MARKET_METHODS, subscription)

    def last_quote(self, contract_id: ContractId) -> Quote | None:
        """The merged quote of a contract, if any arrived."""
        return self._quotes.get(contract_id)

    def decode(self, target: str, arguments: tuple[Any, ...]) -> list[StreamEvent]:
        """Generic events for one server invocation; unknown targets give nothing."""
        # The gateway's own spelling hits at once; any other casing is looked up lower-cased.
        build = _MARKET_EVENTS.get(target) or _MARKET_EVENTS.get(target.lower())
        if build is None:
            return [SessionLoggedOut(self.name)] if target.lower() == "gatewaylogout" else []
        if len(arguments) < 2 or not isinstance(arguments[0], str):
            raise RemoteProtocolError(f"{target}: expected (contractId, data) arguments")
        contract_id = arguments[0]
        try:
            return build(self, contract_id, arguments[1])
        except (ValueError, TypeError, KeyError, AttributeError, ArithmeticError) as exc:
            raise RemoteProtocolError(f"{target} for {contract_id}: {exc!r}") from None

    def _quote_events(self, contract_id: ContractId, data: Any) -> list[StreamEvent]:
        if not isinstance(data, dict):
            raise ValueError(f"expected a quote object, got {type(data).__name__}")
        previous = self._quote_fields.get(contract_id)
        # A copy, so that a field failing half-way leaves the merged quote as it was.
        values = [contract_id, *_NO_QUOTE] if previous is None else previous.copy()
        fields, decimals, timestamps = _QUOTE_FIELDS, _DECIMALS, _TIMESTAMPS
        for key, value in data.items():
            spec = fields.get(key)
            if spec is None or value is None:
                continue  # a field this code does not map, or one left unchanged
            index, read = spec
            # The cache lookups of to_decimal and parse_timestamp, inlined: most values hit.
            if read is to_decimal:
                cached: Any = decimals.get(value) if type(value) is float else None
            elif read is parse_timestamp:
                cached = timestamps.get(value) if type(value) is str else None
            else:
                cached = None
            values[index] = read(value) if cached is None else cached
        quote = _build_quote(values)
        self._quote_fields[contract_id] = values
        self._quotes[contract_id] = quote
        # QuoteUpdated(quote), slot filled directly.
        event = object.__new__(QuoteUpdated)
        _SET_QUOTE(event, quote)
        return [event]

    def _trade_events(self, contract_id: ContractId, data: Any) -> list[StreamEvent]:
        return [MarketTradeReceived(_market_trade(contract_id, item)) for item in _items(data)]

    def _depth_events(self, contract_id: ContractId, data: Any) -> list[StreamEvent]:
        # DepthReceived(contract_id, updates), slots filled directly.
        event = object.__new__(DepthReceived)
        _SET_DEPTH_CONTRACT(event, contract_id)
        _SET_DEPTH_UPDATES(event, _depth_updates(contract_id, data))
        return [event]


_MarketEvents = Callable[[MarketHub, ContractId, Any], list[StreamEvent]]
# Keyed by the exact spellings the gateway uses and by their lower-case forms.
_MARKET_EVENTS: Final[dict[str, _MarketEvents]] = {
    spelling: build
    for target, build in (
        ("GatewayQuote", MarketHub._quote_events),
        ("GatewayTrade", MarketHub._trade_events),
        ("GatewayDepth", MarketHub._depth_events),
    )
    for spelling in (target, target.lower())
}


def _member(known: Mapping[int, E], enum: type[E], value: Any) -> E:
    """The enum member for a wire integer: a dict lookup for documented values."""
    member = known.get(value) if type(value) is int else None
    return member if member is not None else enum(read_int(value))


def _optional_time(item: Mapping[str, Any]) -> Any:
    value = item.get("timestamp")
    return None if value is None else parse_timestamp(value)


def _market_trade(contract_id: ContractId, item: Any) -> MarketTrade:
    symbol = item.get("symbolId")
    return MarketTrade(
        contract_id,
        to_decimal(item["price"]),
        read_int(item["volume"]),
        _member(_TRADE_SIDES, TradeSide, item["type"]),
        _optional_time(item),
        None if symbol is None else read_str(symbol),
    )


def _depth_updates(contract_id: ContractId, data: Any) -> tuple[DepthUpdate, ...]:
    """Every entry of a depth message; the hottest path of the market hub, kept flat."""
    depth_types, decimals, timestamps = _DEPTH_TYPES, _DECIMALS, _TIMESTAMPS
    set_contract, set_type, set_price, set_volume, set_time, set_current = _DEPTH_UPDATE_SETTERS
    new = object.__new__
    updates = []
    # Each value is read as "cache hit or exact type, else the full reader".
    for item in data if type(data) is list else _items(data):
        kind = item["type"]
        member = depth_types.get(kind) if type(kind) is int else None
        if member is None:
            member = DepthType(read_int(kind))
        price = item["price"]
        decimal = decimals.get(price) if type(price) is float else None
        if decimal is None:
            decimal = to_decimal(price)
        volume = item["volume"]
        if type(volume) is not int:
            volume = read_int(volume)
        stamp = item.get("timestamp")
        if stamp is not None:
            parsed = timestamps.get(stamp) if type(stamp) is str else None
            stamp = parse_timestamp(stamp) if parsed is None else parsed
        current = item.get("currentVolume")
        if current is not None and type(current) is not int:
            current = read_int(current)
        # DepthUpdate(contract_id, member, decimal, volume, stamp, current), filled directly.
        update = new(DepthUpdate)
        set_contract(update, contract_id)
        set_type(update, member)
        set_price(update, decimal)
        set_volume(update, volume)
        set_time(update, stamp)
        set_current(update, current)
        updates.append(update)
    return tuple(updates)


def hubs_for(user_url: str, market_url: str) -> tuple[UserHub, MarketHub]:
    """Both hub specifications for an environment's hub URLs."""
    return UserHub(user_url), MarketHub(market_url)
