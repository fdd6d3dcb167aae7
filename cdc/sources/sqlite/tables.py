"""Captured SQLite tables as the shared :class:`cdc.events.Table` (pure).

Each column gets the Debezium column type of the PostgreSQL type Django creates for the
same field (``DecimalField(10, 2)`` → ``numeric(10,2)``, ``DateTimeField`` →
``timestamptz``, ...). Its converter renders the changelog value (:mod:`.render`), writes
it in PostgreSQL's text form and hands it to that type's own converter, so both
sources produce byte-identical payloads for the same row.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from cdc import events
from cdc.sources.sqlite.render import kind_for_declared, render_value
from cdc.sources.sqlite.triggers import CapturedTable, Column
from cdc.types import ColumnType, pg_column_type

__all__ = ["DEFAULT_SCHEMA", "column_type", "event_table", "pg_text", "pg_type"]

_OIDS = {
    "smallint": 21, "integer": 23, "bigint": 20, "float": 701, "boolean": 16, "text": 25,
    "datetime": 1184, "timestamp": 1114, "date": 1082, "time": 1083, "uuid": 2950,
    "json": 3802, "binary": 17, "duration": 1186, "auto": 25,
}


def _effective(column: Column) -> tuple[str, int | None]:
    if column.kind != "auto":
        return column.kind, column.scale
    kind, scale = kind_for_declared(column.declared)
    return kind, column.scale if column.scale is not None else scale


def pg_type(column: Column) -> tuple[int, int]:
    """``(type oid, typmod)`` of the PostgreSQL column Django would create."""
    kind, scale = _effective(column)
    if kind == "decimal":
        if scale is None or column.precision is None:
            return 1700, -1
        return 1700, ((column.precision << 16) | scale) + 4
    return _OIDS[kind], -1


def pg_text(value: Any) -> Any:
    """A rendered value in the text form PostgreSQL writes (numbers stay numbers)."""
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat(sep=" ") if isinstance(value, dt.datetime) else value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes):
        return "\\x" + value.hex()
    if isinstance(value, dt.timedelta):
        clock = dt.timedelta(seconds=value.seconds, microseconds=value.microseconds)
        hours, rest = divmod(clock // dt.timedelta(microseconds=1), 3_600_000_000)
        minutes, rest = divmod(rest, 60_000_000)
        seconds, micros = divmod(rest, 1_000_000)
        return f"{value.days} days {hours:02d}:{minutes:02d}:{seconds:02d}.{micros:06d}"
    return value


def column_type(column: Column) -> ColumnType:
    pg = pg_column_type(*pg_type(column))
    kind, _ = _effective(column)
    to_payload = pg.convert

    def convert(raw: Any) -> Any:
        value = render_value(column, raw)
        if value is None:
            return None
        if kind == "auto" and not isinstance(value, str):
            value = value.hex() if isinstance(value, bytes) else str(value)
        return to_payload(pg_text(value))

    return ColumnType(pg.schema, convert, pg.fallback, pg.unavailable)


DEFAULT_SCHEMA = "main"
"""The ``schema`` in topic names and ``source.schema``: SQLite's name for its database.
Consumers built for a PostgreSQL monolith subscribe to ``<prefix>.public.<table>``; they
pass the schema (the notifications sink: ``--schema main``), or the source is configured
with ``schema="public"`` to publish under PostgreSQL's names."""


def event_table(table: CapturedTable, schema: str = DEFAULT_SCHEMA) -> events.Table:
    """``event_table(captured)`` — key columns are never optional."""
    key = set(table.primary_key)
    columns = tuple(
        events.Column(c.name, column_type(c), c.nullable and c.name not in key)
        for c in table.columns
    )
    return events.Table(schema, table.name, columns, table.primary_key)
