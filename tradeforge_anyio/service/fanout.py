"""One upstream ``TradingStream`` shared by every WebSocket client of the service.

Each upstream subscription is held once, for as long as at least one client wants it. A single
dispatcher reads the stream and copies each event into the bounded queue of every client that
wants it; a client whose queue overflows is marked and dropped from routing, so a slow reader
costs a bounded amount of memory and never holds the others back.
"""

from __future__ import annotations

import enum
import itertools
import typing
from collections import deque
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Final

import anyio
import anyio.abc
import attrs

from tradeforge_proto.core import jsoncodec
from tradeforge_proto.core.errors import LocalProtocolError
from tradeforge_proto.core.events import (
    AccountUpdated,
    Connected,
    DepthReceived,
    Disconnected,
    EventDropped,
    FeedGap,
    FeedStale,
    FillReceived,
    MarketTradeReceived,
    OrderUpdated,
    PositionUpdated,
    QuoteUpdated,
    Reconnecting,
    Resubscribed,
    Resynced,
    ResyncFailed,
    SessionLoggedOut,
    StreamEvent,
    StreamStopped,
    Subscribed,
    SubscriptionRefused,
)
from tradeforge_proto.core.models import AccountId
from tradeforge_proto.core.subscriptions import Channel, Subscription
from tradeforge_proto.realtime.machine import StreamConfig
from tradeforge_proto.realtime.queue import EventQueue, QueueOverflow

from ..client import TradingClient
from ..stream import TradingStream

__all__ = [
    "EVENT_TYPES",
    "SLOW_CONSUMER",
    "Fanout",
    "FanoutClient",
    "MessageTexts",
    "event_message",
    "event_payload",
    "to_json",
]

SLOW_CONSUMER: Final = "SLOW_CONSUMER"
ACCOUNTS_TTL: Final = 60.0  # seconds the accounts a login sees are taken as known

EVENT_TYPES: Final[dict[type[Any], str]] = {
    QuoteUpdated: "QUOTE",
    DepthReceived: "DEPTH",
    MarketTradeReceived: "TRADE",
    OrderUpdated: "ORDER_UPDATE",
    PositionUpdated: "POSITION_UPDATE",
    AccountUpdated: "ACCOUNT_UPDATE",
    FillReceived: "USER_TRADE",
    SessionLoggedOut: "SESSION_LOGGED_OUT",
    Connected: "CONNECTED",
    Disconnected: "DISCONNECTED",
    Reconnecting: "RECONNECTING",
    Resubscribed: "RESUBSCRIBED",
    Subscribed: "SUBSCRIBED",
    SubscriptionRefused: "SUBSCRIPTION_FAILED",
    Resynced: "RESYNCED",
    ResyncFailed: "RESYNC_FAILED",
    FeedGap: "FEED_GAP",
    FeedStale: "FEED_STALE",
    EventDropped: "EVENT_DROPPED",
    StreamStopped: "STREAM_STOPPED",
}
"""The ``event_type`` of each stream event's message."""
_PAYLOADS: Final[dict[type[Any], str]] = {
    QuoteUpdated: "quote",
    MarketTradeReceived: "trade",
    OrderUpdated: "order",
    PositionUpdated: "position",
    AccountUpdated: "account",
    FillReceived: "fill",
}
"""Events whose message data is one model they carry (the model's fields, not the event's)."""


def to_json(value: object) -> Any:
    """A JSON-ready copy: decimals as strings, datetimes ISO 8601, enumerations by name."""
    if isinstance(value, enum.Enum):
        return value.name
    if value is None or isinstance(value, bool | int | float | str):
        return value
    cls: Any = type(value)
    if attrs.has(cls):
        return {f.name: to_json(getattr(value, f.name)) for f in attrs.fields(cls)}
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime) and value.tzinfo is not None:
        # The form the REST answers use (pydantic's): UTC, ending in Z.
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_json(v) for v in value]
    return str(value)


def event_payload(cls: type[StreamEvent]) -> type[Any]:
    """The class whose fields make the data of ``cls``'s messages."""
    attribute = _PAYLOADS.get(cls)
    return cls if attribute is None else typing.get_type_hints(cls)[attribute]


def event_message(event: StreamEvent) -> dict[str, Any]:
    """The message a WebSocket client receives for one stream event."""
    cls = type(event)
    attribute = _PAYLOADS.get(cls)
    data = to_json(event if attribute is None else getattr(event, attribute))
    if isinstance(event, PositionUpdated) and event.position.size == 0:
        data["side"] = None  # flat: no direction, as over REST
    return {"event_type": EVENT_TYPES.get(cls, cls.__name__.upper()), "data": data}


def message_text(message: dict[str, Any]) -> str:
    """A message as the JSON text of one WebSocket frame."""
    return jsoncodec.dumps(message).decode()


class MessageTexts:
    """Each event's message text, made once however many clients the event goes to.

    Keyed by identity: the dispatcher hands the same event object to every client that wants it,
    while an event merged in one client's queue is a new object with a text of its own.
    """

    __slots__ = ("_limit", "_texts")

    def __init__(self, limit: int = 4096) -> None:
        self._limit = limit
        self._texts: dict[int, tuple[StreamEvent, str]] = {}

    def __len__(self) -> int:
        return len(self._texts)

    def text(self, event: StreamEvent) -> str:
        """The JSON text of ``event``'s message."""
        texts = self._texts
        key = id(event)
        known = texts.get(key)
        if known is not None and known[0] is event:
            return known[1]
        text = message_text(event_message(event))
        if len(texts) >= self._limit:
            del texts[next(iter(texts))]  # the oldest: every client has long written it
        texts[key] = (event, text)
        return text


def _route(event: StreamEvent) -> Subscription | None:
    """The subscription an event belongs to; None for events every client gets."""
    if isinstance(event, QuoteUpdated):
        return Subscription.quotes(event.quote.contract_id)
    if isinstance(event, MarketTradeReceived):
        return Subscription.trades(event.trade.contract_id)
    if isinstance(event, DepthReceived):
        return Subscription.depth(event.contract_id)
    if isinstance(event, OrderUpdated):
        return Subscription.orders(event.order.account_id)
    if isinstance(event, PositionUpdated):
        return Subscription.positions(event.position.account_id)
    if isinstance(event, FillReceived):
        return Subscription.fills(event.fill.account_id)
    if isinstance(event, AccountUpdated):
        return Subscription.accounts()
    if isinstance(event, Subscribed | SubscriptionRefused):
        return event.subscription
    return None


class FanoutClient:
    """One WebSocket client: what it wants and the events waiting to be written to it."""

    def __init__(self, number: int, max_events: int, texts: MessageTexts | None = None) -> None:
        self.number = number
        self.queue = EventQueue(max_events=max_events)
        self.texts = MessageTexts() if texts is None else texts
        self.replies: deque[dict[str, Any]] = deque()
        self.subscriptions: set[Subscription] = set()
        self.accounts: set[AccountId] = set()
        self.overflowed = False
        self._warned = False  # a SLOW_CONSUMER warning went out and the backlog has not cleared
        self._ready = anyio.Event()

    def __repr__(self) -> str:
        return f"FanoutClient({self.number}, {len(self.subscriptions)} subscriptions)"

    def wants(self, event: StreamEvent, route: Subscription | None) -> bool:
        if route is None:
            return True
        if route not in self.subscriptions:
            return False
        if isinstance(event, AccountUpdated):
            return event.account.id in self.accounts
        return True

    def push(self, event: StreamEvent) -> None:
        """Queue an event; an overflow marks the client as too slow and frees its queue."""
        if self.overflowed:
            return
        try:
            self.queue.put(event)
        except QueueOverflow:
            self._overflow()
        else:
            self._warn_if_behind()
        self._ready.set()

    def _overflow(self) -> None:
        """Too slow: mark the client for closing and free everything waiting for it."""
        self.overflowed = True
        self.queue.clear()
        self.replies.clear()

    def _warn_if_behind(self) -> None:
        """Past half its queue, a client is told once, ahead of the events, that it lags."""
        queued, limit = len(self.queue), self.queue.max_events
        if not self._warned and queued * 2 > limit and limit > 1:
            self._warned = True
            self.replies.append(
                {"event_type": SLOW_CONSUMER, "data": {"queued": queued, "limit": limit}}
            )

    def reply(self, message: dict[str, Any]) -> None:
        """Queue a direct answer (acknowledgement or error), written before stream events."""
        if self.overflowed:
            return
        if len(self.replies) >= self.queue.max_events:
            self._overflow()
        else:
            self.replies.append(message)
        self._ready.set()

    async def next_batch(self) -> list[str]:
        """Wait for something to write: the message texts, oldest first (empty once overflowed)."""
        while True:
            if self.overflowed:
                return []
            if self.replies or len(self.queue):
                batch = [message_text(reply) for reply in self.replies]
                self.replies.clear()
                text = self.texts.text
                events = self.queue.drain()
                if self._warned and len(events) * 4 < self.queue.max_events:
                    self._warned = False  # caught up: warn again if it falls behind again
                batch.extend(text(event) for event in events)
                return batch
            self._ready = anyio.Event()
            await self._ready.wait()

    def summary(self) -> dict[str, Any]:
        """What this client is subscribed to, in the shape of its requests."""
        market: dict[str, set[str]] = {}
        user: dict[str, set[str]] = {}
        names = {
            Channel.QUOTES: "QUOTE",
            Channel.DEPTH: "DEPTH",
            Channel.TRADES: "TRADE",
            Channel.ORDERS: "ORDER_UPDATE",
            Channel.POSITIONS: "POSITION_UPDATE",
            Channel.FILLS: "USER_TRADE",
        }
        for sub in self.subscriptions:
            if sub.channel is Channel.ACCOUNTS:
                continue
            target = market if sub.is_market else user
            target.setdefault(str(sub.key), set()).add(names[sub.channel])
        for account in self.accounts:
            user.setdefault(str(account), set()).add("ACCOUNT_UPDATE")
        return {
            "market_data": {k: sorted(v) for k, v in sorted(market.items())},
            "user_data": {k: sorted(v) for k, v in sorted(user.items())},
        }


class Fanout:
    """The shared upstream stream, its reference-counted subscriptions and the dispatcher.

    ``task_group`` (the app lifespan's) runs the stream and the dispatcher once the first client
    connects; ``aclose`` stops them. ``max_subscriptions`` bounds what one client may hold, so one
    client cannot flood the shared upstream connection with subscriptions. ``stream_config`` tunes
    the upstream stream (keep-alive, timeouts, reconnect backoff).
    """

    def __init__(
        self,
        client: TradingClient,
        task_group: anyio.abc.TaskGroup,
        *,
        client_queue_size: int = 1000,
        max_subscriptions: int = 1000,
        stream_config: StreamConfig | None = None,
    ) -> None:
        self._client = client
        self._stream_config = stream_config
        self._task_group = task_group
        self._client_queue_size = client_queue_size
        self._max_subscriptions = max_subscriptions
        self._numbers = itertools.count(1)
        self._holders: dict[Subscription, set[FanoutClient]] = {}
        self._clients: set[FanoutClient] = set()
        self._lock = anyio.Lock()
        self._texts = MessageTexts()
        self._accounts: tuple[float, frozenset[AccountId]] | None = None  # (when, ids)
        self._closed = False
        self.stream: TradingStream | None = None

    @property
    def clients(self) -> frozenset[FanoutClient]:
        """The connected clients."""
        return frozenset(self._clients)

    def holders(self, subscription: Subscription) -> int:
        """How many clients hold ``subscription``."""
        return len(self._holders.get(subscription, ()))

    async def _run(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        async with self._client.stream(config=self._stream_config) as stream:
            self.stream = stream
            task_status.started()
            try:
                async for event in stream:
                    self._dispatch(event)
            finally:
                self.stream = None

    def _dispatch(self, event: StreamEvent) -> None:
        route = _route(event)
        targets = self._clients if route is None else self._holders.get(route, set())
        for client in list(targets):
            if client.wants(event, route):
                client.push(event)
                if client.overflowed:
                    self._forget(client)

    def _forget(self, client: FanoutClient) -> None:
        """Stop routing to a client; its upstream subscriptions are released by ``leave``."""
        for sub in client.subscriptions:
            holders = self._holders.get(sub)
            if holders is not None:
                holders.discard(client)

    async def known_accounts(self) -> frozenset[AccountId]:
        """The ids of every account the login sees, asked again at most every ACCOUNTS_TTL s."""
        now = anyio.current_time()
        if self._accounts is None or now - self._accounts[0] > ACCOUNTS_TTL:
            found = await self._client.get_accounts(False)
            self._accounts = (now, frozenset(a.id for a in found))
        return self._accounts[1]

    async def _upstream(self) -> TradingStream:
        if self.stream is None:
            if self._closed:
                raise RuntimeError("the stream service is shutting down")
            await self._task_group.start(self._run)
        assert self.stream is not None
        return self.stream

    def join(self) -> FanoutClient:
        """A new client, wanting nothing yet."""
        client = FanoutClient(next(self._numbers), self._client_queue_size, self._texts)
        self._clients.add(client)
        return client

    async def change(
        self,
        client: FanoutClient,
        *,
        add: Iterable[Subscription] = (),
        remove: Iterable[Subscription] = (),
        add_accounts: Iterable[AccountId] = (),
        remove_accounts: Iterable[AccountId] = (),
    ) -> None:
        """Change what a client wants, subscribing / unsubscribing upstream as counts change.

        LocalProtocolError, changing nothing, when the client would hold more than
        ``max_subscriptions`` (each account of ACCOUNT_UPDATE counts as one).
        """
        async with self._lock:
            add, add_accounts = set(add), set(add_accounts)
            held = len(client.subscriptions | add) + len(client.accounts | add_accounts)
            if held > self._max_subscriptions:
                raise LocalProtocolError(
                    f"a client may hold at most {self._max_subscriptions} subscriptions"
                )
            client.accounts.update(add_accounts)
            client.accounts.difference_update(remove_accounts)
            wanted = set(add)
            dropped = set(remove)
            if client.accounts:
                wanted.add(Subscription.accounts())
                dropped.discard(Subscription.accounts())
            else:
                dropped.add(Subscription.accounts())
            for sub in wanted - client.subscriptions:
                client.subscriptions.add(sub)
                holders = self._holders.setdefault(sub, set())
                holders.add(client)
                if len(holders) == 1:
                    await (await self._upstream()).subscribe(sub, wait=False)
            for sub in dropped & client.subscriptions:
                client.subscriptions.discard(sub)
                await self._release(client, sub)

    async def _release(self, client: FanoutClient, sub: Subscription) -> None:
        holders = self._holders.get(sub)
        if holders is None:
            return
        holders.discard(client)
        if not holders:
            del self._holders[sub]
            if self.stream is not None and not self._closed:
                await self.stream.unsubscribe(sub)

    async def leave(self, client: FanoutClient) -> None:
        """A client is gone: everything it held is released (shielded from cancellation)."""
        with anyio.CancelScope(shield=True):
            self._clients.discard(client)
            async with self._lock:
                subs, client.subscriptions = client.subscriptions, set()
                client.accounts.clear()
                for sub in subs:
                    await self._release(client, sub)

    async def aclose(self) -> None:
        """Stop the upstream stream; the dispatcher ends once its last events are routed."""
        self._closed = True
        if self.stream is not None:
            await self.stream.aclose()
