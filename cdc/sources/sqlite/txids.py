"""One transaction id per SQLite transaction.

SQLite has no transaction id and no commit hook, and a trigger cannot tell whether an
earlier changelog row was written by its own transaction. So the id lives in a
one-row counter table, ``strangler_txn``, and the *connection wrapper* bumps it inside
each write transaction before that transaction's first write::

    BEGIN; UPDATE strangler_txn SET txid = txid + 1; <writes...>; COMMIT

The triggers stamp every changelog row with the counter's current value. Why this is
exact for wrapped connections:

* the bump is the transaction's first write, so from then on it holds SQLite's single
  write lock — no other transaction can bump or write until it commits, hence txids
  grow in commit order, every row of the transaction carries the same fresh id and no
  other transaction's rows carry it;
* a rollback (or a rolled-back savepoint around the first write) undoes the bump
  together with the rows, so nothing published ever carries an id of a rolled-back
  transaction.

Writers that bypass the wrapper (the ``sqlite3`` shell, other programs) are still
captured, row for row, but their rows carry the id of the last wrapped transaction;
use :func:`capture_transaction` in such programs. The Django wrapper lives in
``monolith/capture/txn.py``; this module holds the SQL and the pure write detection.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from cdc.sources.sqlite.triggers import TXN

__all__ = [
    "BUMP_SQL",
    "SINK_TXID",
    "bump",
    "capture_transaction",
    "current",
    "is_installed",
    "is_write",
    "returns_rows",
]

SINK_TXID = -1
"""The id a CDC sink stamps on its own transactions (see :mod:`cdc.sinks.origin`): the
relay never publishes changelog rows carrying a negative id, so changes a sink applied
from the other side are not captured again (no ping-pong between two databases)."""

BUMP_SQL = f"UPDATE {TXN} SET txid = txid + 1 WHERE id = 1 RETURNING txid"

_COMMENTS = re.compile(r"^\s*(?:(?:--[^\n]*\n)|(?:/\*.*?\*/)|\s)*", re.S)
_WRITES = frozenset({"INSERT", "UPDATE", "DELETE", "REPLACE"})
_WRITE_IN_CTE = re.compile(r"\b(INSERT|UPDATE|DELETE|REPLACE)\b", re.I)


_RETURNING = re.compile(r"\bRETURNING\b", re.I)


def returns_rows(sql: str) -> bool:
    """Whether a write statement hands rows back (``INSERT ... RETURNING``)."""
    return _RETURNING.search(sql) is not None


def is_write(sql: str) -> bool:
    """Whether ``sql`` changes rows (so its transaction needs a transaction id)."""
    body = sql[_COMMENTS.match(sql).end() :]  # type: ignore[union-attr]
    head = body[:8].split(None, 1)[0].upper() if body.strip() else ""
    if head in _WRITES:
        return True
    return head == "WITH" and _WRITE_IN_CTE.search(body) is not None


def bump(conn: sqlite3.Connection) -> int | None:
    """Allocate the current transaction's id; ``None`` when capture is not installed.

    Must run inside the transaction, before its first write.
    """
    try:
        rows = conn.execute(BUMP_SQL).fetchall()  # run to completion: COMMIT must follow
    except sqlite3.OperationalError as exc:
        if f"no such table: {TXN}" in str(exc):
            return None
        raise
    return int(rows[0][0]) if rows else None


def is_installed(conn: sqlite3.Connection) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (TXN,)
    ).fetchone()
    return row is not None


def current(conn: sqlite3.Connection) -> int:
    row = conn.execute(f"SELECT txid FROM {TXN} WHERE id = 1").fetchone()
    return int(row[0]) if row else 0


@contextmanager
def capture_transaction(conn: sqlite3.Connection) -> Iterator[int | None]:
    """``with capture_transaction(conn) as txid: conn.execute(...)`` — one write
    transaction (``BEGIN IMMEDIATE``) with its own transaction id, committed on exit and
    rolled back on error. For writers outside Django."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        txid = bump(conn)
        yield txid
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
