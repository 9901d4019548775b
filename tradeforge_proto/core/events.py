"""Events a realtime stream delivers: data events and lifecycle events, provider-agnostic."""

from __future__ import annotations

import attrs

from .errors import TradeForgeError
from .models import Account, ContractId, DepthUpdate, Fill, MarketTrade, Order, Position, Quote
from .subscriptions import Subscription

# --- data ---------------------------------------------------------------------------------


@attrs.frozen
class AccountUpdated:
    """An account's balance or status changed (the whole current account)."""

    account: Account
    recovered: bool = False  # rebuilt through REST after a gap, not seen live


@attrs.frozen
class OrderUpdated:
    """An order was created or changed (the whole current order)."""

    order: Order
    recovered: bool = False  # rebuilt through REST after a gap, not seen live


@attrs.frozen
class PositionUpdated:
    """A position changed; size 0 means the position is now flat."""

    position: Position
    recovered: bool = False  # rebuilt through REST after a gap, not seen live

    @property
    def is_flat(self) -> bool:
        """True when the position was closed."""
        return self.position.size == 0


@attrs.frozen
class FillReceived:
    """An execution on one of our accounts."""

    fill: Fill
    recovered: bool = False  # rebuilt through REST after a gap, not seen live


@attrs.frozen
class QuoteUpdated:
    """The contract's quote after merging the latest partial update into the last known one."""

    quote: Quote


@attrs.frozen
class MarketTradeReceived:
    """A trade print on the market."""

    trade: MarketTrade


@attrs.frozen
class DepthReceived:
    """Market-depth entries of one message, to be applied to a book in order."""

    contract_id: ContractId
    updates: tuple[DepthUpdate, ...]


@attrs.frozen
class SessionLoggedOut:
    """The provider ended the login session behind the stream."""

    hub: str


# --- lifecycle ----------------------------------------------------------------------------


@attrs.frozen
class Connected:
    """A hub connection completed its handshake; ``attempt`` is 0 for the first connection."""

    hub: str
    attempt: int


@attrs.frozen
class Disconnected:
    """A hub connection ended; ``will_reconnect`` says whether the stream carries on."""

    hub: str
    reason: str
    will_reconnect: bool


@attrs.frozen
class Reconnecting:
    """The next connection attempt starts in ``delay`` seconds."""

    hub: str
    attempt: int
    delay: float


@attrs.frozen
class Subscribed:
    """The provider acknowledged a subscription on the current connection."""

    hub: str
    subscription: Subscription


@attrs.frozen
class Resubscribed:
    """After a reconnect, every desired subscription was acknowledged again."""

    hub: str
    subscriptions: tuple[Subscription, ...]


@attrs.frozen
class SubscriptionRefused:
    """The provider refused a subscription; it is no longer desired."""

    hub: str
    subscription: Subscription
    error: str


@attrs.frozen
class Resynced:
    """What a user-hub gap missed was fetched and delivered (the ``recovered`` events before it).

    Counts are of the events delivered as recovered; ``since`` is the UNIX time looked back to.
    """

    hub: str
    orders: int
    fills: int
    positions: int
    accounts: int
    since: float


@attrs.frozen
class ResyncFailed:
    """The reads that recover a user-hub gap failed; they are tried again in ``retry_in`` s."""

    hub: str
    error: str
    retry_in: float


@attrs.frozen
class FeedGap:
    """Market data of these contracts was not received from ``lost_at`` to ``resumed_at``.

    Market data is live by nature and not recovered: books are rebuilt from the new snapshot.
    """

    hub: str
    contract_ids: tuple[ContractId, ...]
    lost_at: float
    resumed_at: float


@attrs.frozen
class FeedStale:
    """Market data stopped arriving while subscribed; the connection is being replaced."""

    hub: str
    silent_for: float
    contract_ids: tuple[ContractId, ...]


@attrs.frozen
class EventDropped:
    """A provider event could not be decoded; it is reported instead of crashing the stream."""

    hub: str
    target: str
    error: str


@attrs.frozen
class StreamStopped:
    """The stream stopped for good: asked to, or after repeated refusals (``error``)."""

    hub: str
    error: TradeForgeError | None


DataEvent = (
    AccountUpdated
    | OrderUpdated
    | PositionUpdated
    | FillReceived
    | QuoteUpdated
    | MarketTradeReceived
    | DepthReceived
    | SessionLoggedOut
)
LifecycleEvent = (
    Connected
    | Disconnected
    | Reconnecting
    | Subscribed
    | Resubscribed
    | SubscriptionRefused
    | Resynced
    | ResyncFailed
    | FeedGap
    | FeedStale
    | EventDropped
    | StreamStopped
)
StreamEvent = DataEvent | LifecycleEvent
