"""Reading PostgreSQL's catalog: connections, table columns and keys, slot state.

psycopg2 errors are translated into :class:`~cdc.errors.SourceError` here.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg2
import psycopg2.errors
import psycopg2.extensions
import psycopg2.extras

from cdc.config import pg_dsn
from cdc.errors import SourceError
from cdc.sources.postgres.capture import TableFacts
from cdc.sources.postgres.tables import PgColumn

__all__ = [
    "SlotInfo",
    "connect",
    "replication_connect",
    "slot_info",
    "table_columns",
    "table_facts",
    "translate",
]

SESSION = "-c TimeZone=UTC -c DateStyle=ISO -c extra_float_digits=1 -c IntervalStyle=postgres"


def _describe(dsn: str) -> str:
    try:
        params = psycopg2.extensions.parse_dsn(pg_dsn(dsn))
    except psycopg2.Error:
        return "the configured database"
    return (
        f"{params.get('host', 'localhost')}:{params.get('port', 5432)}/{params.get('dbname', '')}"
    )


@contextmanager
def translate(what: str) -> Iterator[None]:
    try:
        yield
    except psycopg2.Error as exc:
        detail = (exc.pgerror or str(exc)).strip().splitlines()[0] if str(exc) else repr(exc)
        raise SourceError(f"{what}: {detail}") from exc


def connect(dsn: str, *, autocommit: bool = True) -> Any:
    """A normal connection with the session pinned to UTC and ISO output."""
    with translate(f"cannot connect to PostgreSQL at {_describe(dsn)}"):
        conn = psycopg2.connect(pg_dsn(dsn), options=SESSION, connect_timeout=10)
        conn.autocommit = autocommit
        return conn


def replication_connect(dsn: str) -> Any:
    with translate(f"cannot open a replication connection to {_describe(dsn)}"):
        return psycopg2.connect(
            pg_dsn(dsn),
            options=SESSION,
            connect_timeout=10,
            connection_factory=psycopg2.extras.LogicalReplicationConnection,
        )


def _split(qualified: str) -> tuple[str, str]:
    schema, _, name = qualified.partition(".")
    return schema, name


def table_columns(conn: Any, qualified: str) -> list[PgColumn]:
    schema, name = _split(qualified)
    with translate(f"cannot read columns of {qualified}"), conn.cursor() as cur:
        cur.execute(
            """
            SELECT a.attname, a.atttypid, a.atttypmod, a.attnotnull
            FROM pg_attribute a
            JOIN pg_class c ON c.oid = a.attrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped
            ORDER BY a.attnum
            """,
            (schema, name),
        )
        return [PgColumn(r[0], int(r[1]), int(r[2]), bool(r[3])) for r in cur.fetchall()]


def _facts(conn: Any, where: str, params: tuple[Any, ...]) -> TableFacts | None:
    with conn.cursor() as cur:
        cur.execute(
            f"""
            SELECT c.oid,
                   ARRAY(SELECT a.attname FROM pg_index i
                         JOIN pg_attribute a ON a.attrelid = i.indrelid
                              AND a.attnum = ANY(i.indkey)
                         WHERE i.indrelid = c.oid AND i.indisprimary
                         ORDER BY array_position(i.indkey, a.attnum)),
                   ARRAY(SELECT a.attname FROM pg_attribute a
                         WHERE a.attrelid = c.oid AND a.attnum > 0 AND a.attnotnull
                               AND NOT a.attisdropped)
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE {where}
            """,
            params,
        )
        row = cur.fetchone()
    if row is None:
        return None
    return TableFacts(key=tuple(row[1]), not_null=frozenset(row[2]))


def table_facts(conn: Any, relid: int, schema: str, name: str) -> TableFacts:
    """Primary key and NOT NULL columns; what pgoutput's Relation message leaves out."""
    with translate(f"cannot read the catalog for {schema}.{name}"):
        found = _facts(conn, "c.oid = %s", (relid,))
        if found is None:
            found = _facts(conn, "n.nspname = %s AND c.relname = %s", (schema, name))
    if found is None:
        raise SourceError(f"table {schema}.{name} (oid {relid}) is not in the catalog")
    return found


@dataclass(frozen=True)
class SlotInfo:
    name: str
    plugin: str
    database: str
    active: bool
    confirmed_flush_lsn: int | None
    restart_lsn: int | None
    current_lsn: int
    lag_bytes: int | None


def slot_info(conn: Any, slot: str) -> SlotInfo | None:
    with translate(f"cannot read replication slot {slot}"), conn.cursor() as cur:
        cur.execute(
            """
            SELECT slot_name, plugin, database, active,
                   confirmed_flush_lsn - '0/0'::pg_lsn, restart_lsn - '0/0'::pg_lsn,
                   pg_current_wal_lsn() - '0/0'::pg_lsn,
                   pg_current_wal_lsn() - confirmed_flush_lsn
            FROM pg_replication_slots WHERE slot_name = %s
            """,
            (slot,),
        )
        row = cur.fetchone()
    if row is None:
        return None

    def num(v: Any) -> int | None:
        return None if v is None else int(v)

    return SlotInfo(
        name=row[0],
        plugin=row[1] or "",
        database=row[2] or "",
        active=bool(row[3]),
        confirmed_flush_lsn=num(row[4]),
        restart_lsn=num(row[5]),
        current_lsn=int(row[6]),
        lag_bytes=num(row[7]),
    )


def drop_slot(conn: Any, slot: str, *, busy_wait_s: float = 15.0) -> bool:
    """Drop the slot if it exists; waits ``busy_wait_s`` for a dying holder to let go."""
    deadline = time.monotonic() + busy_wait_s
    while True:
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                    "WHERE slot_name = %s",
                    (slot,),
                )
                return bool(cur.rowcount > 0)
        except psycopg2.errors.ObjectInUse as exc:
            if time.monotonic() >= deadline:
                raise SourceError(f"replication slot {slot} is in use; stop its holder") from exc
            time.sleep(0.2)
        except psycopg2.Error as exc:
            raise SourceError(f"cannot drop replication slot {slot}: {exc}") from exc
