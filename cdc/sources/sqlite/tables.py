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
from collections.abc import Callable
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

    fast = _FAST.get(kind)
    if fast is not None:
        return ColumnType(pg.schema, _with_fast_path(fast, convert), pg.fallback, pg.unavailable)
    return ColumnType(pg.schema, convert, pg.fallback, pg.unavailable)


_MISS = object()


def _fast_text(raw: Any) -> Any:
    return raw if type(raw) is str else _MISS


def _fast_int(raw: Any) -> Any:
    return raw if type(raw) is int else _MISS


def _fast_bool(raw: Any) -> Any:
    if type(raw) is int and raw in (0, 1):
        return raw == 1
    return _MISS


_FAST: dict[str, Callable[[Any], Any]] = {
    "text": _fast_text, "smallint": _fast_int, "integer": _fast_int, "bigint": _fast_int,
    "boolean": _fast_bool,
}
"""Values the full path would hand back unchanged (or 0/1 → bool): the common case of
the common kinds skips rendering; anything else takes the full path."""


def _with_fast_path(fast: Callable[[Any], Any], full: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def convert(raw: Any) -> Any:
        value = fast(raw)
        return full(raw) if value is _MISS else value

    return convert


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
