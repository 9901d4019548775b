"""The paper exchange's command-line options, shared by ``tradeforge sim`` and ``tradeforge serve``.

Accounts by type, bracket mode, trading hours and holidays, the flatten time, the state file,
and (for ``sim``) standing faults. The options are parsed here into a ``SimConfig``, a
``Faults`` and an open ``StateStore``; the commands only pass them on.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Iterator
from datetime import date, time
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from tradeforge_proto.core.errors import ConfigurationError
from tradeforge_proto.rules import AccountRules, Hours, TradingCalendar

from .accounts import ACCOUNT_TYPES, accounts_of
from .engine import SimAccount
from .faults import Faults
from .simulation import SimConfig, Simulation
from .store import StateStore

DEFAULT_ACCOUNTS: Final = ("PRACTICE-150K", "PRACTICE-50K")
STATE_FILE: Final = "paper-exchange.db"


def default_state_path() -> Path:
    """Where the service's embedded simulator keeps its state: the user's data directory."""
    import platformdirs

    return Path(platformdirs.user_data_dir("tradeforge", appauthor=False)) / STATE_FILE


def _account_type(text: str) -> str:
    name = text.strip().upper()
    if name not in ACCOUNT_TYPES:
        choices = ", ".join(ACCOUNT_TYPES)
        raise argparse.ArgumentTypeError(f"unknown account type {text!r}; choose from {choices}")
    return name


def _holiday(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"a holiday is a date like 2026-12-25, got {text!r}"
        ) from None


def _flatten_time(text: str) -> time | None:
    if text.lower() == "off":
        return None
    try:
        return time.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a time like 15:10 or 'off', got {text!r}") from None


def _share(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _delay(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 60:
        raise argparse.ArgumentTypeError(f"must be between 0 and 60 seconds, got {text}")
    return value


def add_paper_options(
    parser: argparse.ArgumentParser, *, default_state: Path | None, with_faults: bool = False
) -> None:
    """Add the paper exchange's options; ``default_state`` None keeps state in memory."""
    group = parser.add_argument_group("paper exchange")
    group.add_argument(
        "--account",
        action="append",
        type=_account_type,
        metavar="TYPE",
        help="add an account of this type (repeat for several): "
        f"{', '.join(ACCOUNT_TYPES)}; 50K/100K/150K are Trading Combines held to the firm's "
        f"rules (default: {' and '.join(DEFAULT_ACCOUNTS)}, without rules)",
    )
    group.add_argument(
        "--bracket-mode",
        choices=("position", "auto-oco"),
        help="every account's bracket setting, those in the state file too: position brackets "
        "refuse bracket orders, auto-oco attaches them to the entry (default: position for new "
        "accounts, the kept setting for restored ones)",
    )
    group.add_argument(
        "--hours",
        choices=[hours.value for hours in Hours],
        default=Hours.ALWAYS.value,
        help="always: the market never closes (default); cme: CME Globex hours, Sunday to "
        "Friday 17:00-16:00 Chicago with the daily halt: orders outside them refused, no market "
        "data, gaps in intraday history",
    )
    group.add_argument(
        "--holiday",
        action="append",
        type=_holiday,
        default=[],
        metavar="DATE",
        help="a trading day without a session under --hours cme (repeat for several)",
    )
    group.add_argument(
        "--flatten-time",
        type=_flatten_time,
        default=time(15, 10),
        metavar="HH:MM",
        help="under --hours cme, Chicago time at which every position is closed and orders that "
        "add risk are refused until the next session (default 15:10; 'off' disables it)",
    )
    where = "in memory only" if default_state is None else str(default_state)
    group.add_argument(
        "--state",
        type=Path,
        default=default_state,
        metavar="PATH",
        help=f"SQLite file keeping accounts, orders, positions, fills and rule state across "
        f"restarts (default: {where})",
    )
    group.add_argument("--no-state", action="store_true", help="keep nothing on disk for this run")
    group.add_argument(
        "--fresh", action="store_true", help="start the state file over, forgetting everything"
    )
    if with_faults:
        faults = parser.add_argument_group("faults")
        faults.add_argument(
            "--drop-probability",
            type=_share,
            default=0.0,
            metavar="P",
            help="chance of dropping a hub connection at each push (default 0)",
        )
        faults.add_argument(
            "--rest-delay",
            type=_delay,
            default=0.0,
            metavar="SECONDS",
            help="delay before each REST answer (default 0)",
        )
        faults.add_argument(
            "--connect-delay",
            type=_delay,
            default=0.0,
            metavar="SECONDS",
            help="delay before each new connection is served (default 0)",
        )


def _accounts(args: argparse.Namespace) -> tuple[SimAccount, ...]:
    names = args.account or DEFAULT_ACCOUNTS
    return accounts_of(names, auto_oco_brackets=args.bracket_mode == "auto-oco")


def paper_config(args: argparse.Namespace, **options: Any) -> SimConfig:
    """The simulation the options describe; ``options`` are further ``SimConfig`` fields."""
    try:
        calendar = TradingCalendar(
            Hours(args.hours), holidays=args.holiday, flatten_time=args.flatten_time
        )
    except ValueError as exc:
        raise ConfigurationError(f"--flatten-time: {exc}") from None
    brackets = None if args.bracket_mode is None else args.bracket_mode == "auto-oco"
    return SimConfig(
        accounts=_accounts(args), calendar=calendar, auto_oco_brackets=brackets, **options
    )


def paper_faults(args: argparse.Namespace) -> Faults:
    """The standing faults the options ask for."""
    return Faults(
        drop_probability=args.drop_probability,
        rest_delay=args.rest_delay,
        connect_delay=args.connect_delay,
    )


def _identity(account: SimAccount) -> tuple[int, str, AccountRules | None]:
    return account.id, account.name, account.rules


@contextlib.contextmanager
def open_paper_state(args: argparse.Namespace) -> Iterator[StateStore | None]:
    """The state file the options name, open (cleared with ``--fresh``), or None for memory.

    A file holding other accounts than ``--account`` asks for is refused, so a changed flag never
    quietly drops or keeps accounts; without ``--account`` the file's accounts are used.
    """
    if args.no_state or args.state is None:
        yield None
        return
    with StateStore(args.state) as store:
        if args.fresh:
            store.clear()
        saved = store.load()
        if saved is not None and args.account:
            wanted = [_identity(account) for account in _accounts(args)]
            kept = [_identity(account) for account in saved.accounts]
            if wanted != kept:
                names = ", ".join(account.name for account in saved.accounts)
                raise ConfigurationError(
                    f"{args.state} holds the accounts {names}, not those --account asks for; "
                    "add --fresh to start over, or leave out --account to go on with them"
                )
        yield store


def _rules_text(rules: AccountRules | None) -> str:
    if rules is None:
        return "practice, no rules"
    parts = [rules.name, f"${rules.max_loss:,} trailing max loss"]
    if rules.daily_loss_limit is not None:
        parts.append(f"${rules.daily_loss_limit:,} daily loss")
    if rules.max_contracts is not None:
        parts.append(f"{rules.max_contracts.normalize():f} contracts")
    return ", ".join(parts)


def paper_summary(simulation: Simulation) -> list[str]:
    """Banner lines: each account with its balance and rules, the hours and the state file."""
    saved = simulation.exchange.saved_state()
    balances = {a.id: a.balance for a in simulation.exchange.accounts(only_active=False)}
    lines = [
        f"  account      {account.id} {account.name} "
        f"(${balances[account.id].quantize(Decimal('0.01')):,}; {_rules_text(account.rules)})"
        for account in saved.accounts
    ]
    calendar = simulation.config.calendar
    hours = "always open" if calendar.hours is Hours.ALWAYS else "CME Globex, Chicago time"
    store = simulation.store
    lines.append(f"  hours        {hours}")
    lines.append(f"  state        {store.path if store is not None else 'in memory only'}")
    return lines


def rules_lookup(simulation: Simulation) -> Callable[[int], tuple[AccountRules, Decimal] | None]:
    """For the service's ``GET /risk``: an account's rules and its highest end-of-day balance
    as this paper exchange keeps them, or None for an account without rules."""
    exchange = simulation.exchange

    def rules_of(account_id: int) -> tuple[AccountRules, Decimal] | None:
        rules = exchange.account_rules(account_id)
        state = exchange.rule_state(account_id)
        return None if rules is None or state is None else (rules, state.eod_high)

    return rules_of
