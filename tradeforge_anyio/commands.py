"""The everyday trading commands of ``tradeforge``: accounts, contracts, quotes, bars, orders,
positions, flattening and a live view, on TopStepX or a running simulator, without Python.

Each command connects, does one thing and exits (``watch`` runs until Ctrl-C or ``--updates``).
Changes are sent once and never retried; against TopStepX they are confirmed first.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import random
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final, TextIO

import anyio
import attrs

from tradeforge_proto.core import bounds
from tradeforge_proto.core.enums import BarUnit, OrderSide, OrderType
from tradeforge_proto.core.errors import (
    AuthenticationError,
    ConfigurationError,
    LocalProtocolError,
    NoActiveContract,
    OrderUncertain,
    ProviderError,
    SubscriptionTimeout,
    TradeForgeError,
    single_error,
)
from tradeforge_proto.core.events import DepthReceived, QuoteUpdated, StreamStopped
from tradeforge_proto.core.models import Account, Contract, Order, Position, Quote
from tradeforge_proto.orders import Flattened, new_custom_tag
from tradeforge_proto.transport import Origin, TransportError

from .readback import read_back

if TYPE_CHECKING:
    from .client import TradingClient
    from .stream import TradingStream
    from .terminal import Marked, Output

log = logging.getLogger("tradeforge.cli")

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
"""The backend refused (an unknown symbol or order, a rejected order) or the input was wrong."""
EXIT_USAGE: Final = 2
"""The command line itself was wrong (argparse's own code)."""
EXIT_LOGIN: Final = 3
EXIT_UNREACHABLE: Final = 4
"""The backend could not be reached, or what was waited for did not come in time."""
EXIT_NOT_CONFIRMED: Final = 5
EXIT_UNKNOWN: Final = 6
"""A change was sent and its outcome is unknown: it was not sent again."""
EXIT_INTERRUPTED: Final = 130

EPILOG: Final = """\
backend: --sim URL talks to a running simulator (tradeforge sim) with its default login;
otherwise the live settings of --env-file (default .env) and --profile are used, and a profile
without live credentials is an error, never a quiet switch to paper trading.

account: --account ID; else the profile's account (TS_CAPTURE_ACCOUNT_ID); else the only active
account; else an error listing them.

--json writes JSON lines: one object per line, one line per item of a list (none for an empty
list), per update of a stream, or for the single result of a command. Times are ISO 8601 in UTC
ending in Z, prices and money exact decimal strings.

buy, sell, cancel and flatten against TopStepX show what they will do and ask for confirmation
on the terminal unless --yes is given; without a terminal and without --yes they refuse.
Changes are never retried.

exit codes:
  0    done
  1    refused or failed: an unknown symbol or order, a rejected order, bad settings
  2    the command line is wrong
  3    the backend refused the login
  4    the backend could not be reached, or what was waited for did not come in time
  5    not confirmed: nothing was sent
  6    a change was sent but its outcome is unknown (it was not sent again): check it with
       "tradeforge orders" and "tradeforge positions" before trying again
  130  interrupted (Ctrl-C; watch stops with 0)
"""

MAX_SYMBOL: Final = 64
MAX_TIMEOUT: Final = 300.0
MAX_BAR_LIMIT: Final = 10_000
MAX_BAR_SIZE: Final = 1_440
MAX_UPDATES: Final = 10_000_000
MAX_DEPTH: Final = 50
MARK_LOOKBACK: Final = timedelta(days=4)  # a weekend and a holiday: the latest bar is in it
MAX_LOOKBACK: Final = timedelta(days=365 * 40)
_BAR_UNITS: Final = {
    "second": (BarUnit.SECOND, timedelta(seconds=1)),
    "minute": (BarUnit.MINUTE, timedelta(minutes=1)),
    "hour": (BarUnit.HOUR, timedelta(hours=1)),
    "day": (BarUnit.DAY, timedelta(days=1)),
    "week": (BarUnit.WEEK, timedelta(days=7)),
    "month": (BarUnit.MONTH, timedelta(days=31)),
}
_CLIENT_OPTIONS: Final[dict[str, Any]] = {"connect_timeout": 10.0, "read_timeout": 30.0}


class HelpFormatter(argparse.HelpFormatter):
    """Help that reflows one-paragraph texts and keeps the layout of those written in lines
    (the epilog's lists)."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


class CommandFailed(Exception):
    """What a command says on stderr, with the exit code it ends with."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@attrs.frozen
class Backend:
    """Where a command trades: how messages name it, whether changes need a confirmation, the
    account the settings name, and how to make a client for it."""

    name: str
    live: bool
    connect: Callable[[], TradingClient]
    account_id: int | None = None
    account_setting: str | None = None


def backend_of(args: argparse.Namespace) -> Backend:
    """``--sim URL``, else the live profile of the settings; a profile without live credentials
    is an error naming what is missing, never a quiet switch to a simulator."""
    from tradeforge_sim.auth import DEFAULT_API_KEY, DEFAULT_USERNAME

    from .client import TradingClient
    from .settings import load_settings

    if args.sim is not None:
        url = args.sim

        def simulator() -> TradingClient:
            return TradingClient.for_simulator(
                url, DEFAULT_USERNAME, DEFAULT_API_KEY, **_CLIENT_OPTIONS
            )

        return Backend(f"the simulator at {url}", live=False, connect=simulator)
    profile = load_settings(args.env_file).profile(args.profile)
    prefix = profile.name
    try:
        embedded = profile.in_process_simulator()
    except ConfigurationError as exc:
        raise ConfigurationError(f"{exc}; or pass --sim URL for a running simulator") from None
    if embedded:
        raise ConfigurationError(
            f"no live settings for profile {prefix} (in {args.env_file} or the environment): set "
            f"{prefix}_USERNAME and {prefix}_API_KEY to trade on TopStepX, or pass --sim URL "
            "for a running simulator (tradeforge sim)"
        )

    def settings() -> TradingClient:
        return TradingClient.from_settings(profile, **_CLIENT_OPTIONS)

    where = "" if profile.api_url is None else f" at {profile.api_url}"
    name = f"{profile.environment.upper()}{where} as {profile.username}"
    if profile.uses_simulator:
        name = f"the simulator at {profile.api_url}"
    return Backend(
        name,
        live=not profile.uses_simulator,
        connect=settings,
        account_id=profile.default_account_id,
        account_setting=f"{prefix}_CAPTURE_ACCOUNT_ID",
    )


@attrs.define
class Context:
    """One command's run: its arguments, backend, client and output."""

    args: argparse.Namespace
    backend: Backend
    client: TradingClient
    out: Output
    stdin: TextIO
    stderr: TextIO

    async def account(self) -> Account:
        """``--account``, else the settings' account, else the only active account."""
        wanted: int | None = getattr(self.args, "account", None)
        named_by = "--account"
        if wanted is None and self.backend.account_id is not None:
            wanted, named_by = self.backend.account_id, self.backend.account_setting or "settings"
        if wanted is not None:
            accounts = await self.client.get_accounts(only_active=False)
            found = next((a for a in accounts if a.id == wanted), None)
            if found is None:
                raise CommandFailed(
                    f"account {wanted} ({named_by}) is not one of this login's accounts: "
                    f"{_listing(accounts)}"
                )
            return found
        active = await self.client.get_accounts(only_active=True)
        if len(active) == 1:
            return active[0]
        if not active:
            raise CommandFailed(f"{self.backend.name} lists no active account")
        raise CommandFailed(
            f"{len(active)} active accounts; choose one with --account: {_listing(active)}"
        )

    async def contract(self, text: str) -> Contract:
        """A contract id (``CON.F.US.MES.Z26``), a symbol (``MES``) or a contract name
        (``MESZ6``)."""
        client = self.client
        if "." in text:
            try:
                return await client.get_contract(text)
            except ProviderError as exc:
                if not _not_found(exc):
                    raise
                raise CommandFailed(f"no contract {text!r}: {exc}") from None
        try:
            return await client.resolve_contract(text)
        except NoActiveContract:
            pass
        named = [c for c in await client.search_contracts(text) if c.name.upper() == text.upper()]
        if len(named) == 1:
            return named[0]
        raise CommandFailed(
            f"no active contract for {text!r}: give a symbol such as MES, or see "
            f"'tradeforge contracts {text}'"
        )

    def confirm(self, action: str) -> None:
        """Against a live backend, ask before a change (unless ``--yes``); refuse without a
        terminal to ask on."""
        if not self.backend.live or self.args.yes:
            return
        if not self.stdin.isatty():
            raise CommandFailed(
                f"not confirmed, nothing was sent: {action} on {self.backend.name} needs a "
                "confirmation and the input is not a terminal; pass --yes to confirm it in advance",
                EXIT_NOT_CONFIRMED,
            )
        self.stderr.write(f"{action}\non {self.backend.name}. Send it? [y/N] ")
        self.stderr.flush()
        answer = self.stdin.readline().strip().lower()
        if answer not in {"y", "yes"}:
            raise CommandFailed("not confirmed: nothing was sent", EXIT_NOT_CONFIRMED)


Handler = Callable[[Context], Awaitable[None]]


def _listing(accounts: list[Account]) -> str:
    if not accounts:
        return "none"
    return ", ".join(f"{a.id} ({a.name})" for a in accounts)


def _not_found(error: ProviderError) -> bool:
    return (error.code_name or "").endswith("NotFound")


# --- the commands ---


async def _accounts(ctx: Context) -> None:
    from .terminal import ACCOUNT_COLUMNS, table

    accounts = await ctx.client.get_accounts(only_active=not ctx.args.all)
    ctx.out.records(accounts, lambda: table(accounts, ACCOUNT_COLUMNS), empty="no accounts")


async def _contracts(ctx: Context) -> None:
    from .terminal import CONTRACT_COLUMNS, table

    found = await ctx.client.search_contracts(ctx.args.text)
    if not found:
        raise CommandFailed(f"no contract matches {ctx.args.text!r}")
    ctx.out.records(found, lambda: table(found, CONTRACT_COLUMNS), empty="")


async def _quote(ctx: Context) -> None:
    from .terminal import fields, quote_pairs

    contract = await ctx.contract(ctx.args.symbol)
    timeout = ctx.args.timeout
    quote: Quote | None = None
    async with ctx.client.stream() as stream:
        with anyio.move_on_after(timeout):
            await stream.subscribe_market(contract.id, quotes=True)
            quote = await _first_quote(stream, contract)
    if quote is None:
        raise CommandFailed(
            f"no quote for {contract.name} came within {timeout:g} s (is the market open and "
            "its hub reachable? --timeout waits longer)",
            EXIT_UNREACHABLE,
        )
    shown = quote
    ctx.out.record(shown, lambda: fields(quote_pairs(contract, shown)))


async def _first_quote(stream: TradingStream, contract: Contract) -> Quote | None:
    while (event := await stream.get()) is not None:
        if isinstance(event, QuoteUpdated) and event.quote.contract_id == contract.id:
            return event.quote
        if isinstance(event, StreamStopped):
            raise CommandFailed(f"the market stream stopped: {event.error}")
    return None


async def _bars(ctx: Context) -> None:
    from .terminal import BAR_COLUMNS, plain, table

    args = ctx.args
    contract = await ctx.contract(args.symbol)
    unit, length = _BAR_UNITS[args.unit]
    end = datetime.now(UTC)
    # Wide enough for ``limit`` bars across closed sessions; the gateway answers the newest.
    wanted = length.total_seconds() * args.size * args.limit * 3  # seconds: no timedelta overflow
    span = min(
        timedelta(seconds=min(wanted, MAX_LOOKBACK.total_seconds())) + MARK_LOOKBACK, MAX_LOOKBACK
    )
    bars = await ctx.client.get_bars(
        contract.id,
        unit,
        args.size,
        start=end - span,
        end=end,
        limit=args.limit,
        include_partial_bar=args.partial,
    )
    title = f"{contract.name}: {args.size} {args.unit} bars (UTC)"
    ctx.out.records(
        [{"contract_id": contract.id, **plain(bar)} for bar in bars],
        lambda: table(bars, BAR_COLUMNS, title=title),
        empty=f"no {args.unit} bars of {contract.name} in the last {span.days} days",
    )


def _order_words(side: OrderSide, size: int, contract: Contract, args: argparse.Namespace) -> str:
    from .terminal import decimal_text

    if args.limit is not None:
        how = f"limit {decimal_text(args.limit)}"
    elif args.stop is not None:
        how = f"stop {decimal_text(args.stop)}"
    else:
        how = "at market"
    return f"{side.name} {size} {contract.name} ({contract.id}) {how}"


async def _buy(ctx: Context) -> None:
    await _place(ctx, OrderSide.BUY)


async def _sell(ctx: Context) -> None:
    await _place(ctx, OrderSide.SELL)


async def _place(ctx: Context, side: OrderSide) -> None:
    from .terminal import fields

    args, client = ctx.args, ctx.client
    contract = await ctx.contract(args.symbol)
    account = await ctx.account()
    kind = OrderType.MARKET
    if args.limit is not None:
        kind = OrderType.LIMIT
    elif args.stop is not None:
        kind = OrderType.STOP
    tag = args.tag or new_custom_tag(random.SystemRandom(), time.time())
    words = _order_words(side, args.size, contract, args)
    ctx.confirm(f"{words} on account {account.id} ({account.name})")
    order_id = await client.place_order(
        account.id,
        contract.id,
        side,
        kind,
        args.size,
        limit_price=args.limit,
        stop_price=args.stop,
        custom_tag=tag,
    )
    placed = await read_back(client, account.id, order_id)
    status = "ACCEPTED" if placed is None else placed.status.name
    record = {"order_id": order_id, "custom_tag": tag, "status": status, "order": placed}
    pairs: list[tuple[str, object]] = [
        ("order", order_id),
        ("custom tag", tag),
        ("status", status),
        ("account", f"{account.id} ({account.name})"),
        ("order placed", words),
    ]
    if placed is not None and placed.filled_price is not None:
        pairs.append(("filled", f"{placed.fill_volume} @ {placed.filled_price:f}"))
    ctx.out.record(record, lambda: fields(pairs))


async def _orders(ctx: Context) -> None:
    from .terminal import ORDER_COLUMNS, table

    account = await ctx.account()
    orders = await ctx.client.get_open_orders(account.id)
    title = f"working orders of account {account.id} ({account.name})"
    ctx.out.records(
        orders,
        lambda: table(orders, ORDER_COLUMNS, title=title),
        empty=f"no working orders on account {account.id} ({account.name})",
    )


def _describe(order: Order) -> str:
    prices = [
        f"{label} {price:f}"
        for label, price in (("limit", order.limit_price), ("stop", order.stop_price))
        if price is not None
    ]
    what = " ".join([order.side.name, str(order.size), order.contract_id, order.type.name, *prices])
    return f"order {order.id} ({what}, {order.status.name})"


async def _cancel(ctx: Context) -> None:
    from .terminal import fields

    client, order_id = ctx.client, ctx.args.order_id
    account = await ctx.account()
    order = await _existing_order(client, account, order_id)
    if order.status.is_terminal:
        raise CommandFailed(f"order {order_id} is already {order.status.name}: nothing to cancel")
    ctx.confirm(f"cancel {_describe(order)} on account {account.id} ({account.name})")
    try:
        await client.cancel_order(account.id, order_id)
    except ProviderError as exc:
        if not _not_found(exc):
            raise
        now = await read_back(client, account.id, order_id)
        if now is None or not now.status.is_terminal:
            raise
        raise CommandFailed(
            f"order {order_id} was {now.status.name} before the cancel reached it"
        ) from None
    after = await read_back(client, account.id, order_id)
    status = "ACCEPTED" if after is None else after.status.name
    record = {"order_id": order_id, "account_id": account.id, "status": status, "order": after}
    ctx.out.record(
        record,
        lambda: fields([("cancelled", _describe(order)), ("status", status)]),
    )


async def _existing_order(client: TradingClient, account: Account, order_id: int) -> Order:
    try:
        return await client.get_order(account.id, order_id)
    except ProviderError as exc:
        if not _not_found(exc):
            raise
        raise CommandFailed(
            f"no order {order_id} on account {account.id} ({account.name})"
        ) from None


async def _mark(client: TradingClient, position: Position) -> Marked:
    """The position marked at its contract's latest one-minute close (the forming bar's, if
    any); without a bar, or when reading one fails, no mark and no P&L."""
    from .terminal import Marked

    end = datetime.now(UTC)
    try:
        bars = await client.get_bars(
            position.contract_id,
            BarUnit.MINUTE,
            1,
            start=end - MARK_LOOKBACK,
            end=end,
            limit=1,
            include_partial_bar=True,
        )
        if not bars:
            return Marked(position, None, None)
        mark = bars[-1].close
        return Marked(position, mark, await client.unrealized_pnl(position, mark))
    except TradeForgeError as exc:
        log.info("no mark for %s: %s", position.contract_id, exc)
        return Marked(position, None, None)


async def _positions(ctx: Context) -> None:
    from .terminal import POSITION_COLUMNS, table

    account = await ctx.account()
    positions = await ctx.client.get_open_positions(account.id)
    marked = [await _mark(ctx.client, p) for p in positions]
    title = f"open positions of account {account.id} ({account.name})"
    caption = "marked at the latest one-minute close"
    ctx.out.records(
        [m.record() for m in marked],
        lambda: table(marked, POSITION_COLUMNS, title=title, caption=caption),
        empty=f"no open positions on account {account.id} ({account.name})",
    )


async def _flatten(ctx: Context) -> None:
    from .terminal import fields

    args, client = ctx.args, ctx.client
    account = await ctx.account()
    contract = None if args.symbol is None else await ctx.contract(args.symbol)
    contract_id = None if contract is None else contract.id
    scope = "everything" if contract is None else f"{contract.name} ({contract.id})"
    if ctx.backend.live and not args.yes:
        orders = [
            o
            for o in await client.get_open_orders(account.id)
            if contract_id is None or o.contract_id == contract_id
        ]
        positions = [
            p
            for p in await client.get_open_positions(account.id)
            if contract_id is None or p.contract_id == contract_id
        ]
        if not orders and not positions:
            ctx.out.record(
                _flattened_record(account, contract_id, Flattened((), ())),
                lambda: f"nothing to flatten on account {account.id} ({account.name})",
            )
            return
        listed = [f"cancel {_describe(o)}" for o in orders] + [
            f"close {p.side.name} {p.size} {p.contract_id} at market" for p in positions
        ]
        ctx.confirm(
            f"flatten {scope} on account {account.id} ({account.name}):\n  " + "\n  ".join(listed)
        )
    done = await client.flatten(account.id, contract_id)
    pairs: list[tuple[str, object]] = [
        ("account", f"{account.id} ({account.name})"),
        ("flattened", scope),
        ("cancelled orders", ", ".join(str(i) for i in done.cancelled) or "none"),
        ("closed positions", ", ".join(done.closed) or "none"),
    ]
    pairs += [(f"failed: {change}", str(error)) for change, error in done.failed]
    ctx.out.record(_flattened_record(account, contract_id, done), lambda: fields(pairs))
    if done.failed:
        unknown = [change for change, e in done.failed if isinstance(e, OrderUncertain)]
        if unknown:
            raise CommandFailed(
                f"the outcome of {', '.join(unknown)} is unknown: it was not sent again; check "
                "with 'tradeforge orders' and 'tradeforge positions' before trying again",
                EXIT_UNKNOWN,
            )
        raise CommandFailed(f"{len(done.failed)} change(s) did not go through; see above")


def _flattened_record(account: Account, contract_id: str | None, done: Flattened) -> Any:
    return {
        "account_id": account.id,
        "contract_id": contract_id,
        "cancelled": list(done.cancelled),
        "closed": list(done.closed),
        "failed": [
            {"change": change, "error": str(e), "unknown": isinstance(e, OrderUncertain)}
            for change, e in done.failed
        ],
        "complete": done.complete,
    }


async def _watch(ctx: Context) -> None:
    from .terminal import WatchScreen, book_record, quote_record

    args, out = ctx.args, ctx.out
    contract = await ctx.contract(args.symbol)
    depth, limit = args.depth, args.updates
    async with ctx.client.stream(books=True) as stream:
        try:
            with anyio.fail_after(args.timeout):
                await stream.subscribe_market(contract.id, quotes=True, depth=True)
        except TimeoutError:
            raise CommandFailed(
                f"the market hub of {ctx.backend.name} did not answer within {args.timeout:g} s",
                EXIT_UNREACHABLE,
            ) from None
        with contextlib.ExitStack() as stack:
            screen = (
                None if out.json else stack.enter_context(WatchScreen(out.console, contract, depth))
            )
            updates = 0
            while limit is None or updates < limit:
                event = await stream.get()
                if event is None:
                    return
                if isinstance(event, StreamStopped):
                    raise CommandFailed(f"the market stream stopped: {event.error}")
                if isinstance(event, QuoteUpdated | DepthReceived):  # only this contract's
                    updates += 1
                held = stream.book(contract.id)
                snapshot = None if held is None else held.snapshot(depth)
                if screen is not None:
                    screen.show(event, snapshot, updates)
                elif isinstance(event, QuoteUpdated):
                    out.line(quote_record(event.quote))
                elif isinstance(event, DepthReceived) and snapshot is not None:
                    out.line(book_record(snapshot, depth))


# --- the command line ---


def _symbol(text: str) -> str:
    try:
        return bounds.text(text.strip(), "symbol", MAX_SYMBOL)
    except LocalProtocolError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _size(text: str) -> int:
    try:
        return bounds.size(int(text))
    except (ValueError, LocalProtocolError):
        raise argparse.ArgumentTypeError(
            f"a size is a whole number from 1 to {bounds.MAX_SIZE}, got {text!r}"
        ) from None


def _price(text: str) -> Decimal:
    try:
        return bounds.price(text)
    except LocalProtocolError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _tag(text: str) -> str:
    try:
        return bounds.custom_tag(text)
    except LocalProtocolError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _order_id(text: str) -> int:
    try:
        return bounds.identifier(int(text), "order id")
    except (ValueError, LocalProtocolError):
        raise argparse.ArgumentTypeError(
            f"an order id is a positive whole number, got {text!r}"
        ) from None


def _bounded_int(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}, got {text!r}")
        return value

    return parse


def _timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= MAX_TIMEOUT:
        raise argparse.ArgumentTypeError(
            f"must be seconds above 0, at most {MAX_TIMEOUT:g}, got {text!r}"
        )
    return value


def _url(text: str) -> str:
    try:
        Origin.from_url(text)
    except LocalProtocolError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text.rstrip("/")


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("backend and output")
    group.add_argument(
        "--sim",
        type=_url,
        metavar="URL",
        help="a running simulator (tradeforge sim), e.g. http://127.0.0.1:8123",
    )
    group.add_argument("--env-file", default=".env", help="settings file (default .env)")
    group.add_argument("--profile", help="settings profile (default TS)")
    group.add_argument("--json", action="store_true", help="JSON lines instead of tables")
    return common


def _account_option() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--account",
        type=_bounded_int(1, bounds.MAX_ID),
        metavar="ID",
        help="account id (default: the settings' account, else the only active one)",
    )
    return parent


def _yes_option() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--yes", action="store_true", help="do not ask for confirmation on TopStepX"
    )
    return parent


_HANDLERS: Final[dict[str, Handler]] = {
    "accounts": _accounts,
    "contracts": _contracts,
    "quote": _quote,
    "bars": _bars,
    "buy": _buy,
    "sell": _sell,
    "orders": _orders,
    "cancel": _cancel,
    "positions": _positions,
    "flatten": _flatten,
    "watch": _watch,
}
TRADING_COMMANDS: Final = frozenset(_HANDLERS)


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the trading commands on the ``tradeforge`` parser's subcommands."""
    common, account, yes = _common(), _account_option(), _yes_option()

    def add(name: str, about: str, *parents: argparse.ArgumentParser) -> argparse.ArgumentParser:
        return commands.add_parser(
            name,
            help=about,
            description=about,
            parents=[common, *parents],
            epilog=EPILOG,
            formatter_class=HelpFormatter,
        )

    listed = add("accounts", "the login's accounts: id, name, balance, whether they can trade")
    listed.add_argument("--all", action="store_true", help="inactive accounts too")
    search = add("contracts", "search contracts by symbol or name")
    search.add_argument("text", type=_symbol, metavar="SYMBOL", help="MES, ES, MNQ...")
    quote = add("quote", "one live quote of a contract from the market hub, then exit")
    quote.add_argument("symbol", type=_symbol, help="a symbol (MES) or a contract id")
    quote.add_argument(
        "--timeout", type=_timeout, default=10.0, help="seconds to wait for it (default 10)"
    )
    bars = add("bars", "the most recent bars of a contract, oldest first")
    bars.add_argument("symbol", type=_symbol, help="a symbol (MES) or a contract id")
    bars.add_argument("--unit", choices=tuple(_BAR_UNITS), default="minute", help="(minute)")
    bars.add_argument(
        "--size",
        type=_bounded_int(1, MAX_BAR_SIZE),
        default=1,
        help=f"units per bar, 1 to {MAX_BAR_SIZE} (default 1)",
    )
    bars.add_argument(
        "--limit",
        type=_bounded_int(1, MAX_BAR_LIMIT),
        default=20,
        help=f"how many bars, 1 to {MAX_BAR_LIMIT} (default 20)",
    )
    bars.add_argument("--partial", action="store_true", help="include the bar still forming")
    for side in ("buy", "sell"):
        order = add(side, f"{side} a contract: at market, or with --limit or --stop", account, yes)
        order.add_argument("symbol", type=_symbol, help="a symbol (MES) or a contract id")
        order.add_argument("size", type=_size, help=f"contracts, 1 to {bounds.MAX_SIZE}")
        prices = order.add_mutually_exclusive_group()
        prices.add_argument("--limit", type=_price, metavar="PRICE", help="a limit order")
        prices.add_argument("--stop", type=_price, metavar="PRICE", help="a stop (market) order")
        order.add_argument("--tag", type=_tag, help="the order's custom tag (default: a new one)")
    add("orders", "the account's working orders", account)
    cancel = add("cancel", "cancel a working order", account, yes)
    cancel.add_argument("order_id", type=_order_id, metavar="ORDER_ID")
    add("positions", "the account's open positions with their open P&L", account)
    flatten = add(
        "flatten", "cancel working orders and close positions: all, or one contract's", account, yes
    )
    flatten.add_argument("symbol", type=_symbol, nargs="?", help="only this contract")
    watch = add("watch", "the live quote and order book of a contract, until Ctrl-C")
    watch.add_argument("symbol", type=_symbol, help="a symbol (MES) or a contract id")
    watch.add_argument(
        "--depth",
        type=_bounded_int(1, MAX_DEPTH),
        default=10,
        help=f"book levels shown, 1 to {MAX_DEPTH} (default 10)",
    )
    watch.add_argument(
        "--updates",
        type=_bounded_int(1, MAX_UPDATES),
        metavar="N",
        help="stop after N quote and book updates",
    )
    watch.add_argument(
        "--timeout",
        type=_timeout,
        default=30.0,
        help="seconds to wait for the market hub to subscribe (default 30)",
    )


def run(args: argparse.Namespace) -> int:
    """Run one trading command; its exit code (errors are said on stderr, never a traceback
    for what the backend or the user did)."""
    try:
        return anyio.run(_main, args)
    except KeyboardInterrupt:
        if args.command == "watch":
            return EXIT_OK
        print("tradeforge: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


async def _main(args: argparse.Namespace) -> int:
    from .terminal import Output

    backend: Backend | None = None
    try:
        backend = backend_of(args)
        async with backend.connect() as client:
            context = Context(
                args,
                backend,
                client,
                Output(sys.stdout, json=args.json),
                stdin=sys.stdin,
                stderr=sys.stderr,
            )
            await _HANDLERS[args.command](context)
    except Exception as error:
        message, code = _failure(error, backend)
        if message is None:
            _drop_output()
        else:
            print(f"tradeforge: {message}", file=sys.stderr, flush=True)
        return code
    return EXIT_OK


def _drop_output() -> None:
    """Whoever read the output stopped reading (``| head``): what is left to write (the
    interpreter's last flush included) goes nowhere instead of failing again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass  # not a file (a test's capture): nothing is flushed at exit there


def _failure(error: BaseException, backend: Backend | None) -> tuple[str | None, int]:
    """What to say of ``error`` (None: nothing) and the exit code; anything else is a fault of
    this program and is raised again."""
    if isinstance(error, BaseExceptionGroup):
        sole = single_error(error, anyio.get_cancelled_exc_class())
        if sole is None:
            raise error
        return _failure(sole, backend)
    if isinstance(error, BrokenPipeError):  # sockets' failures come as the library's errors
        return None, EXIT_OK
    where = "the backend" if backend is None else backend.name
    if isinstance(error, CommandFailed):
        return error.message, error.code
    if isinstance(error, OrderUncertain):
        tag = f" (custom tag {error.custom_tag})" if error.custom_tag else ""
        order = f" of order {error.order_id}" if error.order_id is not None else ""
        return (
            f"the outcome of {error.operation}{order}{tag} on account {error.account_id} is "
            "unknown: it may or may not have happened, and it was not sent again. Check with "
            "'tradeforge orders' and 'tradeforge positions' before trying again",
            EXIT_UNKNOWN,
        )
    if isinstance(error, AuthenticationError):
        return f"{where} refused the login: {error}", EXIT_LOGIN
    if isinstance(error, TransportError | OSError):
        return f"could not reach {where}: {error or type(error).__name__}", EXIT_UNREACHABLE
    if isinstance(error, SubscriptionTimeout):
        return f"{where}: {error}", EXIT_UNREACHABLE
    if isinstance(error, TradeForgeError):
        return str(error), EXIT_FAILED
    raise error
