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

On PostgreSQL the same "no echo" is a replication origin: :func:`tag_postgres_sessions`
makes every session of the sink's engine set up an origin named
``strangler_sink:<sink>:<n>``; its transactions carry it in the WAL, pgoutput announces
it, and the capture (:mod:`cdc.runner`) drops transactions with such an origin. Ids need
nothing there: explicit ids do not move a sequence.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cdc.sources.postgres.decode import SINK_ORIGIN_PREFIX
from cdc.sources.sqlite.triggers import TXN
from cdc.sources.sqlite.txids import SINK_TXID

__all__ = ["OriginUnavailable", "SqliteSinkOrigin", "TransactionHooks", "tag_postgres_sessions"]


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


_TAGGED: weakref.WeakSet[sa.Engine] = weakref.WeakSet()


class OriginUnavailable(RuntimeError):
    """The sink's PostgreSQL session cannot set up a replication origin."""


def _setup_origin(dbapi_conn: Any, sink: str, slots: int) -> str:
    """Set up the first free ``strangler_sink:<sink>:<n>`` origin on this session."""
    cursor = dbapi_conn.cursor()
    last = ""
    try:
        for n in range(slots):
            name = f"{SINK_ORIGIN_PREFIX}{sink}:{n}"
            try:
                cursor.execute("SELECT pg_replication_origin_oid(%s)", (name,))
                if cursor.fetchone()[0] is None:
                    cursor.execute("SELECT pg_replication_origin_create(%s)", (name,))
                cursor.execute("SELECT pg_replication_origin_session_setup(%s)", (name,))
                dbapi_conn.commit()
                return name
            except Exception as exc:  # psycopg2.Error; the driver is not imported here
                dbapi_conn.rollback()
                last = str(exc).strip().splitlines()[0]
                if "already active" in last or "duplicate key" in last:
                    continue  # another session of this sink holds it: take the next
                raise OriginUnavailable(
                    f"the sink cannot tag its PostgreSQL session with a replication origin "
                    f"({last}); its user needs superuser or EXECUTE on "
                    "pg_replication_origin_create/_oid/_session_setup — without it the "
                    "sink's writes would be captured and sent back") from exc
    finally:
        cursor.close()
    raise OriginUnavailable(f"all {slots} replication origins of sink {sink!r} are in use "
                            f"({last})")


def tag_postgres_sessions(engine: sa.Engine, sink: str, *, slots: int = 16) -> None:
    """Tag every new PostgreSQL session of ``engine`` with a sink origin (no-op on other
    dialects). Sessions of one sink take distinct origins (an origin is active in one
    session at a time); they are reused across restarts, so at most ``slots`` exist."""
    if engine.dialect.name != "postgresql" or engine in _TAGGED:
        return
    _TAGGED.add(engine)

    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        _setup_origin(dbapi_conn, sink, slots)

    sa.event.listen(engine, "connect", on_connect)
