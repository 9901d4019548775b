"""The async trading client: every generic operation over HTTP, on asyncio or trio.

All decisions (authentication, token refresh, rate limits, which errors may be retried, when an
outcome is uncertain) are the core's ``RestCore``; this class only sends what it is told to,
sleeps when it is told to, and translates an interruption into the core's verdict.
"""

from __future__ import annotations

import random
import ssl
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

from tradeforge_proto.brackets import Brackets
from tradeforge_proto.calls import Done, Failed, RestCore, RetryPolicy, Send
from tradeforge_proto.config import ProfileSettings
from tradeforge_proto.contractcache import ContractCache, symbol_key
from tradeforge_proto.core import bounds
from tradeforge_proto.core.enums import BarUnit, OrderSide, OrderType
from tradeforge_proto.core.errors import (
    LocalProtocolError,
    NoActiveContract,
    OrderUncertain,
    ProviderError,
    RemoteProtocolError,
    RiskRejected,
    TradeForgeError,
)
from tradeforge_proto.core.interfaces import Provider, TradingPlatformAPI
from tradeforge_proto.core.models import (
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
from tradeforge_proto.core.operations import Operation, RateBucket
from tradeforge_proto.core.secret import Secret
from tradeforge_proto.limits import RateBudget, RateLimiter
from tradeforge_proto.orders import Flattened, new_custom_tag
from tradeforge_proto.paging import MAX_BARS, BarPager
from tradeforge_proto.pnl import realized_pnl, unrealized_pnl
from tradeforge_proto.reconcile import Reconciler, Reconciliation, processing_window
from tradeforge_proto.registry import provider_for, simulator_provider
from tradeforge_proto.rules.guard import RiskGuard
from tradeforge_proto.rules.tradingday import day_start, trading_day
from tradeforge_proto.session import TokenSession

from . import _runtime
from .net import ConnectionPool, Origin, SendProgress, TransportError
from .settings import load_settings

if TYPE_CHECKING:
    from .stream import TradingStream

T = TypeVar("T")
CONTRACT_CACHE_SIZE = 1024
MARK_LOOKBACK = timedelta(days=4)  # a weekend and a holiday: the latest bar is in it


class TradingClient(TradingPlatformAPI):
    """Accounts, contracts, bars, orders, positions and fills of one login, asynchronously.

    ``async with TradingClient.from_env() as client:`` reads TS_* settings (and ``.env``);
    ``TradingClient(provider)`` takes any provider directly (``TopStepX(...)``, say). Safe to
    share between tasks.
    """

    def __init__(
        self,
        provider: Provider,
        *,
        max_connections: int = 4,
        connect_timeout: float = 10.0,
        read_timeout: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
        retry: RetryPolicy | None = None,
        budgets: Mapping[RateBucket, RateBudget] | None = None,
        token_refresh_margin: float = 3600.0,
        rng: random.Random | None = None,
        reconcile_window: float | None = None,
        guard: RiskGuard | None = None,
    ) -> None:
        self.provider = provider
        self._rng = rng or random.Random()
        limiter = RateLimiter(budgets) if budgets is not None else RateLimiter()
        self._core = RestCore(
            provider,
            session=TokenSession(refresh_margin=token_refresh_margin),
            limiter=limiter,
            policy=retry or RetryPolicy(),
            rng=self._rng,
        )
        self._pool = ConnectionPool(
            Origin.from_url(provider.api_url),
            max_connections=max_connections,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            ssl_context=ssl_context,
        )
        self._symbols = ContractCache()
        # The core is not thread-safe: every step of it runs under this lock, I/O outside it.
        self._lock = _runtime.core_lock()
        self._guard = guard
        self._contracts_by_id: dict[ContractId, Contract] = {}
        self._reconcile_window = (
            processing_window(connect_timeout, read_timeout)
            if reconcile_window is None
            else reconcile_window
        )

    # --- construction ---

    @classmethod
    def from_settings(cls, profile: ProfileSettings, **options: Any) -> Self:
        """A client for a settings profile (its environment, credentials and opt-ins)."""
        provider = provider_for(profile)
        options.setdefault("budgets", profile.budgets)
        options.setdefault("token_refresh_margin", profile.token_refresh_margin)
        return cls(provider, **options)

    @classmethod
    def from_env(
        cls, env_file: str | Path | None = ".env", *, profile: str | None = None, **options: Any
    ) -> Self:
        """A client configured from the environment and ``env_file`` (TS_USERNAME, ...)."""
        return cls.from_settings(load_settings(env_file).profile(profile), **options)

    @classmethod
    def for_simulator(cls, api_url: str, username: str, api_key: str, **options: Any) -> Self:
        """A client for the embedded simulator's URL and credentials."""
        return cls(simulator_provider(api_url, username, api_key), **options)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every connection."""
        await self._pool.aclose()

    @property
    def token(self) -> Secret | None:
        """The current bearer token, if logged in (streams reuse it)."""
        return self._core.session.token

    async def fresh_token(self, *, force: bool = False) -> Secret:
        """A valid token for the hubs; ``force`` logs in again (the last one was refused)."""
        with self._lock:
            current = self._core.token_for_hubs(time.time(), force=force)
        if current is not None:
            return current
        token = await self.execute(self.provider.login())
        with self._lock:
            self._core.token_obtained(token, time.time())
        return token

    @property
    def token_expires_at(self) -> float | None:
        """When the current token expires (UNIX seconds)."""
        return self._core.session.expires_at

    @property
    def guard(self) -> RiskGuard | None:
        """The risk guard ``place_order`` consults for its account, if one was given."""
        return self._guard

    def stream(self, **options: Any) -> TradingStream:
        """A realtime stream on both hubs sharing this client's login (``async with`` it)."""
        from .stream import TradingStream

        return TradingStream(self, **options)

    # --- the one way requests go out ---

    async def execute(self, operation: Operation[T]) -> T:
        """Run one operation through the core: auth, limits, retries, then the answer."""
        lock = self._lock
        with lock:
            call = self._core.start(operation, time.time())
        while True:
            with lock:
                step = call.next_step(time.time())
            if isinstance(step, Done):
                return step.value
            if isinstance(step, Failed):
                raise step.error
            if not isinstance(step, Send):
                await _runtime.sleep(max(0.0, step.until - time.time()))
                continue
            progress = SendProgress()
            try:
                response = await self._pool.send(step.request, progress=progress)
            except TransportError as exc:
                with lock:
                    call.transport_failed(exc, request_sent=exc.request_sent, now=time.time())
            except RemoteProtocolError as exc:
                with lock:
                    call.transport_failed(exc, request_sent=True, now=time.time())
            except _runtime.interrupted() as exc:
                with lock:
                    verdict = call.abandon(exc, request_sent=progress.request_sent, now=time.time())
                if isinstance(verdict, OrderUncertain):
                    raise verdict from exc
                raise
            else:
                with lock:
                    call.response_received(response, time.time())

    # --- accounts and contracts ---

    async def get_accounts(self, only_active: bool = True) -> list[Account]:
        """The user's accounts."""
        return await self.execute(self.provider.get_accounts(only_active))

    async def search_contracts(self, text: str, *, live: bool = False) -> list[Contract]:
        """Contracts matching a text."""
        return await self.execute(self.provider.search_contracts(text, live=live))

    async def get_contract(self, contract_id: ContractId) -> Contract:
        """One contract by id."""
        return await self.execute(self.provider.get_contract(contract_id))

    async def get_available_contracts(self, *, live: bool = False) -> list[Contract]:
        """The tradeable catalogue."""
        return await self.execute(self.provider.get_available_contracts(live=live))

    async def resolve_contract(self, symbol: str, *, live: bool = False) -> Contract:
        """The current active contract for "MES", "ES", "NQ"..., cached for an hour."""
        key = symbol_key(symbol)
        cached = self._symbols.get(key, live, time.time())
        if cached is not None:
            return cached
        contract = self.provider.active_contract(await self.get_available_contracts(live=live), key)
        if contract is None:
            raise NoActiveContract(key)
        self._symbols.put(key, live, contract, time.time())
        return contract

    # --- history ---

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
        max_bars: int = MAX_BARS,
    ) -> list[Bar]:
        """Bars in [start, end], oldest first, paging past the 20,000 bars of one answer.

        Without ``limit`` a window of more than ``max_bars`` bars raises BarsCapExceeded.
        """
        request = BarRequest(
            contract_id=contract_id,
            unit=unit,
            unit_number=unit_number,
            start=start,
            end=end,
            live=live,
            include_partial_bar=include_partial_bar,
        )
        pager = BarPager(request, limit=limit, max_bars=max_bars)
        while (page := pager.next_request()) is not None:
            pager.add(await self.execute(self.provider.retrieve_bars(page)))
        return pager.bars

    # --- orders ---

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
        """Place an order; it always carries a customTag so an uncertain outcome can be found.

        With a guard for ``account_id``, the guard is refreshed first and an order it refuses
        raises RiskRejected without being sent; orders for other accounts are not checked.
        """
        request = OrderRequest(
            account_id=account_id,
            contract_id=contract_id,
            side=side,
            type=type,
            size=size,
            limit_price=limit_price,
            stop_price=stop_price,
            trail_price=trail_price,
            custom_tag=custom_tag or new_custom_tag(self._rng, time.time()),
            stop_loss=stop_loss,
            take_profit=take_profit,
        )
        guard = self._guard
        if guard is not None and account_id == guard.account_id:
            now = datetime.fromtimestamp(time.time(), UTC)
            await self.refresh_guard(now, contract_ids=(contract_id,))
            verdict = guard.check(request, now)
            if not verdict.allowed:
                raise RiskRejected(verdict)
        return await self.execute(self.provider.place_order(request))

    async def place_market(
        self,
        account_id: AccountId,
        contract_id: ContractId,
        side: OrderSide,
        size: int = 1,
        *,
        custom_tag: str | None = None,
        brackets: Brackets | None = None,
    ) -> OrderId:
        """A market order; ``brackets`` (distances from the fill) are signed for ``side`` here."""
        return await self._place_bracketed(
            account_id,
            contract_id,
            side,
            type=OrderType.MARKET,
            size=size,
            custom_tag=custom_tag,
            brackets=brackets,
        )

    async def place_limit(
        self,
        account_id: AccountId,
        contract_id: ContractId,
        side: OrderSide,
        size: int,
        limit_price: Any,
        *,
        custom_tag: str | None = None,
        brackets: Brackets | None = None,
    ) -> OrderId:
        """A limit order at ``limit_price``."""
        return await self._place_bracketed(
            account_id,
            contract_id,
            side,
            type=OrderType.LIMIT,
            size=size,
            custom_tag=custom_tag,
            brackets=brackets,
            limit_price=limit_price,
        )

    async def place_stop(
        self,
        account_id: AccountId,
        contract_id: ContractId,
        side: OrderSide,
        size: int,
        stop_price: Any,
        *,
        custom_tag: str | None = None,
        brackets: Brackets | None = None,
    ) -> OrderId:
        """A stop (market) order triggered at ``stop_price``."""
        return await self._place_bracketed(
            account_id,
            contract_id,
            side,
            type=OrderType.STOP,
            size=size,
            custom_tag=custom_tag,
            brackets=brackets,
            stop_price=stop_price,
        )

    async def place_trailing_stop(
        self,
        account_id: AccountId,
        contract_id: ContractId,
        side: OrderSide,
        size: int,
        trail_price: Any,
        *,
        custom_tag: str | None = None,
    ) -> OrderId:
        """A trailing stop; ``trail_price`` is the price level it starts at (the gateway trails
        by its distance from the last trade)."""
        return await self._place_bracketed(
            account_id,
            contract_id,
            side,
            type=OrderType.TRAILING_STOP,
            size=size,
            custom_tag=custom_tag,
            brackets=None,
            trail_price=trail_price,
        )

    async def place_join_bid(
        self,
        account_id: AccountId,
        contract_id: ContractId,
        size: int = 1,
        *,
        custom_tag: str | None = None,
        brackets: Brackets | None = None,
    ) -> OrderId:
        """A buy that joins the best bid."""
        return await self._place_bracketed(
            account_id,
            contract_id,
            OrderSide.BUY,
            type=OrderType.JOIN_BID,
            size=size,
            custom_tag=custom_tag,
            brackets=brackets,
        )

    async def place_join_ask(
        self,
        account_id: AccountId,
        contract_id: ContractId,
        size: int = 1,
        *,
        custom_tag: str | None = None,
        brackets: Brackets | None = None,
    ) -> OrderId:
        """A sell that joins the best ask."""
        return await self._place_bracketed(
            account_id,
            contract_id,
            OrderSide.SELL,
            type=OrderType.JOIN_ASK,
            size=size,
            custom_tag=custom_tag,
            brackets=brackets,
        )

    async def _place_bracketed(
        self,
        account_id: AccountId,
        contract_id: ContractId,
        side: OrderSide,
        *,
        type: OrderType,
        size: int,
        custom_tag: str | None,
        brackets: Brackets | None,
        **prices: Any,
    ) -> OrderId:
        stop_loss = take_profit = None
        if brackets is not None:
            contract = await self._contract(contract_id)
            stop_loss, take_profit = brackets.for_entry(side, contract.tick_size)
        return await self.place_order(
            account_id,
            contract_id,
            side,
            type,
            size,
            custom_tag=custom_tag,
            stop_loss=stop_loss,
            take_profit=take_profit,
            **prices,
        )

    async def _contract(self, contract_id: ContractId) -> Contract:
        """A contract by id, looked up once (at most ``CONTRACT_CACHE_SIZE`` are kept)."""
        known = self._contracts_by_id.get(contract_id)
        if known is None:
            known = await self.get_contract(contract_id)
            if len(self._contracts_by_id) >= CONTRACT_CACHE_SIZE:
                self._contracts_by_id.clear()
            self._contracts_by_id[contract_id] = known
        return known

    async def flatten(
        self, account_id: AccountId, contract_id: ContractId | None = None
    ) -> Flattened:
        """Cancel the working orders and close the positions of an account, or of one contract.

        Each change is sent once, never retried; one that fails (the order filled meanwhile,
        say) is reported in ``failed`` and the others still go. An interruption (cancellation,
        Ctrl-C) stops it there: the change it cut short raises (OrderUncertain once sent), and
        nothing after it is sent.
        """
        cancelled: list[OrderId] = []
        closed: list[ContractId] = []
        failed: list[tuple[str, TradeForgeError]] = []
        for order in await self.get_open_orders(account_id):
            if contract_id is None or order.contract_id == contract_id:
                try:
                    await self.cancel_order(account_id, order.id)
                except TradeForgeError as error:
                    if isinstance(error.__cause__, _runtime.interrupted()):
                        raise
                    failed.append((f"cancel order {order.id}", error))
                else:
                    cancelled.append(order.id)
        for position in await self.get_open_positions(account_id):
            if contract_id is None or position.contract_id == contract_id:
                try:
                    await self.close_position(account_id, position.contract_id)
                except TradeForgeError as error:
                    if isinstance(error.__cause__, _runtime.interrupted()):
                        raise
                    failed.append((f"close {position.contract_id}", error))
                else:
                    closed.append(position.contract_id)
        return Flattened(tuple(cancelled), tuple(closed), tuple(failed))

    async def unrealized_pnl(self, position: Position, price: Any) -> Decimal:
        """Dollars a position makes or loses if it closed at ``price`` (a quote's last, say)."""
        contract = await self._contract(position.contract_id)
        return unrealized_pnl(position, bounds.price(price), contract)

    async def day_pnl(self, account_id: AccountId) -> Decimal:
        """The account's realized P&L of the current trading day, fees and commissions off."""
        now = datetime.fromtimestamp(time.time(), UTC)
        return realized_pnl(await self.search_trades(account_id, day_start(trading_day(now))))

    async def refresh_guard(
        self,
        now: datetime | None = None,
        *,
        contract_ids: Iterable[ContractId] = (),
        guard: RiskGuard | None = None,
    ) -> RiskGuard:
        """Rebuild the guard from reads: its account, positions, working orders, the day's fills.

        ``guard`` is this client's own unless another is given (one per account, say). The
        contracts of held positions and of ``contract_ids`` are looked up once each. A held
        contract the guard has no quote for is marked at its latest one-minute bar's close; feed
        the guard quotes (``guard.observe``) for live marks.
        """
        guard = self._guard if guard is None else guard
        if guard is None:
            raise LocalProtocolError("this client has no risk guard")
        if now is None:
            now = datetime.fromtimestamp(time.time(), UTC)
        account_id = guard.account_id
        accounts = await self.get_accounts(only_active=False)
        account = next((a for a in accounts if a.id == account_id), None)
        if account is None:
            raise ProviderError(
                f"account {account_id} is not among the user's accounts",
                endpoint="the account list",
                status=200,
            )
        positions = await self.get_open_positions(account_id)
        working = await self.get_open_orders(account_id)
        trades = await self.search_trades(account_id, day_start(trading_day(now)))
        wanted = {*contract_ids, *(p.contract_id for p in positions)}
        contracts = {wanted_id: await self._contract(wanted_id) for wanted_id in sorted(wanted)}
        guard.sync(account, positions, trades, contracts, now, working=working)
        for unpriced in guard.unpriced:  # no quote seen yet: the latest bar's close marks it
            bars = await self.get_bars(
                unpriced,
                BarUnit.MINUTE,
                1,
                start=now - MARK_LOOKBACK,
                end=now,
                limit=1,
                include_partial_bar=True,
            )
            if bars:
                guard.set_mark(unpriced, bars[-1].close)
        return guard

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
        change = OrderModification(
            account_id,
            order_id,
            size=size,
            limit_price=limit_price,
            stop_price=stop_price,
            trail_price=trail_price,
        )
        await self.execute(self.provider.modify_order(change))

    async def cancel_order(self, account_id: AccountId, order_id: OrderId) -> None:
        """Cancel a working order."""
        await self.execute(self.provider.cancel_order(account_id, order_id))

    async def search_orders(
        self, account_id: AccountId, start: datetime, end: datetime | None = None
    ) -> list[Order]:
        """Orders created in a time window."""
        return await self.execute(self.provider.search_orders(account_id, start, end))

    async def get_open_orders(self, account_id: AccountId) -> list[Order]:
        """Working orders."""
        return await self.execute(self.provider.get_open_orders(account_id))

    async def get_order(self, account_id: AccountId, order_id: OrderId) -> Order:
        """One order by id."""
        return await self.execute(self.provider.get_order(account_id, order_id))

    async def query_orders(self, query: OrderQuery) -> OrderPage:
        """A filtered, paged order search."""
        return await self.execute(self.provider.query_orders(query))

    async def reconcile(
        self, uncertain: OrderUncertain, *, wait: bool = True, window: float | None = None
    ) -> Reconciliation:
        """What an uncertain change did: APPLIED (with the order), NOT_APPLIED or UNKNOWN.

        NOT_APPLIED is only said once the request can no longer land (its send time plus
        ``window``, by default the client's connect and read timeouts); with ``wait`` it looks
        until then, without it an order not seen yet is UNKNOWN at once.
        """
        reconciler = Reconciler(
            self.provider,
            uncertain,
            window=self._reconcile_window if window is None else window,
            now=time.time(),
            wait=wait,
        )
        while (verdict := reconciler.verdict) is None:
            await _runtime.sleep(max(0.0, reconciler.next_lookup - time.time()))
            operation = reconciler.lookup(time.time())
            try:
                value = await self.execute(operation)
            except TradeForgeError as exc:
                reconciler.failed(exc, time.time())
            else:
                reconciler.observed(value, time.time())
        return verdict

    # --- positions and fills ---

    async def get_open_positions(self, account_id: AccountId) -> list[Position]:
        """Open positions."""
        return await self.execute(self.provider.get_open_positions(account_id))

    async def close_position(self, account_id: AccountId, contract_id: ContractId) -> None:
        """Flatten a position at market."""
        await self.execute(self.provider.close_position(account_id, contract_id))

    async def partial_close_position(
        self, account_id: AccountId, contract_id: ContractId, size: int
    ) -> None:
        """Reduce a position at market."""
        await self.execute(self.provider.partial_close_position(account_id, contract_id, size))

    async def search_trades(
        self, account_id: AccountId, start: datetime, end: datetime | None = None
    ) -> list[Fill]:
        """Fills in a time window."""
        return await self.execute(self.provider.search_trades(account_id, start, end))
