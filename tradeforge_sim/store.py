"""The simulator's state on disk: one SQLite file (WAL) holding what the paper exchange is made of.

Accounts (with their rules), rules states, orders (custom tags among them), open positions,
fills and the id counters each live in their own table as JSON rows; a change is written in one
transaction, so a crash leaves the file as it was after the last complete change. The file
carries a schema version; a file of another version is refused rather than misread, and a file
another running simulator holds is refused too.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Final, Self, TypeVar

import cattrs

from tradeforge_proto.core.models import Fill
from tradeforge_proto.rules import AccountState, ContractWeights

from .engine import Changes, Counters, OrderRecord, PositionRecord, SavedState, SimAccount

SCHEMA_VERSION: Final = 1
LOCK_WAIT: Final = 0.5  # seconds to wait for a file another process holds before refusing it
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (id INTEGER PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rule_states (account_id INTEGER PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS orders (
    id INTEGER PRIMARY KEY, account_id INTEGER NOT NULL, data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS positions (
    account_id INTEGER NOT NULL, contract_id TEXT NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (account_id, contract_id)
);
CREATE TABLE IF NOT EXISTS fills (
    id INTEGER PRIMARY KEY, account_id INTEGER NOT NULL, data TEXT NOT NULL
);
"""
_TABLES: Final = ("accounts", "rule_states", "orders", "positions", "fills", "meta")
T = TypeVar("T")


class StoreError(Exception):
    """The state file cannot be used: another schema version, or not a simulator state file."""


def _converter() -> cattrs.Converter:
    converter = cattrs.Converter()
    converter.register_unstructure_hook(Decimal, str)
    converter.register_structure_hook(Decimal, lambda value, _: Decimal(value))
    converter.register_unstructure_hook(Fraction, str)
    converter.register_structure_hook(Fraction, lambda value, _: Fraction(value))
    converter.register_unstructure_hook(datetime, datetime.isoformat)
    converter.register_structure_hook(datetime, lambda value, _: datetime.fromisoformat(value))
    converter.register_unstructure_hook(date, date.isoformat)
    converter.register_structure_hook(date, lambda value, _: date.fromisoformat(value))
    converter.register_structure_hook(
        ContractWeights,
        lambda value, _: ContractWeights(
            {key: Decimal(weight) for key, weight in value["entries"]}, Decimal(value["default"])
        ),
    )
    return converter


_CONVERTER: Final = _converter()


def _encode(value: object) -> str:
    return json.dumps(_CONVERTER.unstructure(value), separators=(",", ":"))


def _decode(text: str, kind: type[T]) -> T:
    return _CONVERTER.structure(json.loads(text), kind)


class StateStore:
    """A simulator state file; ``with StateStore(path) as store:`` opens and closes it."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=LOCK_WAIT
        )
        try:
            # One simulator per file: the first write takes the lock until the file is closed.
            self._db.execute("PRAGMA locking_mode=EXCLUSIVE")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._open_schema()
        except sqlite3.OperationalError as exc:
            self._db.close()
            if "locked" in str(exc):
                raise StoreError(
                    f"{self.path} is in use by another running simulator; give this one its "
                    "own --state file, or --no-state"
                ) from exc
            raise StoreError(f"{self.path} is not a simulator state file: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise StoreError(f"{self.path} is not a simulator state file: {exc}") from exc
        except StoreError:
            self._db.close()
            raise

    def _open_schema(self) -> None:
        with self._transaction():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            row = self._db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if row is None:
                self._db.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema', ?)", (str(SCHEMA_VERSION),)
                )
            elif row[0] != str(SCHEMA_VERSION):
                raise StoreError(
                    f"{self.path} has schema version {row[0]}, this simulator reads version "
                    f"{SCHEMA_VERSION}; start over with --fresh or use another --state file"
                )

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the file; nothing is lost, every change was committed as it was written."""
        self._db.close()

    def clear(self) -> None:
        """Forget every account, order, position and fill (the schema stays)."""
        with self._transaction():
            self._delete_all()

    def _delete_all(self) -> None:
        for table in _TABLES[:-1]:
            self._db.execute(f"DELETE FROM {table}")
        self._db.execute("DELETE FROM meta WHERE key != 'schema'")

    def load(self) -> SavedState | None:
        """The state kept in the file; ``None`` when it holds no accounts yet."""
        rows = self._rows
        accounts = tuple(_decode(data, SimAccount) for data in rows("accounts", "id"))
        if not accounts:
            return None
        counters_row = self._db.execute("SELECT value FROM meta WHERE key = 'counters'").fetchone()
        if counters_row is None:
            raise StoreError(f"{self.path} holds accounts but no id counters")
        ruled = self._db.execute("SELECT account_id, data FROM rule_states ORDER BY account_id")
        return SavedState(
            accounts=accounts,
            rule_states={account_id: _decode(data, AccountState) for account_id, data in ruled},
            orders=tuple(_decode(data, OrderRecord) for data in rows("orders", "id")),
            positions=tuple(
                _decode(data, PositionRecord) for data in rows("positions", "account_id")
            ),
            fills=tuple(_decode(data, Fill) for data in rows("fills", "id")),
            counters=_decode(counters_row[0], Counters),
        )

    def _rows(self, table: str, order: str) -> list[str]:
        query = f"SELECT data FROM {table} ORDER BY {order}"
        return [data for (data,) in self._db.execute(query)]

    def save(self, state: SavedState) -> None:
        """Write a whole state in place of whatever the file held, in one transaction: a failure
        leaves the file as it was."""
        whole = Changes(
            accounts=state.accounts,
            rule_states=state.rule_states,
            orders=state.orders,
            positions=state.positions,
            closed_positions=(),
            fills=state.fills,
            counters=state.counters,
        )
        with self._transaction():
            self._delete_all()
            self._write_rows(whole)

    def write(self, changes: Changes) -> None:
        """Apply one batch of changes in a single transaction."""
        with self._transaction():
            self._write_rows(changes)

    def _write_rows(self, changes: Changes) -> None:
        upsert = self._upsert
        for account in changes.accounts:
            upsert("accounts", {"id": account.id, "data": _encode(account)})
        for account_id, state in changes.rule_states.items():
            upsert("rule_states", {"account_id": account_id, "data": _encode(state)})
        for order in changes.orders:
            upsert(
                "orders",
                {"id": order.id, "account_id": order.account_id, "data": _encode(order)},
            )
        for held in changes.positions:
            upsert(
                "positions",
                {
                    "account_id": held.account_id,
                    "contract_id": held.contract.id,
                    "data": _encode(held),
                },
            )
        for account_id, contract_id in changes.closed_positions:
            self._db.execute(
                "DELETE FROM positions WHERE account_id = ? AND contract_id = ?",
                (account_id, contract_id),
            )
        for fill in changes.fills:
            upsert("fills", {"id": fill.id, "account_id": fill.account_id, "data": _encode(fill)})
        upsert("meta", {"key": "counters", "value": _encode(changes.counters)})

    def _upsert(self, table: str, row: Mapping[str, object]) -> None:
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        self._db.execute(
            f"INSERT OR REPLACE INTO {table} ({columns}) VALUES ({marks})",
            tuple(row.values()),
        )


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK when the block fails."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._db.execute("COMMIT" if kind is None else "ROLLBACK")
