"""The order journal: every state-changing request and its outcome, kept in SQLite.

One row per request (placement, change, cancel, close), written once its answer went out, so a
trader can tell afterwards what was sent in their name and what came of it. Never a token: the
rows hold only the fields listed in ``JournalEntry``. The file is bounded (``max_rows``, oldest
dropped first) and readable by ``GET /journal`` and ``tradeforge journal``.
"""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

import attrs

JOURNAL_FILE: Final = "journal.sqlite3"
MAX_ROWS: Final = 100_000
MAX_READ: Final = 1_000
Outcome = Literal["ok", "refused", "unknown", "error"]

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    time TEXT NOT NULL,
    client TEXT NOT NULL,
    method TEXT NOT NULL,
    route TEXT NOT NULL,
    status INTEGER NOT NULL,
    latency_ms REAL NOT NULL,
    outcome TEXT NOT NULL,
    account_id INTEGER,
    contract_id TEXT,
    order_id INTEGER,
    custom_tag TEXT,
    detail TEXT
)
"""
_COLUMNS: Final = (
    "time",
    "client",
    "method",
    "route",
    "status",
    "latency_ms",
    "outcome",
    "account_id",
    "contract_id",
    "order_id",
    "custom_tag",
    "detail",
)


def default_journal_path() -> Path:
    """The journal beside the paper exchange's state: the user's data directory."""
    import platformdirs

    return Path(platformdirs.user_data_dir("tradeforge", appauthor=False)) / JOURNAL_FILE


def outcome_of(status: int) -> Outcome:
    """What an answer's status says happened: done, refused, unknown (sent, no answer), error."""
    if status < 400:
        return "ok"
    if status == 503:
        return "unknown"  # the service's answer when a change was sent and its outcome is unknown
    return "refused" if status < 500 else "error"


@attrs.frozen(slots=True)
class JournalEntry:
    """One state-changing request: when, from where, what, for which account, and its outcome."""

    time: datetime
    client: str
    method: str
    route: str
    status: int
    latency_ms: float
    outcome: Outcome
    account_id: int | None = None
    contract_id: str | None = None
    order_id: int | None = None
    custom_tag: str | None = None
    detail: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The entry as JSON values (the time in ISO 8601, UTC)."""
        values = attrs.asdict(self)
        values["time"] = self.time.isoformat().replace("+00:00", "Z")
        return values


class Journal:
    """The SQLite journal at ``path`` (None: kept in memory, for one run)."""

    def __init__(self, path: Path | None, *, max_rows: int = MAX_ROWS) -> None:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._max_rows = max_rows
        self._lock = threading.Lock()
        self._db = sqlite3.connect(":memory:" if path is None else path, check_same_thread=False)
        with self._lock, self._db:
            if path is not None:
                self._db.execute("PRAGMA journal_mode=WAL")  # readers never block the service
            self._db.execute(_SCHEMA)
        self._writes = 0

    def record(self, entry: JournalEntry) -> None:
        """Append one entry; the oldest rows go once the journal holds ``max_rows``."""
        row = entry.to_json()
        with self._lock, self._db:
            self._db.execute(
                f"INSERT INTO journal ({', '.join(_COLUMNS)}) "
                f"VALUES ({', '.join('?' for _ in _COLUMNS)})",
                [row[name] for name in _COLUMNS],
            )
            self._writes += 1
            if self._writes % 1000 == 0:
                self._db.execute(
                    "DELETE FROM journal WHERE seq <= (SELECT MAX(seq) FROM journal) - ?",
                    (self._max_rows,),
                )

    def entries(
        self, *, limit: int = 100, account_id: int | None = None, since: datetime | None = None
    ) -> list[JournalEntry]:
        """The newest entries first, at most ``limit`` (up to MAX_READ), filtered as asked."""
        limit = max(1, min(limit, MAX_READ))
        where: list[str] = []
        params: list[object] = []
        if account_id is not None:
            where.append("account_id = ?")
            params.append(account_id)
        if since is not None:
            where.append("time >= ?")
            params.append(since.astimezone(UTC).isoformat().replace("+00:00", "Z"))
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        query = f"SELECT {', '.join(_COLUMNS)} FROM journal{clause} ORDER BY seq DESC LIMIT ?"
        with self._lock:
            rows = self._db.execute(query, [*params, limit]).fetchall()
        return [_entry(row) for row in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _entry(row: tuple[Any, ...]) -> JournalEntry:
    values = dict(zip(_COLUMNS, row, strict=True))
    values["time"] = datetime.fromisoformat(values["time"].replace("Z", "+00:00"))
    return JournalEntry(**values)
