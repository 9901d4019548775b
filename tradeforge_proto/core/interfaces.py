"""The public, provider-agnostic interfaces.

``Provider`` is what the sans-IO core offers: an operation for every generic call. Runtimes
execute operations and implement ``TradingPlatformAPI`` (request/response calls) and
``RealTimeStream`` (live events) on top of any provider, without knowing which one it is.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any, Protocol

from .enums import BarUnit, OrderSide, OrderType
from .events import StreamEvent
from .models import (
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
from .operations import Operation
from .secret import Secret
from .subscriptions import Subscription


class HubSpec(Protocol):
    """What a provider tells the stream machine about one of its hubs."""

    @property
    def name(self) -> str:
        """Short hub name used in events ("user", "market")."""

    @property
    def url(self) -> str:
        """The hub's http(s) or ws(s) URL."""

    @property
    def market_data(self) -> bool:
        """True when silence on this hub means a stale feed (market data)."""

    def handles(self, subscription: Subscription) -> bool:
        """True when this hub serves the subscription."""

    def subscribe_call(self, subscription: Subscription) -> tuple[str, tuple[Any, ...]]:
        """Hub method and arguments that start the subscription."""

    def unsubscribe_call(self, subscription: Subscription) -> tuple[str, tuple[Any, ...]]:
        """Hub method and arguments that end the subscription."""

    def decode(self, target: str, arguments: tuple[Any, ...]) -> list[StreamEvent]:
        """Generic events for a server invocation (RemoteProtocolError when malformed)."""


class Provider(Protocol):
    """Builds the operation for every generic call; holds no connection and does no I/O."""

    @property
    def name(self) -> str:
        """Short provider name, e.g. "topstepx"."""

    @property
    def api_url(self) -> str:
        """Base URL of the REST API (where operations' paths are sent)."""

    @property
    def environment_name(self) -> str:
        """The environment served, e.g. "TOPSTEPX", "DEMO" or "SIM"."""

    @property
    def simulator(self) -> bool:
        """True for a local simulator rather than the provider's own gateway."""

    def login(self) -> Operation[Secret]:
        """Obtain a token with the configured credentials."""

    def refresh(self) -> Operation[Secret] | None:
        """Exchange the current token for a fresh one (None when the provider cannot)."""

    def logout(self) -> Operation[None]:
        """End the session."""

    def get_accounts(self, only_active: bool = True) -> Operation[list[Account]]:
        """The user's accounts."""

    def search_contracts(self, text: str, *, live: bool = False) -> Operation[list[Contract]]:
        """Contracts matching a text."""

    def get_contract(self, contract_id: ContractId) -> Operation[Contract]:
        """One contract by id."""

    def get_available_contracts(self, *, live: bool = False) -> Operation[list[Contract]]:
        """The tradeable catalogue."""

    def retrieve_bars(self, request: BarRequest) -> Operation[list[Bar]]:
        """Historical bars, oldest first."""

    def search_orders(
        self, account_id: AccountId, start: datetime, end: datetime | None = None
    ) -> Operation[list[Order]]:
        """Orders created in a time window."""

    def get_open_orders(self, account_id: AccountId) -> Operation[list[Order]]:
        """Working orders."""

    def get_order(self, account_id: AccountId, order_id: OrderId) -> Operation[Order]:
        """One order by id."""

    def query_orders(self, query: OrderQuery) -> Operation[OrderPage]:
        """A filtered, paged order search."""

    def place_order(self, request: OrderRequest) -> Operation[OrderId]:
        """Place an order (never retried)."""

    def cancel_order(self, account_id: AccountId, order_id: OrderId) -> Operation[None]:
        """Cancel a working order (never retried)."""

    def modify_order(self, change: OrderModification) -> Operation[None]:
        """Change a working order (never retried)."""

    def get_open_positions(self, account_id: AccountId) -> Operation[list[Position]]:
        """Open positions."""

    def close_position(self, account_id: AccountId, contract_id: ContractId) -> Operation[None]:
        """Flatten a position (never retried)."""

    def partial_close_position(
        self, account_id: AccountId, contract_id: ContractId, size: int
    ) -> Operation[None]:
        """Reduce a position (never retried)."""

    def search_trades(
        self, account_id: AccountId, start: datetime, end: datetime | None = None
    ) -> Operation[list[Fill]]:
        """Fills in a time window."""

    def ping(self) -> Operation[str]:
        """Liveness probe."""

    def active_contract(self, contracts: Sequence[Contract], symbol: str) -> Contract | None:
        """The current contract of a product symbol ("MES") among ``contracts``, if any."""

    def hubs(self) -> tuple[HubSpec, ...]:
        """Fresh specs of the provider's realtime hubs (each keeps per-connection decode state)."""


class TradingPlatformAPI(abc.ABC):
    """Request/response trading calls, implemented by the runtimes for any provider."""

    @abc.abstractmethod
    async def get_accounts(self, only_active: bool = True) -> list[Account]:
        """The user's accounts."""

    @abc.abstractmethod
    async def search_contracts(self, text: str, *, live: bool = False) -> list[Contract]:
        """Contracts matching a text."""

    @abc.abstractmethod
    async def get_contract(self, contract_id: ContractId) -> Contract:
        """One contract by id."""

    @abc.abstractmethod
    async def get_available_contracts(self, *, live: bool = False) -> list[Contract]:
        """The tradeable catalogue."""

    @abc.abstractmethod
    async def resolve_contract(self, symbol: str, *, live: bool = False) -> Contract:
        """The current active contract for a product symbol such as "MES" (cached)."""

    @abc.abstractmethod
    async def get_bars(
        self,
        contract_id: ContractId,
        unit: BarUnit,
        unit_number: int,
        *,
        start: datetime,
        end: datetime,
        limit: int | None = None,
        include_partial_bar: bool = False,
        live: bool = False,
    ) -> list[Bar]:
        """Historical bars in [start, end], oldest first, paging past the per-request cap."""

    @abc.abstractmethod
    async def place_order(
        self,
        account_id: AccountId,
        contract_id: ContractId,
        side: OrderSide,
        type: OrderType,
        size: int = 1,
        *,
        limit_price: Any = None,
        stop_price: Any = None,
        trail_price: Any = None,
        custom_tag: str | None = None,
        stop_loss: Bracket | None = None,
        take_profit: Bracket | None = None,
    ) -> OrderId:
        """Place an order; raises OrderUncertain when the outcome cannot be known."""

    @abc.abstractmethod
    async def modify_order(
        self,
        account_id: AccountId,
        order_id: OrderId,
        *,
        size: int | None = None,
        limit_price: Any = None,
        stop_price: Any = None,
        trail_price: Any = None,
    ) -> None:
        """Change a working order: the fields given; the others stay as they are."""

    @abc.abstractmethod
    async def cancel_order(self, account_id: AccountId, order_id: OrderId) -> None:
        """Cancel a working order."""

    @abc.abstractmethod
    async def search_orders(
        self, account_id: AccountId, start: datetime, end: datetime | None = None
    ) -> list[Order]:
        """Orders created in a time window."""

    @abc.abstractmethod
    async def get_open_orders(self, account_id: AccountId) -> list[Order]:
        """Working orders."""

    @abc.abstractmethod
    async def get_order(self, account_id: AccountId, order_id: OrderId) -> Order:
        """One order by id."""

    @abc.abstractmethod
    async def query_orders(self, query: OrderQuery) -> OrderPage:
        """A filtered, paged order search."""

    @abc.abstractmethod
    async def get_open_positions(self, account_id: AccountId) -> list[Position]:
        """Open positions."""

    @abc.abstractmethod
    async def close_position(self, account_id: AccountId, contract_id: ContractId) -> None:
        """Flatten a position."""

    @abc.abstractmethod
    async def partial_close_position(
        self, account_id: AccountId, contract_id: ContractId, size: int
    ) -> None:
        """Reduce a position."""

    @abc.abstractmethod
    async def search_trades(
        self, account_id: AccountId, start: datetime, end: datetime | None = None
    ) -> list[Fill]:
        """Fills in a time window."""


class RealTimeStream(abc.ABC):
    """Live market and user events from one object, reconnecting and resubscribing by itself."""

    @abc.abstractmethod
    async def subscribe_market(
        self,
        contract_id: ContractId,
        *,
        quotes: bool = False,
        trades: bool = False,
        depth: bool = False,
    ) -> None:
        """Start receiving exactly the market data asked for: quotes, trade prints, depth."""

    @abc.abstractmethod
    async def unsubscribe_market(
        self,
        contract_id: ContractId,
        *,
        quotes: bool = True,
        trades: bool = True,
        depth: bool = True,
    ) -> None:
        """Stop receiving market data for a contract."""

    @abc.abstractmethod
    async def subscribe_user(
        self,
        account_id: AccountId,
        *,
        accounts: bool = True,
        orders: bool = True,
        positions: bool = True,
        fills: bool = True,
    ) -> None:
        """Start receiving account, order, position and fill events for an account."""

    @abc.abstractmethod
    async def unsubscribe_user(self, account_id: AccountId) -> None:
        """Stop receiving user events for an account."""

    @abc.abstractmethod
    def __aiter__(self) -> AsyncIterator[object]:
        """Typed events as they arrive."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Disconnect both hubs and stop."""
