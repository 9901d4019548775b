"""The REST web service over one ``TradingClient``: ``create_app(factory, token=...)``.

Every route needs ``Authorization: Bearer <token>``, checked before any body is read. Bodies are
JSON (``application/json``) of at most ``max_body`` bytes; requests must name an allowed host.
Prices are decimal strings in responses and a decimal string or number in requests; enumerations
are member names ("BUY", "LIMIT").

The WebSocket ``/ws/stream`` carries realtime events; every message it sends and accepts is
described by the JSON Schema at ``/ws/stream/schema.json``.
"""

import random
import secrets
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Final

import anyio
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AwareDatetime
from starlette.convertors import Convertor, register_url_convertor
from starlette.middleware.body_limit import RequestBodyLimitMiddleware

from tradeforge_proto.core import bounds
from tradeforge_proto.core.enums import BarUnit, OrderSide, OrderStatus, OrderType
from tradeforge_proto.core.errors import (
    AuthenticationError,
    NoActiveContract,
    ProviderError,
    TradeForgeError,
)
from tradeforge_proto.core.models import Bracket
from tradeforge_proto.orders import new_custom_tag
from tradeforge_proto.paging import MAX_BARS
from tradeforge_proto.pnl import realized_pnl
from tradeforge_proto.realtime.machine import StreamConfig, StreamState
from tradeforge_proto.rules import AccountRules, RiskGuard
from tradeforge_proto.rules.tradingday import day_start, trading_day

from ..client import TradingClient
from ..readback import read_back
from .audit import AuditTrail
from .conformance import QueryNames, method_not_allowed
from .console import install_console
from .dashboard import install_dashboard
from .edge import UNAUTHORIZED, AllowedHosts, BodyGate, CancelOnDisconnect, RequireToken
from .errors import (
    BAD_BODY_RESPONSE,
    BODY_LIMIT_RESPONSES,
    ERROR_RESPONSES,
    UNCERTAIN_RESPONSE,
    handle_library_error,
    handle_validation_error,
)
from .fanout import Fanout
from .journal import MAX_READ, Journal
from .schemas import (
    CONTRACT_ID_TEXT,
    ISO_TIME,
    MAX_UNIT_NUMBER,
    PRINTABLE_TEXT,
    AccountList,
    AccountOut,
    BarList,
    BarOut,
    BracketIn,
    ClosePositionIn,
    ContractList,
    ContractOut,
    DayPnl,
    Health,
    JournalList,
    JournalOut,
    LoginState,
    ModifyOrderIn,
    OrderList,
    OrderOut,
    OrderPlaced,
    PartialCloseIn,
    PlaceOrderIn,
    PositionList,
    PositionOut,
    Readiness,
    RequestableUnit,
    RiskOut,
    StreamHealth,
    TradeList,
    TradeOut,
    checked,
    whole_text,
)
from .ws import stream_router
from .wsschema import install_stream_schema

ClientFactory = Callable[[], AbstractAsyncContextManager[TradingClient]]
RulesOf = Callable[[int], tuple[AccountRules, Decimal | None] | None]
"""The firm's rules an account is held to and its highest end-of-day balance so far (None: its
balance at the day's open), or None for an account without rules."""


def _no_rules(account_id: int) -> None:
    return None


LOCAL_HOSTS: Final = ("127.0.0.1", "localhost", "[::1]")
"""Host names a request may carry by default: the loopback ones."""
MAX_BODY: Final = 64 * 1024
"""Bytes of a request body by default."""
BAR_CALLS: Final = 2
"""Bar requests served at once; others wait their turn, so memory stays at two answers."""
READY_TIMEOUT: Final = 10.0
"""How long ``/ready`` waits for the backend's login before it says ``unreachable``."""


class _IdConvertor(Convertor[int]):
    """A path id of 1 to 16 digits; anything else matches no route (404)."""

    regex = "[0-9]{1,16}"

    def convert(self, value: str) -> int:
        return int(value)

    def to_string(self, value: int) -> str:
        return str(value)


register_url_convertor("tradeforge_id", _IdConvertor())

AccountQuery = Annotated[
    int, Query(ge=1, le=bounds.MAX_ID, description="Account id"), whole_text("account_id")
]
OrderIdPath = Annotated[int, Path(ge=1, le=bounds.MAX_ID, description="Order id")]
_CONTRACT_ID_RULES: Final[dict[str, Any]] = {
    "min_length": 1,
    "max_length": bounds.MAX_CONTRACT_ID,
    "json_schema_extra": {"pattern": CONTRACT_ID_TEXT},
}
ContractIdQuery = Annotated[
    str, Query(**_CONTRACT_ID_RULES), checked(bounds.contract_id, "contract_id")
]
ContractIdPath = Annotated[
    str, Path(**_CONTRACT_ID_RULES), checked(bounds.contract_id, "contract_id")
]
SearchText = Annotated[
    str,
    Query(min_length=1, max_length=bounds.MAX_TEXT, json_schema_extra={"pattern": PRINTABLE_TEXT}),
    checked(bounds.text, "search"),
]
SymbolPath = Annotated[
    str,
    Path(min_length=1, max_length=bounds.MAX_TEXT, json_schema_extra={"pattern": PRINTABLE_TEXT}),
    checked(bounds.text, "symbol"),
]
UnitNumber = Annotated[
    int, Query(ge=1, le=MAX_UNIT_NUMBER), whole_text("unit_number", MAX_UNIT_NUMBER)
]
Start = Annotated[
    AwareDatetime, Query(description="Window start (timezone-aware ISO 8601)"), ISO_TIME
]
End = Annotated[AwareDatetime | None, Query(description="Window end; omitted: now"), ISO_TIME]


class _Runtime:
    """The client the lifespan opened, shared by every request."""

    def __init__(self) -> None:
        self.client: TradingClient | None = None
        self.fanout: Fanout | None = None

    def current(self) -> TradingClient:
        if self.client is None:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "service is not running")
        return self.client


def _stream_health(fanout: Fanout | None) -> StreamHealth:
    stream = None if fanout is None else fanout.stream
    idle = StreamState.IDLE
    return StreamHealth(
        running=stream is not None,
        user_hub=idle if stream is None else stream.state("user"),
        market_hub=idle if stream is None else stream.state("market"),
        clients=0 if fanout is None else len(fanout.clients),
        subscriptions=0 if stream is None else len(stream.subscriptions),
    )


async def _login_state(client: TradingClient) -> tuple[LoginState, str | None]:
    """The backend login as it stands: a valid token (fetched if needed, within READY_TIMEOUT)."""
    try:
        with anyio.fail_after(READY_TIMEOUT):
            await client.fresh_token()
    except AuthenticationError as exc:
        return "refused", str(exc)
    except (TradeForgeError, OSError, TimeoutError) as exc:
        return "unreachable", str(exc) or type(exc).__name__
    return "ok", None


def _health_route() -> APIRouter:
    """``GET /health``: public, for liveness probes; it touches nothing behind the service."""
    router = APIRouter()

    @router.get("/health", tags=["service"])
    async def health() -> Health:
        """The process answers (no token needed); ``/ready`` tells whether it can trade."""
        return Health()

    return router


_FINISHED: Final = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.EXPIRED, OrderStatus.REJECTED}
)


@asynccontextmanager
async def _working(
    client: TradingClient, account_id: int, order_id: int, verb: str
) -> AsyncIterator[None]:
    """A change to an order the provider no longer finds: when the order exists but is finished,
    a 409 that says so (the gateway answers "not found", without a message)."""
    try:
        yield
    except ProviderError as exc:
        if not (exc.code_name or "").endswith("NotFound"):
            raise
        try:
            order = await client.get_order(account_id, order_id)
        except TradeForgeError:
            raise exc from None  # not found indeed: the provider's own answer
        if order.status not in _FINISHED:
            raise
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"order {order_id} is already {order.status.name}: nothing to {verb}",
        ) from None


def _journal_route(journal: Journal | None) -> APIRouter:
    """``GET /journal``: the state-changing requests this service answered, newest first."""
    router = APIRouter(responses=ERROR_RESPONSES)

    @router.get("/journal", tags=["service"])
    async def journal_entries(
        limit: Annotated[int, Query(ge=1, le=MAX_READ)] = 100,
        account_id: Annotated[int | None, Query(ge=0, le=bounds.MAX_ID)] = None,
        since: Annotated[
            AwareDatetime | None, Query(description="Only entries from then on"), ISO_TIME
        ] = None,
    ) -> JournalList:
        """Placements, changes, cancels and closes with their outcome (token never kept)."""
        if journal is None:
            return JournalList(entries=[], kept=False)
        found = journal.entries(limit=limit, account_id=account_id, since=since)
        return JournalList(entries=[JournalOut(**e.to_json()) for e in found], kept=True)

    return router


def _bracket(leg: BracketIn | None) -> Bracket | None:
    return None if leg is None else Bracket(ticks=leg.ticks, type=OrderType[leg.type])


def _bearer_check(token: str) -> Callable[[HTTPAuthorizationCredentials | None], None]:
    expected = token.encode()
    scheme = HTTPBearer(auto_error=False, description="The service token")

    def check(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(scheme)],
    ) -> None:
        given = credentials.credentials.encode() if credentials is not None else b""
        if credentials is None or not secrets.compare_digest(given, expected):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED, UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"}
            )

    return check


class _Gate:
    """A semaphore made on first use, inside the running event loop."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._semaphore: anyio.Semaphore | None = None

    def get(self) -> anyio.Semaphore:
        if self._semaphore is None:
            self._semaphore = anyio.Semaphore(self._size)
        return self._semaphore


def _account_routes(runtime: _Runtime, rules_of: RulesOf) -> APIRouter:
    router = APIRouter(responses=ERROR_RESPONSES)
    Client = Annotated[TradingClient, Depends(runtime.current)]

    @router.get("/accounts", tags=["accounts"])
    async def get_accounts(client: Client, only_active: bool = True) -> AccountList:
        """The user's accounts."""
        found = await client.get_accounts(only_active)
        return AccountList(accounts=[AccountOut.model_validate(a) for a in found])

    @router.get("/pnl", tags=["accounts"])
    async def day_pnl(client: Client, account_id: AccountQuery) -> DayPnl:
        """The account's realized P&L of the current trading day (from 17:00 Chicago time the
        evening before), fees and commissions off, over its fills of that day."""
        now = datetime.now(UTC)
        day = trading_day(now)
        start = day_start(day)
        fills = await client.search_trades(account_id, start)
        return DayPnl(
            account_id=account_id,
            trading_day=day,
            start=start.astimezone(UTC),  # times end in Z everywhere
            realized_pnl=realized_pnl(fills),
            fills=len(fills),
        )

    @router.get("/risk", tags=["accounts"])
    async def account_risk(client: Client, account_id: AccountQuery) -> RiskOut:
        """The account against the firm's rules it is held to: what is left of the daily loss
        limit, of the trailing maximum loss and of the position limit, and any breach."""
        known = rules_of(account_id)
        if known is None:
            return RiskOut(account_id=account_id, rules=None)
        rules, eod_high = known
        guard = RiskGuard(rules, account_id, eod_high=eod_high)
        now = datetime.now(UTC)
        await client.refresh_guard(now, guard=guard)
        judged = guard.assessment(now)
        return RiskOut(
            account_id=account_id,
            rules=rules.name,
            status=judged.status.name,
            balance=judged.balance,
            equity=judged.equity,
            day_pnl=judged.day_pnl,
            floor=judged.floor,
            daily_loss_limit=rules.daily_loss_limit,
            daily_loss_remaining=judged.daily_loss_remaining,
            max_loss=rules.max_loss,
            max_loss_remaining=judged.max_loss_remaining,
            max_contracts=rules.max_contracts,
            position_remaining=judged.position_remaining,
            profit_target=rules.profit_target,
            profit_remaining=judged.profit_remaining,
            breaches=[f.message for f in judged.breaches],
            warnings=[f.message for f in judged.warnings],
        )

    return router


def _read_routes(runtime: _Runtime, read_only: bool, max_bars: int) -> APIRouter:
    router = APIRouter(responses=ERROR_RESPONSES)
    bar_calls = _Gate(BAR_CALLS)  # each may hold up to max_bars bars: bound the memory
    Client = Annotated[TradingClient, Depends(runtime.current)]

    @router.get(
        "/ready",
        tags=["service"],
        responses={status.HTTP_503_SERVICE_UNAVAILABLE: {"model": Readiness}},
    )
    async def ready(client: Client, response: Response) -> Readiness:
        """Whether the backend accepts this service's login now (503 when not), what it trades
        on and how the realtime stream's hubs stand."""
        login, detail = await _login_state(client)
        provider = client.provider
        if login != "ok":
            response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return Readiness(
            ready=login == "ok",
            login=login,
            detail=detail,
            provider=provider.name,
            environment=provider.environment_name,
            simulator=provider.simulator,
            read_only=read_only,
            stream=_stream_health(runtime.fanout),
        )

    @router.get("/contracts", tags=["contracts"])
    async def search_contracts(
        client: Client, search: SearchText, live: bool = False
    ) -> ContractList:
        """Contracts matching a text."""
        found = await client.search_contracts(search, live=live)
        return ContractList(contracts=[ContractOut.model_validate(c) for c in found])

    @router.get("/contracts/available", tags=["contracts"])
    async def get_available_contracts(client: Client, live: bool = False) -> ContractList:
        """The tradeable catalogue."""
        found = await client.get_available_contracts(live=live)
        return ContractList(contracts=[ContractOut.model_validate(c) for c in found])

    @router.get("/contracts/by-symbol/{symbol}", tags=["contracts"])
    async def resolve_contract(
        client: Client, symbol: SymbolPath, live: bool = False
    ) -> ContractOut:
        """The current active contract of a product ("MES", "ES", "NQ"...)."""
        try:
            contract = await client.resolve_contract(symbol, live=live)
        except NoActiveContract as missing:
            raise HTTPException(status.HTTP_404_NOT_FOUND, missing.message) from None
        return ContractOut.model_validate(contract)

    @router.get("/contracts/{contract_id}", tags=["contracts"])
    async def get_contract(client: Client, contract_id: ContractIdPath) -> ContractOut:
        """One contract by id."""
        return ContractOut.model_validate(await client.get_contract(contract_id))

    Limit = Annotated[
        int | None,
        Query(ge=1, le=max_bars, description="At most this many, the newest"),
        whole_text("limit", max_bars),
    ]

    @router.get("/bars", tags=["history"])
    async def get_bars(
        client: Client,
        *,
        contract_id: ContractIdQuery,
        unit: RequestableUnit,
        start: Start,
        end: End = None,
        unit_number: UnitNumber = 1,
        limit: Limit = None,
        include_partial_bar: bool = False,
        live: bool = False,
    ) -> BarList:
        """Bars in [start, end] (end omitted: now), oldest first; a window of more than the
        service's bar cap needs a ``limit`` (422 otherwise)."""
        async with bar_calls.get():
            found = await client.get_bars(
                contract_id,
                BarUnit[unit],
                unit_number,
                start=start,
                end=datetime.now(UTC) if end is None else end,
                limit=limit,
                include_partial_bar=include_partial_bar,
                live=live,
                max_bars=max_bars,
            )
            return BarList(bars=[BarOut.model_validate(b) for b in found])

    @router.get("/orders", tags=["orders"])
    async def search_orders(
        client: Client, account_id: AccountQuery, start: Start, end: End = None
    ) -> OrderList:
        """Orders created in a time window."""
        found = await client.search_orders(account_id, start, end)
        return OrderList(orders=[OrderOut.model_validate(o) for o in found])

    @router.get("/orders/open", tags=["orders"])
    async def get_open_orders(client: Client, account_id: AccountQuery) -> OrderList:
        """Working orders."""
        found = await client.get_open_orders(account_id)
        return OrderList(orders=[OrderOut.model_validate(o) for o in found])

    @router.get("/orders/{order_id:tradeforge_id}", tags=["orders"])
    async def get_order(
        client: Client, order_id: OrderIdPath, account_id: AccountQuery
    ) -> OrderOut:
        """One order by id."""
        return OrderOut.model_validate(await client.get_order(account_id, order_id))

    @router.get("/positions", tags=["positions"])
    async def get_open_positions(client: Client, account_id: AccountQuery) -> PositionList:
        """Open positions."""
        found = await client.get_open_positions(account_id)
        return PositionList(positions=[PositionOut.model_validate(p) for p in found])

    @router.get("/trades", tags=["trades"])
    async def search_trades(
        client: Client, account_id: AccountQuery, start: Start, end: End = None
    ) -> TradeList:
        """Fills in a time window."""
        found = await client.search_trades(account_id, start, end)
        return TradeList(trades=[TradeOut.model_validate(f) for f in found])

    return router


def _write_routes(runtime: _Runtime) -> APIRouter:
    responses = {**ERROR_RESPONSES, **UNCERTAIN_RESPONSE, **BODY_LIMIT_RESPONSES}
    router = APIRouter(responses=responses)
    Client = Annotated[TradingClient, Depends(runtime.current)]
    done = status.HTTP_204_NO_CONTENT
    tag_source = random.SystemRandom()

    @router.post(
        "/orders", tags=["orders"], status_code=status.HTTP_201_CREATED, responses=BAD_BODY_RESPONSE
    )
    async def place_order(client: Client, body: PlaceOrderIn) -> OrderPlaced:
        """Place an order; the answer and an uncertain outcome (503) carry its custom tag, the
        caller's or a new one, to look it up by."""
        custom_tag = body.custom_tag or new_custom_tag(tag_source, time.time())
        order_id = await client.place_order(
            body.account_id,
            body.contract_id,
            OrderSide[body.side],
            OrderType[body.type],
            body.size,
            limit_price=body.limit_price,
            stop_price=body.stop_price,
            trail_price=body.trail_price,
            custom_tag=custom_tag,
            stop_loss=_bracket(body.stop_loss),
            take_profit=_bracket(body.take_profit),
        )
        placed = await read_back(client, body.account_id, order_id)
        status = "ACCEPTED" if placed is None else placed.status.name
        return OrderPlaced(
            order_id=order_id,
            custom_tag=custom_tag,
            status=status,
            order=None if placed is None else OrderOut.model_validate(placed),
        )

    @router.patch(
        "/orders/{order_id:tradeforge_id}",
        tags=["orders"],
        status_code=done,
        responses=BAD_BODY_RESPONSE,
    )
    async def modify_order(
        client: Client, order_id: OrderIdPath, account_id: AccountQuery, body: ModifyOrderIn
    ) -> None:
        """Change a working order's size or prices (409 once it is finished)."""
        async with _working(client, account_id, order_id, "change"):
            await client.modify_order(
                account_id,
                order_id,
                size=body.size,
                limit_price=body.limit_price,
                stop_price=body.stop_price,
                trail_price=body.trail_price,
            )

    @router.delete("/orders/{order_id:tradeforge_id}", tags=["orders"], status_code=done)
    async def cancel_order(client: Client, order_id: OrderIdPath, account_id: AccountQuery) -> None:
        """Cancel a working order (409 once it is finished)."""
        async with _working(client, account_id, order_id, "cancel"):
            await client.cancel_order(account_id, order_id)

    @router.post(
        "/positions/close", tags=["positions"], status_code=done, responses=BAD_BODY_RESPONSE
    )
    async def close_position(client: Client, body: ClosePositionIn) -> None:
        """Flatten a position at market."""
        await client.close_position(body.account_id, body.contract_id)

    @router.post(
        "/positions/partial-close",
        tags=["positions"],
        status_code=done,
        responses=BAD_BODY_RESPONSE,
    )
    async def partial_close_position(client: Client, body: PartialCloseIn) -> None:
        """Reduce a position at market."""
        await client.partial_close_position(body.account_id, body.contract_id, body.size)

    return router


def create_app(
    client_factory: ClientFactory,
    *,
    token: str,
    read_only: bool = False,
    cors_origins: Sequence[str] = (),
    client_queue_size: int = 1000,
    max_client_subscriptions: int = 1000,
    stream_config: StreamConfig | None = None,
    max_body: int = MAX_BODY,
    max_bars: int = MAX_BARS,
    allowed_hosts: Sequence[str] = LOCAL_HOSTS,
    journal: Journal | None = None,
    account_rules: RulesOf | None = None,
) -> FastAPI:
    """The service; ``client_factory()`` is entered for the app's lifetime.

    ``read_only`` leaves out every route that changes orders or positions: their paths answer 404,
    or 405 where a read shares the path.
    ``client_queue_size`` bounds the events waiting for each WebSocket client of ``/ws/stream``,
    ``max_client_subscriptions`` the subscriptions one client may hold; ``stream_config`` tunes
    the shared upstream stream (keep-alive, timeouts, reconnect backoff).
    ``max_body`` caps request bodies in bytes (413 past it), ``max_bars`` the bars one request
    may gather (422 past it), and ``allowed_hosts`` are the names the ``Host`` header may carry
    (400 otherwise). ``account_rules`` tells ``GET /risk`` the rules each account is held to.
    """
    if not token:
        raise ValueError("the service token must not be empty")
    if max_body < 0 or max_bars < 1:
        raise ValueError("max_body must be 0 or more and max_bars at least 1")
    runtime = _Runtime()

    @asynccontextmanager
    async def lifespan(application: FastAPI) -> AsyncIterator[None]:
        async with client_factory() as client, anyio.create_task_group() as group:
            runtime.client = client
            fanout = Fanout(
                client,
                group,
                client_queue_size=client_queue_size,
                max_subscriptions=max_client_subscriptions,
                stream_config=stream_config,
            )
            runtime.fanout = application.state.fanout = fanout
            try:
                yield
            finally:
                runtime.client = None
                runtime.fanout = None
                await fanout.aclose()

    # The API needs the token; the browser pages (console.py) do not.
    # No redirects: a path with a trailing slash is simply not found.
    app = FastAPI(
        title="TradeForge",
        description=__doc__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        redirect_slashes=False,
        # Each operation's id is the client method it calls, so generated clients in other
        # languages read like the Python library.
        generate_unique_id_function=lambda route: route.name,
    )
    app.add_exception_handler(TradeForgeError, handle_library_error)
    app.add_exception_handler(RequestValidationError, handle_validation_error)
    public = install_console(app) | install_dashboard(app) | {"/health", install_stream_schema(app)}
    _add_edge(app, token, max_body, public)
    # Outside the token check: a refused attempt to change something is kept too.
    app.add_middleware(AuditTrail, journal=journal)
    if cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
            expose_headers=["Retry-After"],
        )
    # Outermost: a request naming another host (DNS rebinding, a stray proxy) gets 400 first.
    app.add_middleware(AllowedHosts, hosts=allowed_hosts)

    guard = [Depends(_bearer_check(token)), Depends(QueryNames())]
    app.include_router(stream_router(lambda: runtime.fanout, token))
    health = _health_route()
    app.include_router(health, dependencies=[Depends(QueryNames())])
    routers = [
        _account_routes(runtime, account_rules or _no_rules),
        _read_routes(runtime, read_only, max_bars),
        _journal_route(journal),
    ]
    if not read_only:
        routers.append(_write_routes(runtime))
    for router in routers:
        app.include_router(router, dependencies=guard)
    note = " (this service is read-only)" if read_only else ""
    app.add_exception_handler(
        status.HTTP_405_METHOD_NOT_ALLOWED, method_not_allowed(app, [health, *routers], note)
    )
    return app


def _add_edge(app: FastAPI, token: str, max_body: int, public: frozenset[str]) -> None:
    """The checks every request passes before routing, innermost first: cancellation when the
    caller leaves, the streamed body count, the declared length and type, then the token."""
    app.add_middleware(CancelOnDisconnect)
    app.add_middleware(RequestBodyLimitMiddleware, max_body_size=max_body)
    app.add_middleware(BodyGate, max_body=max_body)
    app.add_middleware(RequireToken, token=token, public=public)


__all__ = ["LOCAL_HOSTS", "MAX_BODY", "ClientFactory", "create_app"]
