"""Trigger-based capture for SQLite: the changelog schema and the trigger SQL (pure),
plus install / uninstall / verify against a connection (the I/O edge).

Every captured table gets three AFTER triggers. Each writes one row into
``strangler_changelog`` holding the full before and/or after image as a JSON object
(``json_object``), the operation (``c``/``u``/``d``), the transaction id of the writing
transaction (see :mod:`cdc.sources.sqlite.txids`) and the time in ms. The changelog id is
``AUTOINCREMENT``: SQLite has one writer at a time and never reuses an id, so id order is
commit order, with no gaps inside a transaction and none left by pruning.

BLOB values cannot be held by JSON; they are written as ``{"$blob": "<HEX>"}`` so a
blob in any column is recognised (and never breaks the monolith's write).

The column metadata (``Column.kind``, ``Column.scale``) is stored next to the triggers
in ``strangler_capture``, so the relay renders values like PostgreSQL would without
importing the monolith.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cdc.errors import SourceError, TableNotCapturable

__all__ = [
    "CHANGELOG",
    "META",
    "TXN",
    "CapturedTable",
    "Column",
    "changelog_position",
    "image_sql",
    "install",
    "install_sql",
    "installed_tables",
    "introspect",
    "quote",
    "schema_sql",
    "trigger_names",
    "trigger_sql",
    "uninstall",
    "uninstall_sql",
    "verify",
]

CHANGELOG = "strangler_changelog"
TXN = "strangler_txn"
META = "strangler_capture"
_PREFIX = "strangler_cdc_"


@dataclass(frozen=True, slots=True)
class Column:
    """``Column("price", kind="decimal", precision=10, scale=2, nullable=False)`` — kinds
    are those of :mod:`.render`; ``declared`` is the SQLite declared type."""

    name: str
    kind: str = "auto"
    scale: int | None = None
    precision: int | None = None
    nullable: bool = True
    declared: str = ""

    def to_list(self) -> list[Any]:
        return [self.name, self.kind, self.scale, self.precision, self.nullable, self.declared]


@dataclass(frozen=True, slots=True)
class CapturedTable:
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.columns:
            raise TableNotCapturable(f"table {self.name!r} has no columns")
        if not self.primary_key:
            raise TableNotCapturable(
                f"table {self.name!r} has no primary key; capture needs one to key its events"
            )
        names = {c.name for c in self.columns}
        missing = [k for k in self.primary_key if k not in names]
        if missing:
            raise TableNotCapturable(f"table {self.name!r}: key columns {missing} not in columns")

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def to_json(self) -> str:
        return json.dumps(
            {
                "columns": [c.to_list() for c in self.columns],
                "primary_key": list(self.primary_key),
            }
        )

    @classmethod
    def from_json(cls, name: str, text: str) -> CapturedTable:
        data = json.loads(text)
        return cls(
            name,
            tuple(Column(*c) for c in data["columns"]),
            tuple(data["primary_key"]),
        )


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def schema_sql() -> list[str]:
    """The changelog, the transaction counter and the capture metadata tables."""
    return [
        f"CREATE TABLE IF NOT EXISTS {CHANGELOG} ("
        " id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " txid INTEGER NOT NULL,"
        ' "table" TEXT NOT NULL,'
        " op TEXT NOT NULL CHECK (op IN ('c', 'u', 'd')),"
        " before TEXT,"
        " after TEXT,"
        " ts INTEGER NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS {TXN} ("
        " id INTEGER PRIMARY KEY CHECK (id = 1), txid INTEGER NOT NULL)",
        f"INSERT OR IGNORE INTO {TXN} (id, txid) VALUES (1, 0)",
        f"CREATE TABLE IF NOT EXISTS {META} (table_name TEXT PRIMARY KEY, spec TEXT NOT NULL)",
    ]


def _value(ref: str) -> str:
    return f"CASE typeof({ref}) WHEN 'blob' THEN json_object('$blob', hex({ref})) ELSE {ref} END"


def image_sql(table: CapturedTable, row: str) -> str:
    """The ``json_object(...)`` of a row; ``row`` is ``NEW``, ``OLD`` or a quoted table."""
    pairs = ", ".join(
        f"{_literal(c.name)}, {_value(f'{row}.{quote(c.name)}')}" for c in table.columns
    )
    return f"json_object({pairs})"


_NOW_MS = "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)"


def trigger_names(table: str) -> dict[str, str]:
    return {op: f"{_PREFIX}{table}_{op}" for op in ("c", "u", "d")}


def trigger_sql(table: CapturedTable) -> dict[str, str]:
    """``{trigger name: CREATE TRIGGER ...}`` for the three operations."""
    events = {"c": "INSERT", "u": "UPDATE", "d": "DELETE"}
    images = {
        "c": ("NULL", image_sql(table, "NEW")),
        "u": (image_sql(table, "OLD"), image_sql(table, "NEW")),
        "d": (image_sql(table, "OLD"), "NULL"),
    }
    out = {}
    for op, name in trigger_names(table.name).items():
        before, after = images[op]
        out[name] = (
            f"CREATE TRIGGER {quote(name)} AFTER {events[op]} ON {quote(table.name)} "
            f"BEGIN INSERT INTO {CHANGELOG} (txid, \"table\", op, before, after, ts) VALUES ("
            f"(SELECT txid FROM {TXN} WHERE id = 1), {_literal(table.name)}, '{op}', "
            f"{before}, {after}, {_NOW_MS}); END"
        )
    return out


def install_sql(tables: Iterable[CapturedTable]) -> list[str]:
    statements = schema_sql()
    for table in tables:
        for name, sql in trigger_sql(table).items():
            statements.append(f"DROP TRIGGER IF EXISTS {quote(name)}")
            statements.append(sql)
        statements.append(
            f"INSERT OR REPLACE INTO {META} (table_name, spec) VALUES "
            f"({_literal(table.name)}, {_literal(table.to_json())})"
        )
    return statements


def uninstall_sql(trigger_names_present: Iterable[str]) -> list[str]:
    statements = [f"DROP TRIGGER IF EXISTS {quote(n)}" for n in trigger_names_present]
    statements += [f"DROP TABLE IF EXISTS {t}" for t in (CHANGELOG, TXN, META)]
    return statements


# --- I/O edge -------------------------------------------------------------------------


def introspect(
    conn: sqlite3.Connection, name: str, kinds: Mapping[str, Column] | None = None
) -> CapturedTable:
    """The table's columns and primary key from ``PRAGMA table_info``.

    ``kinds`` (``{column name: Column}``, e.g. from the Django models) gives each
    column's kind, scale and precision; others are left ``auto`` (decided from the
    declared type when rendering).
    """
    rows = conn.execute(f"PRAGMA table_info({quote(name)})").fetchall()
    if not rows:
        raise TableNotCapturable(f"table {name!r} does not exist in the SQLite database")
    kinds = kinds or {}
    columns = []
    for _cid, col, declared, notnull, _default, _pk in rows:
        known = kinds.get(col, Column(col))
        columns.append(
            Column(col, known.kind, known.scale, known.precision, not notnull, str(declared or ""))
        )
    key = tuple(r[1] for r in sorted((r for r in rows if r[5]), key=lambda r: r[5]))
    return CapturedTable(name, tuple(columns), key)


def _run(conn: sqlite3.Connection, statements: Sequence[str]) -> None:
    """All statements in one transaction (DDL is transactional in SQLite)."""
    try:
        if conn.in_transaction:
            conn.commit()
        conn.execute("BEGIN IMMEDIATE")
        for sql in statements:
            conn.execute(sql)
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise SourceError(f"SQLite refused the capture DDL: {exc}") from exc


def install(conn: sqlite3.Connection, tables: Iterable[CapturedTable], *, wal: bool = True) -> None:
    """Create the changelog (kept if present) and (re)create every table's triggers.

    ``wal`` switches the database to WAL (persistent), so the relay's and the snapshot's
    reads never block the monolith's writes.
    """
    if wal:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as exc:
            raise SourceError(f"cannot switch the database to WAL: {exc}") from exc
    _run(conn, install_sql(tables))


def _present_triggers(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND substr(name, 1, ?) = ?",
        (len(_PREFIX), _PREFIX),
    ).fetchall()
    return [r[0] for r in rows]


def uninstall(conn: sqlite3.Connection) -> list[str]:
    """Drop every capture trigger and table; returns the dropped trigger names."""
    names = _present_triggers(conn)
    _run(conn, uninstall_sql(names))
    return names


def installed_tables(conn: sqlite3.Connection) -> dict[str, CapturedTable]:
    if not _exists(conn, META):
        return {}
    rows = conn.execute(f"SELECT table_name, spec FROM {META} ORDER BY table_name").fetchall()
    return {name: CapturedTable.from_json(name, spec) for name, spec in rows}


def changelog_position(conn: sqlite3.Connection) -> int:
    """The last changelog id ever handed out (kept by AUTOINCREMENT even when pruned)."""
    if not _exists(conn, "sqlite_sequence"):
        return 0
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (CHANGELOG,)).fetchone()
    return int(row[0]) if row else 0


def _exists(conn: sqlite3.Connection, table: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).fetchone()
    return row is not None


def verify(conn: sqlite3.Connection, tables: Iterable[CapturedTable]) -> list[str]:
    """Problems with the installed capture, as sentences; empty when all is in place.

    Triggers are compared with the SQL generated for the table's *current* columns, so a
    column added by a migration shows up as an outdated trigger.
    """
    problems = [f"missing table {t}" for t in (CHANGELOG, TXN, META) if not _exists(conn, t)]
    present = dict(
        conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'").fetchall()
    )
    for table in tables:
        for name, sql in trigger_sql(table).items():
            if name not in present:
                problems.append(f"{table.name}: trigger {name} missing")
            elif present[name] != sql:
                problems.append(f"{table.name}: trigger {name} outdated (columns changed)")
    return problems
