"""From PostgreSQL column descriptions to a :class:`~cdc.events.Table` plus the fast
row converters the snapshot and the stream share (pure)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cdc.errors import DecodeError
from cdc.events import Column, Table
from cdc.sources.postgres.decode import UNCHANGED, Value
from cdc.sources.postgres.rowjson import RowJson, fragment_writer
from cdc.types import pg_column_type

__all__ = ["PgColumn", "TableCodec", "build_codec"]


@dataclass(frozen=True, slots=True)
class PgColumn:
    name: str
    type_oid: int
    typmod: int
    not_null: bool


_CONVERSION_ERRORS = (ValueError, TypeError, ArithmeticError, IndexError)


class TableCodec:
    """Turns text tuples of one table into payload rows.

    ``row(values)`` converts a full tuple; ``key_row(values)`` a ``REPLICA IDENTITY
    DEFAULT`` old tuple, whose non-key columns are null — required columns then take
    Debezium's fallback value (0, "", ...) so the row still fits the schema.
    ``json`` (when built from PostgreSQL columns) writes a tuple's values as JSON
    straight from the message bytes.
    """

    def __init__(self, table: Table, json: RowJson | None = None) -> None:
        self.table = table
        self.json = json
        cols = table.columns
        self.names = [c.name for c in cols]
        self._convert: list[Callable[[Any], Any]] = [c.type.convert for c in cols]
        self._missing = [None if c.optional else c.type.fallback for c in cols]
        self._unavailable = [
            c.type.unavailable if c.type.unavailable is not None else self._missing[i]
            for i, c in enumerate(cols)
        ]

    def row(
        self, values: Sequence[Value], fill_from: Sequence[Value] | None = None
    ) -> dict[str, Any]:
        try:
            return self._row(values, fill_from)
        except _CONVERSION_ERRORS as exc:
            raise self._explain(values, exc) from exc

    def key_row(self, values: Sequence[Value]) -> dict[str, Any]:
        try:
            return self._key_row(values)
        except _CONVERSION_ERRORS as exc:
            raise self._explain(values, exc) from exc

    def _explain(self, values: Sequence[Value], exc: Exception) -> DecodeError:
        """Name the column and value that could not be converted (a poison row)."""
        where = self.table.qualified
        if len(values) != len(self.names):
            return DecodeError(
                f"{where}: row has {len(values)} columns, the relation has {len(self.names)}"
            )
        for name, convert, value in zip(self.names, self._convert, values, strict=True):
            if value.__class__ is str:
                try:
                    convert(value)
                except _CONVERSION_ERRORS as err:
                    return DecodeError(f"{where}.{name}: cannot convert {str(value)[:60]!r}: {err}")
        return DecodeError(f"{where}: cannot convert row: {exc}")

    def _row(
        self, values: Sequence[Value], fill_from: Sequence[Value] | None = None
    ) -> dict[str, Any]:
        if None not in values and UNCHANGED not in values:
            return {n: c(v) for n, c, v in zip(self.names, self._convert, values, strict=True)}
        out: dict[str, Any] = {}
        for i, (name, convert, value) in enumerate(
            zip(self.names, self._convert, values, strict=True)
        ):
            if value.__class__ is str:
                out[name] = convert(value)
            elif value is None:
                out[name] = None
            elif fill_from is not None and fill_from[i].__class__ is str:
                out[name] = convert(fill_from[i])
            else:
                out[name] = self._unavailable[i]
        return out

    def _key_row(self, values: Sequence[Value]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for i, (name, convert, value) in enumerate(
            zip(self.names, self._convert, values, strict=True)
        ):
            out[name] = convert(value) if value.__class__ is str else self._missing[i]
        return out


def build_codec(
    schema: str, name: str, columns: Sequence[PgColumn], key: Sequence[str]
) -> TableCodec:
    table = Table(
        schema,
        name,
        tuple(
            Column(c.name, pg_column_type(c.type_oid, c.typmod), optional=not c.not_null)
            for c in columns
        ),
        key=tuple(key),
    )
    writers = [
        fragment_writer(c.type_oid, c.typmod, col.type)
        for c, col in zip(columns, table.columns, strict=True)
    ]
    return TableCodec(table, RowJson(writers))
