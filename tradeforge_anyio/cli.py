"""The ``tradeforge`` command: ``serve`` runs the web service, ``sim`` the gateway simulator, and
the trading commands (``quote``, ``buy``, ``positions``...) do everyday tasks from a shell."""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import ssl
import sys
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Final

import anyio

from tradeforge_proto.core import bounds
from tradeforge_proto.core.errors import AuthenticationError, ConfigurationError, TradeForgeError
from tradeforge_proto.paging import MAX_BARS
from tradeforge_proto.realtime import MAX_OUTBOX
from tradeforge_proto.rules import PRESETS, AccountRules
from tradeforge_sim.paper import (
    add_paper_options,
    default_state_path,
    open_paper_state,
    paper_config,
    paper_faults,
    paper_summary,
    rules_lookup,
)
from tradeforge_sim.server import BODY_TIMEOUT, HEADER_TIMEOUT, IDLE_TIMEOUT, SimServer
from tradeforge_sim.server import MAX_BODY as SIM_MAX_BODY
from tradeforge_sim.store import StateStore, StoreError

from .commands import EPILOG, TRADING_COMMANDS, HelpFormatter, add_commands, run

if TYPE_CHECKING:
    from .client import TradingClient

log = logging.getLogger("tradeforge.serve")

TOKEN_VARIABLE: Final = "TRADEFORGE_SERVICE_TOKEN"
LOGIN_CHECK_TIMEOUT: Final = 30.0  # how long serve waits for the backend's first login
DESCRIPTION: Final = (
    "TradeForge: run the web service on TopStepX or a simulator (serve), or the ProjectX "
    "gateway simulator on its own (sim); read the order journal (journal); or trade from the "
    "shell: accounts, contracts, quote, bars, buy, sell, orders, cancel, positions, flatten "
    "and watch, on TopStepX or a running simulator (--sim URL). Each command's --help lists "
    "its options."
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tradeforge",
        description=DESCRIPTION,
        epilog=f"trading commands:\n{EPILOG}",
        formatter_class=HelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    sim = commands.add_parser(
        "sim", help="run the ProjectX gateway simulator (REST and both hubs) on one port"
    )
    sim.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    sim.add_argument("--port", type=int, default=8123, help="port (default 8123, 0 picks one)")
    sim.add_argument("--seed", type=int, default=7, help="market seed (default 7)")
    sim.add_argument(
        "--rate", type=float, default=20.0, help="market updates per second per contract (20)"
    )
    sim.add_argument(
        "--hub-outbox",
        type=int,
        default=MAX_OUTBOX,
        metavar="BYTES",
        help="bytes a hub client may leave unread before it is closed as too slow (4 MiB)",
    )
    limits = (
        ("--header-timeout", HEADER_TIMEOUT, "seconds a request's header block may take"),
        ("--body-timeout", BODY_TIMEOUT, "seconds a request's body may take after its headers"),
        ("--idle-timeout", IDLE_TIMEOUT, "seconds a kept-alive connection may wait idle"),
    )
    for flag, default, what in limits:
        sim.add_argument(
            flag, type=float, default=default, metavar="SECONDS", help=f"{what} ({default:g})"
        )
    sim.add_argument(
        "--max-body",
        type=int,
        default=SIM_MAX_BODY,
        metavar="BYTES",
        help="largest request body; larger ones get 413 (1 MiB)",
    )
    sim.add_argument("--certfile", help="serve TLS with this certificate (PEM)")
    sim.add_argument("--keyfile", help="private key of --certfile (PEM)")
    sim.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    add_paper_options(sim, default_state=None, with_faults=True)
    serve = commands.add_parser(
        "serve",
        help="run the web service: TopStepX with credentials in .env, else the embedded simulator",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument(
        "--token",
        help=f"bearer token clients must send (default {TOKEN_VARIABLE}, else a new one)",
    )
    serve.add_argument("--read-only", action="store_true", help="no order or position changes")
    serve.add_argument("--cors-origin", action="append", default=[], help="allowed CORS origin")
    serve.add_argument("--env-file", default=".env", help="settings file (default .env)")
    serve.add_argument("--profile", help="settings profile (default TS)")
    serve.add_argument("--sim-port", type=int, default=0, help="port of the embedded simulator")
    serve.add_argument(
        "--max-rate-wait",
        type=float,
        default=5.0,
        help="seconds a request may wait for the rate budget before answering 429 (default 5)",
    )
    _add_limits(serve)
    _add_trail(serve)
    serve.add_argument(
        "--rules",
        action="append",
        default=[],
        type=_account_rules,
        metavar="ACCOUNT=TYPE[:HIGH]",
        help=(
            "the firm's rules an account is held to, for GET /risk and the cockpit: TYPE is "
            f"{', '.join(PRESETS)}; HIGH its highest end-of-day balance so far (default: the "
            "balance the day opened at). The embedded simulator's accounts carry their own."
        ),
    )
    add_paper_options(serve, default_state=default_state_path())
    journal = commands.add_parser(
        "journal", help="what the service was asked to change, and what came of it"
    )
    _add_journal_file(journal)
    journal.add_argument("--limit", type=_positive, default=50, help="newest N (default 50)")
    journal.add_argument("--account", type=_positive, help="only this account id")
    journal.add_argument("--json", action="store_true", help="one JSON object per line")
    add_commands(commands)
    return parser


def _add_journal_file(parser: argparse._ActionsContainer) -> None:
    parser.add_argument(
        "--journal",
        type=Path,
        default=None,
        metavar="FILE",
        help="the order journal (default: journal.sqlite3 in the user data directory)",
    )


def _add_trail(serve: argparse.ArgumentParser) -> None:
    """The ``serve`` options of its log and audit trail."""
    group = serve.add_argument_group("log and audit trail")
    group.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        default="info",
        help="least severe log lines shown; each change is an info line (default info)",
    )
    group.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="log lines as text, or one JSON object per line (default text)",
    )
    _add_journal_file(group)
    group.add_argument(
        "--no-journal", action="store_true", help="keep no order journal (the log lines stay)"
    )


def _add_limits(serve: argparse.ArgumentParser) -> None:
    """The ``serve`` options bounding what callers may ask of the service."""
    serve.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="HOST",
        help="another name the Host header may carry (127.0.0.1, localhost, [::1] and --host are)",
    )
    serve.add_argument(
        "--max-body",
        type=_positive,
        default=64 * 1024,
        metavar="BYTES",
        help="largest request body; larger ones get 413 (default 65536)",
    )
    serve.add_argument(
        "--max-bars",
        type=_positive,
        default=MAX_BARS,
        help=f"most bars one request may gather; more need a limit (default {MAX_BARS})",
    )
    serve.add_argument(
        "--max-connections",
        type=_positive,
        default=200,
        help="connections and requests in flight before new requests get 503 (default 200)",
    )
    serve.add_argument(
        "--header-timeout",
        type=_seconds,
        default=10.0,
        metavar="SECONDS",
        help="time a connection has to send a request head before it is closed (default 10)",
    )


RuledAccount = tuple[int, AccountRules, Decimal | None]


def _account_rules(text: str) -> RuledAccount:
    """``ACCOUNT=TYPE[:HIGH]``: an account id, a preset's key and an optional balance high."""
    account, _, rest = text.partition("=")
    kind, _, high = rest.partition(":")
    if not account.strip().isdigit() or kind.strip().lower() not in PRESETS:
        raise argparse.ArgumentTypeError(
            f"expected ACCOUNT=TYPE[:HIGH] with TYPE one of {', '.join(PRESETS)}, got {text!r}"
        )
    try:
        balance_high = bounds.price(high.strip(), "HIGH") if high else None
    except bounds.InvalidValue as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return int(account), PRESETS[kind.strip().lower()], balance_high


def _rules_of(
    ruled: Sequence[RuledAccount],
) -> Callable[[int], tuple[AccountRules, Decimal | None] | None]:
    """The ``--rules`` given, as the service's lookup of an account's rules."""
    known = {account: (rules, high) for account, rules, high in ruled}
    return known.get


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 < value < 86_400:
        raise argparse.ArgumentTypeError(f"must be above 0 and below a day, got {text}")
    return value


def _banner(server: SimServer) -> str:
    config = server.config
    return "\n".join(
        [
            "TradeForge gateway simulator",
            f"  REST API     {server.api_url}",
            f"  user hub     {server.user_hub_url}",
            f"  market hub   {server.market_hub_url}",
            f"  username     {config.username}",
            f"  API key      {config.api_key}",
            *paper_summary(server.simulation),
            f"  seed {config.seed}, {config.rate:g} market updates/s per contract",
            "Ctrl-C stops it.",
        ]
    )


async def _run_sim(args: argparse.Namespace) -> None:
    context = None
    if args.certfile:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.certfile, args.keyfile)
    with open_paper_state(args) as store:
        await _serve_sim(args, context, store)


async def _serve_sim(
    args: argparse.Namespace, context: ssl.SSLContext | None, store: StateStore | None
) -> None:
    server = SimServer(
        paper_config(args, seed=args.seed, rate=args.rate),
        faults=paper_faults(args),
        store=store,
        host=args.host,
        port=args.port,
        ssl_context=context,
        hub_outbox=args.hub_outbox,
        header_timeout=args.header_timeout,
        body_timeout=args.body_timeout,
        idle_timeout=args.idle_timeout,
        max_body=args.max_body,
    )
    async with server:
        print(_banner(server), flush=True)
        await anyio.sleep_forever()


def _service_token(given: str | None) -> tuple[str, str]:
    """The service token and what the banner says of it: where it came from, never its value
    unless it was made for this run (the operator needs it then)."""
    if given:
        return given, "from --token"
    from_env = os.environ.get(TOKEN_VARIABLE)
    if from_env:
        return from_env, f"from {TOKEN_VARIABLE}"
    token = secrets.token_urlsafe(24)
    return token, f"new for this run: {token}"


def _dashboard_link(base: str, token: str, given: str | None) -> str:
    """The cockpit's address; with a token made for this run, the link carries it in its
    fragment (``#token=``), which the browser keeps to itself: no server log ever holds it."""
    if given or os.environ.get(TOKEN_VARIABLE):
        return f"{base}/   (enter the service token)"
    return f"{base}/#token={token}"


def _allowed_hosts(bind: str, extra: Sequence[str]) -> list[str]:
    """The loopback names, the bound address (unless it is a wildcard) and ``extra``."""
    from .service.app import LOCAL_HOSTS

    bound = [] if bind in ("0.0.0.0", "::", "") else [f"[{bind}]" if ":" in bind else bind]
    return list(dict.fromkeys([*LOCAL_HOSTS, *bound, *extra]))


def _print_journal(args: argparse.Namespace) -> None:
    """``tradeforge journal``: the newest entries, as a table or one JSON object per line."""
    import orjson

    from .service.journal import Journal, default_journal_path

    path = args.journal or default_journal_path()
    if not path.exists():
        raise ConfigurationError(f"no journal at {path} (serve keeps one there by default)")
    journal = Journal(path)
    try:
        entries = journal.entries(limit=args.limit, account_id=args.account)
    finally:
        journal.close()
    if args.json:
        for entry in entries:
            print(orjson.dumps(entry.to_json()).decode())
        return
    print(
        f"{'time (UTC)':<23} {'request':<28} {'status':>6} {'outcome':<8} {'account':>9} "
        f"{'order':>10} tag / detail"
    )
    for e in reversed(entries):  # oldest first, as a log reads
        note = e.custom_tag or ""
        if e.detail:
            note = f"{note} {e.detail}".strip()
        print(
            f"{e.time:%Y-%m-%d %H:%M:%S.%f}"[:23]
            + f" {e.method + ' ' + e.route:<28} {e.status:>6} {e.outcome:<8} "
            f"{e.account_id or '':>9} {e.order_id or '':>10} {note}"
        )


class LoginRefused(Exception):
    """The backend refused the configured credentials: ``serve`` does not start."""


async def _check_login(factory: Callable[[], TradingClient], backend: str) -> None:
    """Log in once before serving: refused credentials stop ``serve`` with a clear message; a
    backend that does not answer yet only warns (``/ready`` tells when it does)."""
    try:
        async with factory() as client:
            with anyio.fail_after(LOGIN_CHECK_TIMEOUT):
                await client.fresh_token()
    except AuthenticationError as exc:
        raise LoginRefused(f"{backend} refused the login: {exc}") from None
    except (TradeForgeError, OSError, TimeoutError) as exc:
        detail = str(exc) or type(exc).__name__
        log.warning("%s did not answer the login: %s", backend, detail)


async def _run_serve(args: argparse.Namespace) -> None:
    from tradeforge_proto.calls import RetryPolicy

    from .client import TradingClient
    from .service import create_app
    from .service.journal import Journal, default_journal_path
    from .service.logs import configure_logging
    from .service.serving import ServeLimits, build_server
    from .settings import load_settings

    configure_logging(args.log_level, args.log_format)
    profile = load_settings(args.env_file).profile(args.profile)
    token, token_note = _service_token(args.token)
    hosts = _allowed_hosts(args.host, args.allowed_host)
    # A web request waits briefly for the rate budget, then gets 429 and Retry-After.
    retry = RetryPolicy(max_rate_wait=args.max_rate_wait)
    async with AsyncExitStack() as stack:
        if not profile.in_process_simulator():
            backend = f"{profile.environment.upper()} as {profile.username}"
            if profile.uses_simulator:
                backend = f"the simulator at {profile.api_url}"

            def factory() -> TradingClient:
                return TradingClient.from_settings(profile, retry=retry)

            await _check_login(factory, backend)
            account_rules = _rules_of(args.rules)
        else:
            if args.rules:
                raise ConfigurationError(
                    "--rules is for TopStepX accounts: the embedded simulator's accounts carry "
                    "their own rules (--account 50K, ...)"
                )
            store = stack.enter_context(open_paper_state(args))
            sim = await stack.enter_async_context(
                SimServer(paper_config(args), port=args.sim_port, store=store)
            )
            backend = "\n".join(
                [f"the embedded simulator at {sim.api_url}", *paper_summary(sim.simulation)]
            )

            def factory() -> TradingClient:
                return TradingClient.for_simulator(
                    sim.api_url, sim.config.username, sim.config.api_key, retry=retry
                )

            account_rules = rules_lookup(sim.simulation)

        journal_path = None if args.no_journal else (args.journal or default_journal_path())
        journal = None if journal_path is None else Journal(journal_path)
        if journal is not None:
            stack.callback(journal.close)
        app = create_app(
            factory,
            journal=journal,
            token=token,
            read_only=args.read_only,
            cors_origins=args.cors_origin,
            max_body=args.max_body,
            max_bars=args.max_bars,
            allowed_hosts=hosts,
            account_rules=account_rules,
        )
        limits = ServeLimits(
            header_timeout=args.header_timeout, max_connections=args.max_connections
        )
        server = build_server(app, host=args.host, port=args.port, limits=limits)
        base = f"http://{args.host}:{args.port}"
        print(
            "\n".join(
                [
                    "TradeForge service",
                    f"  dashboard  {_dashboard_link(base, token, args.token)}",
                    f"  API docs   {base}/docs   (Authorize with the service token)",
                    f"  token      {token_note}",
                    f"  backend    {backend}",
                    f"  mode       {'read-only' if args.read_only else 'trading enabled'}",
                    f"  journal    {journal_path or 'off (--no-journal)'}",
                    f"  hosts      {', '.join(hosts)} (--allowed-host adds more)",
                    "Ctrl-C stops it.",
                ]
            ),
            flush=True,
        )
        await server.serve()


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``tradeforge`` command."""
    args = _parser().parse_args(argv)
    if args.command in TRADING_COMMANDS:
        sys.exit(run(args))
    try:
        if args.command == "journal":
            _print_journal(args)
        elif args.command == "sim":
            if args.rate <= 0:
                sys.exit("--rate must be positive")
            for flag in ("header_timeout", "body_timeout", "idle_timeout", "max_body"):
                if not getattr(args, flag) > 0:
                    sys.exit(f"--{flag.replace('_', '-')} must be positive")
            anyio.run(_run_sim, args, backend=args.backend)
        else:
            anyio.run(_run_serve, args)
    except KeyboardInterrupt:
        print("stopped", flush=True)
    except (ConfigurationError, StoreError, LoginRefused) as exc:
        sys.exit(f"tradeforge: {exc}")


if __name__ == "__main__":
    main()
