"""Engine creation and the source position the service's data reflects."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from cdc.sinks.position import Position
from cdc.sinks.sqlalchemy_applier import engine_url
from extracted.notifications.models import OFFSETS


def make_engine(url: str) -> sa.Engine:
    url = engine_url(url)
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        sa.event.listen(engine, "begin", _sqlite_begin)
        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
    # pysqlite's own transaction handling breaks SAVEPOINTs (RELEASE would commit):
    # take over and emit BEGIN ourselves, as SQLAlchemy's documentation recommends.
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(conn: sa.Connection) -> None:
    """``BEGIN`` — or ``BEGIN IMMEDIATE`` for connections that will write
    (``execution_options(sqlite_begin="IMMEDIATE")``): a writer that takes the lock up
    front waits for others (busy timeout) instead of failing on a stale read snapshot."""
    mode = conn.get_execution_options().get("sqlite_begin", "")
    conn.exec_driver_sql(f"BEGIN {mode}" if mode in ("IMMEDIATE", "EXCLUSIVE") else "BEGIN")


def source_position(session: Session) -> tuple[Position | None, int | None]:
    """The newest applied source position and its source timestamp (ms), if any."""
    rows = session.execute(
        sa.select(OFFSETS.c.position_commit, OFFSETS.c.position_change, OFFSETS.c.source_ts_ms)
        .where(OFFSETS.c.position_commit.is_not(None))
    ).all()
    if not rows:
        return None, None
    commit, change, ts = max(rows, key=lambda r: (r[0], r[1]))
    return Position(commit, change), ts
