"""What a sink does inside its own transaction on a SQLite target that is itself
captured (two-way sync between the monolith and a service).

* **No echo.** When the target has SQLite capture installed (``strangler_txn``), the
  sink's transaction stamps :data:`~cdc.sources.sqlite.txids.SINK_TXID` on the changelog
  rows its writes produce, and restores the counter before commit. The relay never
  publishes rows with a negative transaction id, so a change that came from the other
  side is not captured again and sent back (no ping-pong), however both sides are
  staged.
* **Ids stay apart.** Rows arrive with the other side's ids, which may lie far above the
  target's own (services allocate from a disjoint range). An explicit insert drags
  SQLite's ``AUTOINCREMENT`` counter (``sqlite_sequence``) up to the highest id; the
  sink puts every target table's counter back to what it was before the batch, in the
  same transaction, so the target's next own id stays in its own range. (PostgreSQL
  sequences are not touched by explicit ids; nothing to do there.)

Both are no-ops on other dialects and when the target has neither capture nor
``sqlite_sequence`` rows for the tables.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cdc.sources.sqlite.triggers import TXN
from cdc.sources.sqlite.txids import SINK_TXID

__all__ = ["SqliteSinkOrigin", "TransactionHooks"]


class TransactionHooks(Protocol):
    """Called by :class:`~cdc.sinks.sqlalchemy_applier.SqlAlchemyApplier` inside each
    batch transaction: ``begin`` before the first write, ``before_commit`` after the last."""

    def begin(self, conn: Connection) -> None: ...

    def before_commit(self, conn: Connection) -> None: ...


def _exists(conn: Connection, table: str) -> bool:
    row = conn.exec_driver_sql(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).first()
    return row is not None


class SqliteSinkOrigin:
    """``SqlAlchemyApplier(..., hooks=SqliteSinkOrigin(["notifications_notification"]))``
    — ``tables``: the target tables whose ``sqlite_sequence`` counters must not move."""

    def __init__(self, tables: Iterable[str]) -> None:
        self.tables = tuple(tables)
        self._txid: int | None = None
        self._sequences: dict[str, int] | None = None

    def begin(self, conn: Connection) -> None:
        self._txid, self._sequences = None, None
        if conn.dialect.name != "sqlite":
            return
        if _exists(conn, TXN):
            row = conn.exec_driver_sql(f"SELECT txid FROM {TXN} WHERE id = 1").first()
            if row is not None:
                self._txid = int(row[0])
                conn.exec_driver_sql(f"UPDATE {TXN} SET txid = ? WHERE id = 1", (SINK_TXID,))
        if self.tables and _exists(conn, "sqlite_sequence"):
            marks = ", ".join("?" for _ in self.tables)
            found = conn.exec_driver_sql(
                f"SELECT name, seq FROM sqlite_sequence WHERE name IN ({marks})", self.tables
            ).all()
            self._sequences = {str(name): int(seq) for name, seq in found}

    def before_commit(self, conn: Connection) -> None:
        if conn.dialect.name != "sqlite":
            return
        if self._sequences is not None:
            for table in self.tables:
                before = self._sequences.get(table)
                if before is None:  # no counter before: the batch must not create one
                    conn.exec_driver_sql("DELETE FROM sqlite_sequence WHERE name = ?", (table,))
                else:
                    conn.exec_driver_sql(
                        "UPDATE sqlite_sequence SET seq = ? WHERE name = ? AND seq <> ?",
                        (before, table, before),
                    )
        if self._txid is not None:
            conn.execute(sa.text(f"UPDATE {TXN} SET txid = :txid WHERE id = 1"),
                         {"txid": self._txid})
        self._txid, self._sequences = None, None
