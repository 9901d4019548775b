"""What the trading commands print: JSON lines for programs, ``rich`` tables and a live view for
people. Both forms show times in ISO 8601 UTC ending in ``Z`` and prices as exact decimals."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from types import TracebackType
from typing import Any, Final, Generic, Self, TextIO, TypeVar

import attrs
import orjson
from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from tradeforge_proto.core.book import BookSnapshot, Level
from tradeforge_proto.core.events import (
    Connected,
    Disconnected,
    FeedGap,
    QuoteUpdated,
    Reconnecting,
    Resubscribed,
    StreamEvent,
)
from tradeforge_proto.core.models import Account, Bar, Contract, Order, Position, Quote

T = TypeVar("T")
PIPE_WIDTH: Final = 200  # columns of a table written to a file or a pipe: nothing is cut short


def iso(value: datetime) -> str:
    """``value`` in UTC as ISO 8601 ending in ``Z``, at the precision it carries."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def decimal_text(value: Decimal) -> str:
    """The exact digits of ``value``, without an exponent (``6173.25``, ``0.0001``)."""
    return format(value, "f")


def plain(value: Any) -> Any:
    """``value`` as JSON values: models become objects, decimals strings, enums their names,
    times ISO 8601 text ending in ``Z``."""
    if isinstance(value, enum.Enum):
        return value.name
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, datetime):
        return iso(value)
    if attrs.has(type(value)):
        return {
            field.name: plain(getattr(value, field.name)) for field in attrs.fields(type(value))
        }
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return str(value)


def json_line(value: Any) -> str:
    """One JSON object on one line."""
    return orjson.dumps(plain(value)).decode()


def cell(value: object) -> str:
    """A value as a table shows it: times to the second, decimals exact, enums by name."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, datetime):
        return f"{value.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"
    return str(value)


@attrs.frozen
class Column(Generic[T]):
    """One column of a table: its header, how a row gives its value, and its alignment."""

    header: str
    value: Callable[[T], object]
    numeric: bool = False


def table(
    rows: Iterable[T],
    columns: Sequence[Column[T]],
    *,
    title: str | None = None,
    caption: str | None = None,
) -> Table:
    """A table of ``rows``, one line each."""
    shown = Table(
        title=title,
        caption=caption,
        box=box.SIMPLE_HEAD,
        title_justify="left",
        caption_justify="left",
    )
    for column in columns:
        shown.add_column(column.header, justify="right" if column.numeric else "left")
    for row in rows:
        shown.add_row(*(cell(column.value(row)) for column in columns))
    return shown


def fields(pairs: Iterable[tuple[str, object]], *, title: str | None = None) -> Table:
    """A two-column table of names and values, for one record (a quote, a placed order)."""
    shown = Table(title=title, box=box.SIMPLE, show_header=False, title_justify="left")
    shown.add_column("field", style="bold")
    shown.add_column("value")
    for name, value in pairs:
        shown.add_row(name, cell(value))
    return shown


class Output:
    """Where a command writes: JSON lines with ``--json``, else tables on a ``rich`` console."""

    def __init__(self, stream: TextIO, *, json: bool) -> None:
        self.stream = stream
        self.json = json
        interactive = stream.isatty()
        self.console = Console(
            file=stream,
            width=None if interactive else PIPE_WIDTH,
            highlight=False,
            markup=False,  # names and tags are shown as they are, brackets and colons too
            emoji=False,
            soft_wrap=False,
        )

    def record(self, value: Any, human: Callable[[], RenderableType | str]) -> None:
        """One result: a JSON line, or what ``human`` renders."""
        if self.json:
            self.line(value)
        else:
            self.console.print(human())

    def records(
        self, values: Sequence[Any], human: Callable[[], RenderableType], *, empty: str
    ) -> None:
        """A list: one JSON line per item (none for an empty list), or a table (or ``empty``)."""
        if self.json:
            for value in values:
                self.line(value)
        elif values:
            self.console.print(human())
        else:
            self.console.print(empty)

    def line(self, value: Any) -> None:
        """Write one JSON line now (streams write one per update)."""
        self.stream.write(json_line(value) + "\n")
        self.stream.flush()


def quote_pairs(contract: Contract, quote: Quote) -> list[tuple[str, object]]:
    """The fields of a quote worth reading, in the order a trader reads them."""
    return [
        ("contract", f"{contract.name} ({contract.id})"),
        ("last", quote.last_price),
        ("bid", quote.best_bid),
        ("ask", quote.best_ask),
        ("change", quote.change),
        ("change %", quote.change_percent),
        ("open", quote.open),
        ("high", quote.high),
        ("low", quote.low),
        ("volume", quote.volume),
        ("time", quote.timestamp or quote.last_updated),
    ]


def book_table(book: BookSnapshot | None, depth: int) -> Table:
    """The ladder: bids on the left (highest first), asks on the right (lowest first)."""
    shown = Table(box=box.SIMPLE_HEAD, title="book", title_justify="left")
    for header in ("bid size", "bid", "ask", "ask size"):
        shown.add_column(header, justify="right")
    bids: Sequence[Level] = () if book is None else book.bids[:depth]
    asks: Sequence[Level] = () if book is None else book.asks[:depth]
    for index in range(max(len(bids), len(asks))):
        bid = bids[index] if index < len(bids) else None
        ask = asks[index] if index < len(asks) else None
        shown.add_row(
            "" if bid is None else str(bid.volume),
            Text("" if bid is None else decimal_text(bid.price), style="green"),
            Text("" if ask is None else decimal_text(ask.price), style="red"),
            "" if ask is None else str(ask.volume),
        )
    return shown


def stream_status(event: StreamEvent, current: str) -> str:
    """What the live view says of the market stream after ``event``."""
    if isinstance(event, Disconnected):
        return f"disconnected: {event.reason}" + (", reconnecting" if event.will_reconnect else "")
    if isinstance(event, Reconnecting):
        return f"reconnecting (attempt {event.attempt}, in {event.delay:.1f} s)"
    if isinstance(event, Connected | Resubscribed):
        return "live"
    if isinstance(event, FeedGap):
        return f"live again after a gap of {event.resumed_at - event.lost_at:.1f} s"
    return current


class WatchScreen:
    """The view of ``watch``: the quote, the book's top levels and the stream's state, redrawn
    in place on a terminal (at most 8 times a second) and written once at the end elsewhere."""

    def __init__(self, console: Console, contract: Contract, depth: int) -> None:
        self.console = console
        self.contract = contract
        self.depth = depth
        self.quote: Quote | None = None
        self.book: BookSnapshot | None = None
        self.status = "live"
        self.updates = 0
        self._live = Live(self.render(), console=console, refresh_per_second=8)

    def __enter__(self) -> Self:
        self._live.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._live.stop()
        if not self.console.is_terminal:
            self.console.line()  # on a terminal, Live ends its last line itself

    def show(self, event: StreamEvent, book: BookSnapshot | None, updates: int) -> None:
        """Take in one event of the stream and the book as it now stands."""
        if isinstance(event, QuoteUpdated):
            self.quote = event.quote
        else:
            self.status = stream_status(event, self.status)
        self.book = book
        self.updates = updates
        self._live.update(self.render())

    def render(self) -> RenderableType:
        """The view as it stands."""
        contract = self.contract
        parts: list[RenderableType] = []
        if self.quote is None:
            parts.append(Text(f"{contract.name} ({contract.id}): waiting for the first quote"))
        else:
            parts.append(fields(quote_pairs(contract, self.quote), title="quote"))
        parts.append(book_table(self.book, self.depth))
        parts.append(Text(f"{self.status}; {self.updates} updates; Ctrl-C stops", style="dim"))
        return Group(*parts)


def book_record(book: BookSnapshot, depth: int) -> dict[str, Any]:
    """A book update as JSON values."""
    return {
        "event": "book",
        "contract_id": book.contract_id,
        "bids": [plain(level) for level in book.bids[:depth]],
        "asks": [plain(level) for level in book.asks[:depth]],
        "timestamp": plain(book.timestamp),
    }


def quote_record(quote: Quote) -> dict[str, Any]:
    """A quote update as JSON values."""
    return {"event": "quote", **plain(quote)}


@attrs.frozen
class Marked:
    """A position with the price it is marked at and its open P&L there (None: no mark)."""

    position: Position
    mark: Decimal | None
    unrealized_pnl: Decimal | None

    def record(self) -> dict[str, Any]:
        """The position as JSON values, with ``mark`` and ``unrealized_pnl``."""
        return {
            **plain(self.position),
            "mark": plain(self.mark),
            "unrealized_pnl": plain(self.unrealized_pnl),
        }


ACCOUNT_COLUMNS: Final[tuple[Column[Account], ...]] = (
    Column("id", lambda a: a.id, numeric=True),
    Column("name", lambda a: a.name),
    Column("balance", lambda a: a.balance, numeric=True),
    Column("can trade", lambda a: a.can_trade),
    Column("simulated", lambda a: a.simulated),
)
CONTRACT_COLUMNS: Final[tuple[Column[Contract], ...]] = (
    Column("id", lambda c: c.id),
    Column("name", lambda c: c.name),
    Column("description", lambda c: c.description),
    Column("tick size", lambda c: c.tick_size, numeric=True),
    Column("tick value", lambda c: c.tick_value, numeric=True),
    Column("active", lambda c: c.active),
)
BAR_COLUMNS: Final[tuple[Column[Bar], ...]] = (
    Column("time", lambda b: b.time),
    Column("open", lambda b: b.open, numeric=True),
    Column("high", lambda b: b.high, numeric=True),
    Column("low", lambda b: b.low, numeric=True),
    Column("close", lambda b: b.close, numeric=True),
    Column("volume", lambda b: b.volume, numeric=True),
)
ORDER_COLUMNS: Final[tuple[Column[Order], ...]] = (
    Column("id", lambda o: o.id, numeric=True),
    Column("created", lambda o: o.created_at),
    Column("contract", lambda o: o.contract_id),
    Column("side", lambda o: o.side),
    Column("type", lambda o: o.type),
    Column("size", lambda o: o.size, numeric=True),
    Column("filled", lambda o: o.fill_volume, numeric=True),
    Column("limit", lambda o: o.limit_price, numeric=True),
    Column("stop", lambda o: o.stop_price, numeric=True),
    Column("status", lambda o: o.status),
    Column("custom tag", lambda o: o.custom_tag),
)
POSITION_COLUMNS: Final[tuple[Column[Marked], ...]] = (
    Column("contract", lambda m: m.position.contract_display_name or m.position.contract_id),
    Column("side", lambda m: m.position.side),
    Column("size", lambda m: m.position.size, numeric=True),
    Column("average price", lambda m: m.position.average_price, numeric=True),
    Column("mark", lambda m: m.mark, numeric=True),
    Column("open P&L", lambda m: m.unrealized_pnl, numeric=True),
    Column("opened", lambda m: m.position.created_at),
)
