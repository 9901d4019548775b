"""The whole simulated gateway as pure state: REST answers, hub sessions and what they receive.

Time is passed in; nothing here touches a socket. The server module moves bytes; tests can drive
a ``Simulation`` directly with a scripted clock and get the same event stream for the same seed.
"""

from __future__ import annotations

import logging
import math
import sqlite3
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from typing import Any, Final

import attrs

from tradeforge_proto.core.jsoncodec import dumps
from tradeforge_proto.core.operations import HttpRequest, HttpResponse, RateBucket
from tradeforge_proto.limits import DEFAULT_BUDGETS, RateBudget, RateLimiter
from tradeforge_proto.providers.topstepx.wire import to_wire
from tradeforge_proto.rules import TradingCalendar

from .accounts import default_accounts
from .auth import DEFAULT_API_KEY, DEFAULT_USERNAME, MAX_TOKENS, TokenBook, bearer
from .contracts import default_catalogue, expiry_of
from .engine import Exchange, SimAccount, UserEvent, UserEventKind
from .market import QuoteChange, SyntheticMarket, TradePrints
from .rest import NO_BODY, ROUTES, BadRequest, now_utc, parse_body, plain, problem
from .store import StateStore

log = logging.getLogger("tradeforge.sim")
USER_HUB: Final = "user"
MARKET_HUB: Final = "market"
_RETRY_FIRST: Final = 1.0  # seconds before a failed state write is tried again, doubling
_RETRY_LONGEST: Final = 60.0
MAX_CLIENTS: Final = 4096  # clients whose rate budget is remembered at once
Push = str  # one encoded SignalR invocation record, RS included


def hub_name(path: str) -> str | None:
    """The hub an upgrade request's path names (``USER_HUB``, ``MARKET_HUB``); None for no hub."""
    hub = path.rstrip("/").rpartition("/")[2].lower()
    if hub not in (USER_HUB, MARKET_HUB) or not path.lower().startswith("/hubs/"):
        return None
    return hub


@attrs.frozen
class SimConfig:
    """What a simulation is made of; the defaults are documented in the README."""

    seed: int = 7
    rate: float = 20.0
    username: str = DEFAULT_USERNAME
    api_key: str = DEFAULT_API_KEY
    token_lifetime: float = 24 * 3600.0
    budgets: dict[RateBucket, RateBudget] = attrs.field(factory=lambda: dict(DEFAULT_BUDGETS))
    accounts: tuple[SimAccount, ...] = attrs.field(factory=default_accounts)
    max_tokens: int = MAX_TOKENS  # tokens kept at once; the oldest makes room past it
    max_clients: int = MAX_CLIENTS  # rate budgets kept at once; the least recently used go
    calendar: TradingCalendar = attrs.field(factory=TradingCalendar)
    """When the market is open; the default is always (demos and tests run any day)."""
    auto_oco_brackets: bool | None = None
    """A bracket mode for every account, restored ones included; None keeps each account's."""


# hub method (lower case) -> (hub, channel, takes an argument)
_METHODS: Final[dict[str, tuple[str, str, bool]]] = {
    "subscribeaccounts": (USER_HUB, "accounts", False),
    "subscribeorders": (USER_HUB, "orders", True),
    "subscribepositions": (USER_HUB, "positions", True),
    "subscribetrades": (USER_HUB, "trades", True),
    "subscribecontractquotes": (MARKET_HUB, "quotes", True),
    "subscribecontracttrades": (MARKET_HUB, "market_trades", True),
    "subscribecontractmarketdepth": (MARKET_HUB, "depth", True),
}
_USER_CHANNEL: Final = {
    UserEventKind.ACCOUNT: "accounts",
    UserEventKind.ORDER: "orders",
    UserEventKind.POSITION: "positions",
    UserEventKind.TRADE: "trades",
}


class ClientBudgets:
    """One rate limiter per client, at most ``capacity`` of them (the least recently used go).

    A client is its token once logged in, else its address: a request with a made-up bearer
    string draws from the budget of the address it came from.
    """

    def __init__(self, budgets: Mapping[RateBucket, RateBudget], capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self._budgets = dict(budgets)
        self._capacity = capacity
        self._limiters: OrderedDict[tuple[str, str], RateLimiter] = OrderedDict()

    def __len__(self) -> int:
        """How many clients have a budget now."""
        return len(self._limiters)

    def of(self, token: str | None, peer: str) -> RateLimiter:
        """The limiter of a client: its valid ``token``, or its address ``peer`` without one."""
        key = ("token", token) if token else ("peer", peer)
        limiter = self._limiters.get(key)
        if limiter is None:
            limiter = self._limiters[key] = RateLimiter(self._budgets)
            if len(self._limiters) > self._capacity:
                self._limiters.popitem(last=False)
        else:
            self._limiters.move_to_end(key)
        return limiter


@attrs.define
class HubSession:
    """One hub connection's subscriptions and the events waiting to be pushed to it."""

    id: int
    hub: str
    username: str
    subscriptions: set[tuple[str, Any]] = attrs.field(factory=set)
    outbox: list[Push] = attrs.field(factory=list)

    def take(self) -> str:
        """The pushes queued so far as one SignalR payload (drained; empty when none)."""
        pushes, self.outbox = self.outbox, []
        return "".join(pushes)


class Simulation:
    """The simulated gateway: exchange, market, logins, limits and hub sessions."""

    def __init__(
        self, config: SimConfig | None = None, *, now: float, store: StateStore | None = None
    ) -> None:
        self.config = config or SimConfig()
        catalogue = default_catalogue(now_utc(now))
        saved = None if store is None else store.load()
        if saved is None:
            self.exchange = Exchange(
                catalogue, self.config.accounts, now=now, calendar=self.config.calendar
            )
        else:
            self.exchange = Exchange.restore(
                catalogue, saved, now=now, calendar=self.config.calendar
            )
        self._store = store
        self._unsaved = False
        self._retry_at = 0.0
        self._retry_wait = _RETRY_FIRST
        active = [spec for spec in catalogue if spec.contract.active]
        expired = [spec.contract for spec in catalogue if not spec.contract.active]
        expiries = {c.id: moment.timestamp() for c in expired if (moment := expiry_of(c.id))}
        self.market = SyntheticMarket(
            [spec.contract for spec in active],
            seed=self.config.seed,
            base_prices={spec.contract.id: spec.base_price for spec in catalogue},
            rate=self.config.rate,
            expired=expired,
            expiries=expiries,
        )
        self.tokens = TokenBook(
            secret=f"tradeforge-sim-{self.config.seed}".encode(),
            lifetime=self.config.token_lifetime,
            max_tokens=self.config.max_tokens,
        )
        self.budgets = ClientBudgets(self.config.budgets, self.config.max_clients)
        self._sessions: dict[int, HubSession] = {}
        self._next_session = 1
        self.market.advance(now)
        for spec in active:
            self._touch(spec.contract.id, now)
        if saved is not None:
            self._settle_expired(now)
        if self.config.auto_oco_brackets is not None:
            for account in self.exchange.accounts(only_active=False):
                self.exchange.configure_account(
                    account.id, auto_oco_brackets=self.config.auto_oco_brackets, now=now
                )
        self.exchange.review(now)
        self.exchange.drain_events()
        if store is None:
            self.exchange.take_changes()
        elif saved is None:
            self.exchange.take_changes()
            store.save(self.exchange.saved_state())
        else:
            store.write(self.exchange.take_changes())

    def _settle_expired(self, now: float) -> None:
        """Close what a restart finds on contracts that stopped trading meanwhile: positions at
        the settlement price (the market's price at expiry; the entry price for a contract the
        catalogue no longer knows), working orders cancelled."""
        for contract_id in self.exchange.expired_holdings():
            price = self.market.settlement(contract_id)
            self.exchange.settle(contract_id, price, now)

    @property
    def store(self) -> StateStore | None:
        """Where the exchange's state is kept between runs; ``None`` keeps it in memory only."""
        return self._store

    def _persist(self, now: float) -> None:
        """Write what changed. After a failed write the whole state is written instead (the
        failed batch's changes would be lost otherwise), retried at growing intervals; the file
        keeps its last good state meanwhile."""
        changes = self.exchange.take_changes()
        store = self._store
        if store is None or not (changes or self._unsaved):
            return
        if self._unsaved and now < self._retry_at:
            return
        try:
            if self._unsaved:
                store.save(self.exchange.saved_state())
            else:
                store.write(changes)
        except sqlite3.Error:
            if not self._unsaved:
                log.exception("cannot write the state file %s; will write it whole", store.path)
                self._retry_wait = _RETRY_FIRST
            else:
                self._retry_wait = min(self._retry_wait * 2, _RETRY_LONGEST)
            self._unsaved = True
            self._retry_at = now + self._retry_wait
        else:
            if self._unsaved:
                log.warning("state file %s written whole again", store.path)
            self._unsaved = False

    # --- REST ---

    def credentials_match(self, username: str, api_key: str) -> bool:
        """True for the configured username (case-insensitive) and API key."""
        return username.lower() == self.config.username.lower() and api_key == self.config.api_key

    def handle_rest(self, request: HttpRequest, now: float, *, peer: str = "") -> HttpResponse:
        """The gateway's answer to one REST request from the client at address ``peer``."""
        path = request.path.partition("?")[0].lower()
        if path == "/api/status/ping":
            return plain(200, "pong")
        route = ROUTES.get(path)
        if route is None:
            return plain(404)
        if request.method.upper() != "POST":
            return plain(405)
        handler, needs_token, bucket = route
        token = bearer(request.header("authorization"))
        user = self.tokens.check(token, now)
        if needs_token and user is None:
            return plain(401)
        limiter = self.budgets.of(token if user is not None else None, peer)
        wait = limiter.delay(bucket, now)
        if wait > 0:
            return HttpResponse(
                429, (("retry-after", str(max(1, math.ceil(wait)))),), b"Too Many Requests"
            )
        limiter.acquire(bucket, now)
        try:
            body = {} if path in NO_BODY else parse_body(request)
            response = handler(self, body, user or "", now)
        except BadRequest as exc:
            return problem(400, exc.errors, "One or more validation errors occurred.")
        if path == "/api/auth/logout" and token is not None:
            self.tokens.revoke(token)
        self.publish_user_events()
        self._persist(now)
        return response

    # --- hubs ---

    def open_hub(self, path: str, token: str | None, now: float) -> HubSession | int:
        """A session for a hub upgrade request, or the HTTP status refusing it."""
        hub = hub_name(path)
        if hub is None:
            return 404
        user = self.tokens.check(token, now)
        if user is None:
            return 401
        session = HubSession(self._next_session, hub, user)
        self._next_session += 1
        self._sessions[session.id] = session
        return session

    def close_hub(self, session: HubSession) -> None:
        """Forget a session: its subscriptions die with its connection."""
        self._sessions.pop(session.id, None)

    def invoke(
        self, session: HubSession, target: str, arguments: tuple[Any, ...], now: float
    ) -> str | None:
        """Run a client invocation; the error text for its completion, or None on success."""
        name = target.lower()
        verb = "subscribe"
        if name.startswith("unsubscribe"):
            verb, name = "unsubscribe", "subscribe" + name[len("unsubscribe") :]
        method = _METHODS.get(name)
        if method is None or method[0] != session.hub:
            return f"Method does not exist: {target}"
        _, channel, takes_argument = method
        if takes_argument:
            if len(arguments) != 1:
                return f"{target} takes one argument"
            key = arguments[0]
            valid = isinstance(key, str) if session.hub == MARKET_HUB else type(key) is int
            if not valid:
                return f"{target}: invalid argument {key!r}"
            if session.hub == MARKET_HUB and self.exchange.contract(key) is None:
                return f"{target}: unknown contract {key}"
            if session.hub == MARKET_HUB and not self.market.quotes(key):
                return f"{target}: contract {key} is not trading"
        else:
            key = None
        if verb == "unsubscribe":
            session.subscriptions.discard((channel, key))
            return None
        session.subscriptions.add((channel, key))
        if channel == "quotes":
            session.outbox.append(push("GatewayQuote", key, self.market.quote_snapshot(key, now)))
        elif channel == "depth":
            session.outbox.append(push("GatewayDepth", key, self.market.depth_snapshot(key, now)))
        return None

    @property
    def sessions(self) -> Iterator[HubSession]:
        """Every open hub session."""
        return iter(list(self._sessions.values()))

    # --- time ---

    def advance(self, now: float) -> None:
        """Move the market to ``now``, fill what became marketable, queue every push."""
        touched: set[str] = set()
        updates = self.market.advance(now)
        if not self.config.calendar.is_open(now_utc(now)):
            updates = []  # no market data while the market is closed
        for update in updates:
            # Encoded once, shared by every subscribed session.
            if isinstance(update, QuoteChange):
                record = push("GatewayQuote", update.contract_id, update.data)
                channel = "quotes"
                touched.add(update.contract_id)
            elif isinstance(update, TradePrints):
                record = push("GatewayTrade", update.contract_id, update.prints)
                channel = "market_trades"
            else:  # DepthChange
                record = push("GatewayDepth", update.contract_id, update.entries)
                channel = "depth"
                touched.add(update.contract_id)  # the book behind the touch changed
            key = (channel, update.contract_id)
            for session in self._sessions.values():
                if key in session.subscriptions:
                    session.outbox.append(record)
        for contract_id in sorted(touched):
            self._touch(contract_id, now)
        self.exchange.review(now)
        self.publish_user_events()
        self._persist(now)

    def _touch(self, contract_id: str, now: float) -> None:
        touch = self.market.touch(contract_id)
        self.exchange.set_market(
            contract_id,
            bid=touch.bid,
            bid_size=touch.bid_size,
            ask=touch.ask,
            ask_size=touch.ask_size,
            last=touch.last,
            now=now,
            depth=self.market.levels(contract_id),
        )

    def publish_user_events(self) -> None:
        """Queue the exchange's user events for the sessions subscribed to them."""
        for event in self.exchange.drain_events():
            self._publish(event)

    def _publish(self, event: UserEvent) -> None:
        channel = _USER_CHANNEL[event.kind]
        key = (channel, None if event.kind is UserEventKind.ACCOUNT else event.account_id)
        payload = {"action": event.action, "data": to_wire(event.entity, omit_none=True)}
        record = push(event.kind.value, payload)
        for session in self._sessions.values():
            if session.hub == USER_HUB and key in session.subscriptions:
                session.outbox.append(record)


def push(target: str, *arguments: Any) -> Push:
    """A fire-and-forget hub invocation, encoded as one SignalR record."""
    record = {"type": 1, "target": target, "arguments": list(arguments)}
    return dumps(record).decode() + "\x1e"
