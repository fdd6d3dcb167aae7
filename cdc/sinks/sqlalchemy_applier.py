"""Apply planned writes to a service database, one transaction per batch.

Each batch commits the rows, the per-row source positions (``strangler_sink_rows``) and
the consumed Kafka offsets with their source position (``strangler_sink_offsets``)
together, so after a crash the consumer resumes exactly after the last applied batch:
nothing is lost and nothing applied twice. A write whose position is not newer than the
row's stored position is skipped, which also drops the source's redelivered duplicates
and keeps a replayed older event from undoing a newer one.

Database errors are translated into :class:`ApplyError` (``constraint`` or ``database``);
the whole batch is then rolled back, so the caller can retry event by event to isolate
the poison one.
"""

from __future__ import annotations

import datetime as dt
import json
import operator
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError

from cdc.sinks.mapping import SinkMapping
from cdc.sinks.origin import TransactionHooks
from cdc.sinks.planner import Delete, Key, PlannedWrite, Truncate, Upsert, collapse
from cdc.sinks.position import Position

OFFSETS_TABLE = "strangler_sink_offsets"
ROWS_TABLE = "strangler_sink_rows"
_CHUNK = 1000
_PAGE = 5000  # rows per execute_values statement


class ApplyError(RuntimeError):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # "constraint" or "database"


def engine_url(url: str) -> str:
    """Pin plain ``postgresql://`` URLs to psycopg2, the driver this project installs."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix):]
    return url


def sink_tables(metadata: sa.MetaData) -> tuple[sa.Table, sa.Table]:
    """Add the sink's bookkeeping tables to ``metadata`` (services migrate them too)."""
    if OFFSETS_TABLE in metadata.tables:
        return metadata.tables[OFFSETS_TABLE], metadata.tables[ROWS_TABLE]
    offsets = sa.Table(
        OFFSETS_TABLE,
        metadata,
        sa.Column("sink", sa.String(100), primary_key=True),
        sa.Column("topic", sa.String(255), primary_key=True),
        sa.Column("partition", sa.Integer, primary_key=True),
        sa.Column("next_offset", sa.BigInteger, nullable=False),
        sa.Column("position_commit", sa.BigInteger, nullable=True),
        sa.Column("position_change", sa.BigInteger, nullable=True),
        sa.Column("source_ts_ms", sa.BigInteger, nullable=True),
        sa.Column("applied_ts_ms", sa.BigInteger, nullable=True),
    )
    rows = sa.Table(
        ROWS_TABLE,
        metadata,
        sa.Column("model", sa.String(100), primary_key=True),
        sa.Column("row_key", sa.String(255), primary_key=True),
        sa.Column("position_commit", sa.BigInteger, nullable=False),
        sa.Column("position_change", sa.BigInteger, nullable=False),
    )
    return offsets, rows


@dataclass(frozen=True, slots=True)
class Consumed:
    """One consumed record: where it was read and what source position it carried."""

    topic: str
    partition: int
    offset: int
    position: Position | None = None
    source_ts_ms: int | None = None


@dataclass(frozen=True, slots=True)
class ApplyResult:
    applied: int
    skipped: int


@dataclass(frozen=True, slots=True)
class OffsetState:
    topic: str
    partition: int
    next_offset: int
    position: Position | None
    source_ts_ms: int | None
    applied_ts_ms: int | None


_KINDS: tuple[tuple[type[Any], str], ...] = (
    (sa.Boolean, "bool"),
    (sa.Integer, "int"),
    (sa.Float, "float"),
    (sa.Numeric, "decimal"),
    (sa.DateTime, "datetime"),
    (sa.Date, "date"),
    (sa.Time, "time"),
    (sa.JSON, "json"),
    (sa.Uuid, "uuid"),
    (sa.LargeBinary, "bytes"),
    (sa.String, "str"),
)


def column_kind(column: sa.Column[Any]) -> str:
    for type_, kind in _KINDS:
        if isinstance(column.type, type_):
            return "str" if kind == "time" else kind
    return "str"


def row_key(key: Key) -> str:
    """A row's key as text: ``"7"`` for a single integer, else a JSON array."""
    if len(key) == 1 and type(key[0]) is int:
        return str(key[0])
    return json.dumps(list(key), default=str, separators=(",", ":"))


def _now_ms() -> int:
    return int(time.time() * 1000)


class SqlAlchemyApplier:
    def __init__(
        self, engine: Engine, mapping: SinkMapping, metadata: sa.MetaData, *, sink: str,
        hooks: TransactionHooks | None = None,
    ) -> None:
        """``hooks``: run inside every batch transaction (see :mod:`cdc.sinks.origin`)."""
        self.engine = engine
        self.sink = sink
        self.hooks = hooks
        self.offsets_table, self.rows_table = sink_tables(metadata)
        self.models = {name: metadata.tables[name] for name in mapping.models
                       if name in metadata.tables}
        self.mapping = mapping.bind(
            {name: {c.name: column_kind(c) for c in table.columns}
             for name, table in self.models.items()}
        )
        self._dialect = engine.dialect.name
        self._sql_cache: dict[tuple[str, tuple[str, ...], tuple[str, ...]], str] = {}
        self._offsets_statement: sa.Executable | None = None

    @property
    def overlaps_commit(self) -> bool:
        """Whether applying a batch on a worker thread while the next one is planned pays:
        a database server works on its own core; SQLite's work is in this process (and
        measured slower pipelined)."""
        return self._dialect != "sqlite"

    def create_tables(self) -> None:
        """Create the bookkeeping tables if missing (services normally migrate them)."""
        self.offsets_table.create(self.engine, checkfirst=True)
        self.rows_table.create(self.engine, checkfirst=True)

    def restart_offsets(self) -> None:
        """Read every topic from its start again (a memory-only broker was restarted and
        its offsets mean nothing now); row positions keep replays from changing data."""
        t = self.offsets_table
        with self.engine.begin() as conn:
            conn.execute(t.update().where(t.c.sink == self.sink).values(next_offset=0))

    # -- reading state ------------------------------------------------------------------

    def offsets(self) -> list[OffsetState]:
        t = self.offsets_table
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t).where(t.c.sink == self.sink)).mappings().all()
        return [
            OffsetState(
                r["topic"], r["partition"], r["next_offset"],
                Position(r["position_commit"], r["position_change"])
                if r["position_commit"] is not None else None,
                r["source_ts_ms"], r["applied_ts_ms"],
            )
            for r in rows
        ]

    # -- applying -----------------------------------------------------------------------

    def apply(self, writes: Sequence[PlannedWrite], consumed: Sequence[Consumed]) -> ApplyResult:
        try:
            with self.engine.connect() as conn:
                # honoured by engines that emit BEGIN themselves (the services' SQLite)
                conn.execution_options(sqlite_begin="IMMEDIATE")
                with conn.begin():
                    if self.hooks is not None:
                        self.hooks.begin(conn)
                    applied = 0
                    for segment in collapse(writes):
                        applied += self._apply_segment(conn, segment)
                    self._record_offsets(conn, consumed)
                    if self.hooks is not None:
                        self.hooks.before_commit(conn)
        except ApplyError:
            raise
        except IntegrityError as exc:
            raise ApplyError("constraint", _db_message(exc)) from exc
        except DBAPIError as exc:
            raise ApplyError("database", _db_message(exc)) from exc
        except SQLAlchemyError as exc:
            raise ApplyError("database", str(exc)) from exc
        return ApplyResult(applied, len(writes) - applied)

    def _apply_segment(self, conn: Connection, segment: Sequence[PlannedWrite]) -> int:
        if len(segment) == 1 and isinstance(segment[0], Truncate):
            return self._truncate(conn, segment[0])
        by_model: dict[str, list[Upsert | Delete]] = {}
        for write in segment:
            assert not isinstance(write, Truncate)
            by_model.setdefault(write.model, []).append(write)
        applied = 0
        pg = self._dialect == "postgresql" and conn.dialect.driver == "psycopg2"
        for model, writes in by_model.items():
            if pg:
                fresh = self._claim_positions(conn, model, writes)
                applied += len(fresh)
                self._write(conn, model, fresh, positions_done=True)
                continue
            stored = self._stored_positions(conn, model, (w.key for w in writes))
            fresh = [
                w for w in writes
                if w.position is None
                or (known := stored.get(row_key(w.key))) is None
                or w.position > known
            ]
            applied += len(fresh)
            self._write(conn, model, fresh)
        return applied

    def _claim_positions(
        self, conn: Connection, model: str, writes: Sequence[Upsert | Delete]
    ) -> list[Upsert | Delete]:
        """PostgreSQL: store the positions of the writes that are newer than the stored
        ones and return those writes (tombstones always), in one statement — the position
        check runs inside the upsert (``ON CONFLICT ... WHERE`` + ``RETURNING``)."""
        keyed: dict[str, Upsert | Delete] = {}
        fresh: list[Upsert | Delete] = []
        values: list[tuple[str, int, int]] = []
        for w in writes:
            if w.position is None:
                fresh.append(w)
            else:
                text = row_key(w.key)
                keyed[text] = w
                values.append((text, w.position.commit, w.position.change))
        if values:
            sql = self._pg_claim_sql(conn)
            for (text,) in self._pg_execute(conn, sql, values, fetch=True, first=model):
                fresh.append(keyed[text])
        return fresh

    def _pg_claim_sql(self, conn: Connection) -> str:
        slot = (ROWS_TABLE, ("claim",), ())
        sql = self._sql_cache.get(slot)
        if sql is None:
            name = conn.dialect.identifier_preparer.format_table(self.rows_table)
            columns = ("row_key", "position_commit", "position_change")
            sql = (f"INSERT INTO {name} AS stored (model, {', '.join(columns)}) "
                   f"SELECT %s, * FROM ({_pg_source(conn, self.rows_table, columns)}) AS v "
                   "ON CONFLICT (model, row_key) DO UPDATE SET "
                   "position_commit = EXCLUDED.position_commit, "
                   "position_change = EXCLUDED.position_change "
                   "WHERE (stored.position_commit, stored.position_change) "
                   "< (EXCLUDED.position_commit, EXCLUDED.position_change) "
                   "RETURNING row_key")
            self._sql_cache[slot] = sql
        return sql

    def _stored_positions(
        self, conn: Connection, model: str, keys: Iterable[Key]
    ) -> dict[str, Position]:
        t = self.rows_table
        wanted = [row_key(k) for k in keys]
        found: dict[str, Position] = {}
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start:start + _CHUNK]
            query = sa.select(t.c.row_key, t.c.position_commit, t.c.position_change).where(
                t.c.model == model, t.c.row_key.in_(chunk)
            )
            for key, commit, change in conn.execute(query):
                found[key] = Position(commit, change)
        return found

    def _write(self, conn: Connection, model: str, writes: Sequence[Upsert | Delete], *,
               positions_done: bool = False) -> None:
        table = self.models[model]
        key_columns = next(m.key for m in self.mapping.tables if m.model == model)
        upserts: dict[tuple[str, ...], list[Mapping[str, Any]]] = {}
        deletes: list[Key] = []
        positions: list[dict[str, Any]] = []
        for w in writes:
            if isinstance(w, Upsert):
                upserts.setdefault(tuple(w.row), []).append(w.row)
            else:
                deletes.append(w.key)
            if w.position is not None and not positions_done:
                positions.append({
                    "model": model, "row_key": row_key(w.key),
                    "position_commit": w.position.commit, "position_change": w.position.change,
                })
        for start in range(0, len(deletes), _CHUNK):
            chunk = deletes[start:start + _CHUNK]
            if len(key_columns) == 1:
                condition = table.c[key_columns[0]].in_([k[0] for k in chunk])
            else:
                condition = sa.tuple_(*(table.c[c] for c in key_columns)).in_(chunk)
            conn.execute(table.delete().where(condition))
        for columns, rows in upserts.items():
            self._execute_upsert(conn, table, key_columns, columns, rows)
        if positions:
            self._execute_upsert(conn, self.rows_table, ("model", "row_key"),
                                 ("model", "row_key", "position_commit", "position_change"),
                                 positions)

    def _execute_upsert(self, conn: Connection, table: sa.Table, key: Sequence[str],
                        columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> None:
        """SQLite: one executemany. PostgreSQL: psycopg2's ``execute_values`` (multi-row
        VALUES pages; its plain executemany is one round trip per row)."""
        if self._dialect != "postgresql" or conn.dialect.driver != "psycopg2":
            conn.execute(self._upsert(table, key, columns), [dict(r) for r in rows])
            return
        from psycopg2.extras import Json

        sql = self._pg_upsert_sql(conn, table, key, columns)
        json_columns = {c for c in columns
                        if column_kind(table.c[c]) == "json"}
        if json_columns:
            values: list[tuple[Any, ...]] = [
                tuple(Json(v) if c in json_columns and isinstance(v, dict | list) else v
                      for c, v in ((c, r[c]) for c in columns))
                for r in rows
            ]
        else:
            getter = operator.itemgetter(*columns)
            values = [getter(r) for r in rows] if len(columns) > 1 else [
                (getter(r),) for r in rows]
        self._pg_execute(conn, sql, values, fetch=False)

    def _pg_execute(self, conn: Connection, sql: str, values: Sequence[tuple[Any, ...]], *,
                    fetch: bool, first: Any = None) -> list[tuple[Any, ...]]:
        """Run an upsert built by ``_pg_source``; ``first``: the leading scalar parameter
        of a statement that has one (it must use ``unnest``)."""
        import psycopg2
        from psycopg2.extras import execute_values

        cursor = conn.connection.cursor()
        try:
            if f" {_VALUES} " not in sql:
                arrays = [pg_array_literal(column) for column in zip(*values, strict=True)]
                cursor.execute(sql, arrays if first is None else [first, *arrays])
                return list(cursor.fetchall()) if fetch else []
            return list(execute_values(cursor, sql, values, page_size=_PAGE, fetch=fetch) or [])
        except psycopg2.IntegrityError as exc:
            raise ApplyError("constraint", str(exc).strip().splitlines()[0]) from exc
        except psycopg2.Error as exc:
            raise ApplyError("database", str(exc).strip().splitlines()[0]) from exc
        finally:
            cursor.close()

    def _pg_upsert_sql(self, conn: Connection, table: sa.Table, key: Sequence[str],
                       columns: Sequence[str]) -> str:
        slot = (table.name, tuple(key), tuple(columns))
        sql = self._sql_cache.get(slot)
        if sql is None:
            quote = conn.dialect.identifier_preparer.quote
            name = conn.dialect.identifier_preparer.format_table(table)
            updates = [c for c in columns if c not in key]
            action = ("DO UPDATE SET " + ", ".join(f"{quote(c)} = EXCLUDED.{quote(c)}"
                                                   for c in updates)) if updates else "DO NOTHING"
            sql = (f"INSERT INTO {name} ({', '.join(quote(c) for c in columns)}) "
                   f"{_pg_source(conn, table, columns)} "
                   f"ON CONFLICT ({', '.join(quote(c) for c in key)}) {action}")
            self._sql_cache[slot] = sql
        return sql

    def _upsert(
        self, table: sa.Table, key: Sequence[str], columns: Sequence[str]
    ) -> sa.Executable:
        updates = [c for c in columns if c not in key]
        if self._dialect in ("sqlite", "postgresql"):
            insert = (sqlite.insert if self._dialect == "sqlite" else postgresql.insert)(table)
            if not updates:
                return insert.on_conflict_do_nothing(index_elements=list(key))
            return insert.on_conflict_do_update(
                index_elements=list(key), set_={c: insert.excluded[c] for c in updates}
            )
        raise ApplyError("database", f"upsert not supported on dialect {self._dialect!r}")

    def _truncate(self, conn: Connection, write: Truncate) -> int:
        """Empty the model, unless a row already reflects a later change (a replay)."""
        t = self.rows_table
        p = write.position
        newer = conn.execute(
            sa.select(sa.literal(1)).where(
                t.c.model == write.model,
                sa.or_(
                    t.c.position_commit > p.commit,
                    sa.and_(t.c.position_commit == p.commit, t.c.position_change > p.change),
                ),
            ).limit(1)
        ).first()
        if newer is not None:
            return 0
        conn.execute(self.models[write.model].delete())
        conn.execute(
            t.update().where(t.c.model == write.model).values(
                position_commit=write.position.commit, position_change=write.position.change
            )
        )
        return 1

    def _record_offsets(self, conn: Connection, consumed: Sequence[Consumed]) -> None:
        # per (topic, partition): [next offset, last position, last source ts]
        latest: dict[tuple[str, int], list[Any]] = {}
        for c in consumed:
            slot = (c.topic, c.partition)
            entry = latest.get(slot)
            if entry is None:
                entry = latest[slot] = [c.offset + 1, None, None]
            elif c.offset >= entry[0]:
                entry[0] = c.offset + 1
            if c.position is not None:
                entry[1] = c.position
            if c.source_ts_ms is not None:
                entry[2] = c.source_ts_ms
        if not latest:
            return
        now = _now_ms()
        rows = [{"sink": self.sink, "topic": topic, "partition": partition,
                 "next_offset": next_offset,
                 "position_commit": position.commit if position is not None else None,
                 "position_change": position.change if position is not None else None,
                 "source_ts_ms": source_ts, "applied_ts_ms": now}
                for (topic, partition), (next_offset, position, source_ts) in latest.items()]
        if self._offsets_statement is None:
            self._offsets_statement = self._offsets_upsert()
        conn.execute(self._offsets_statement, rows)

    def _offsets_upsert(self) -> sa.Executable:
        """One statement: a batch without positions or source times keeps the stored ones."""
        t = self.offsets_table
        if self._dialect not in ("sqlite", "postgresql"):
            raise ApplyError("database", f"upsert not supported on dialect {self._dialect!r}")
        insert = (sqlite.insert if self._dialect == "sqlite" else postgresql.insert)(t)
        kept = ("position_commit", "position_change", "source_ts_ms")
        return insert.on_conflict_do_update(
            index_elements=["sink", "topic", "partition"],
            set_={
                "next_offset": insert.excluded.next_offset,
                "applied_ts_ms": insert.excluded.applied_ts_ms,
                **{c: sa.func.coalesce(insert.excluded[c], t.c[c]) for c in kept},
            },
        )


_VALUES = "VALUES %s"


def _pg_source(conn: Connection, table: sa.Table, columns: Sequence[str]) -> str:
    """The rows to insert: ``unnest`` of one typed array parameter per column (one
    adapted list each instead of a formatted VALUES tuple per row; PostgreSQL plans it
    faster too), or psycopg2's ``VALUES %s`` for columns that are arrays themselves."""
    types = [table.c[c].type for c in columns]
    if any(isinstance(t, sa.ARRAY) for t in types):
        return _VALUES
    arrays = ", ".join(f"%s::{t.compile(dialect=conn.dialect)}[]" for t in types)
    return f"SELECT * FROM unnest({arrays})"


def _quoted(text: str) -> str:
    if '"' in text or "\\" in text:
        text = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def _naive_datetime(value: dt.datetime | dt.time) -> str:
    if value.tzinfo is not None:  # psycopg2 sends these with their zone; keep its meaning
        raise TypeError
    text = value.isoformat(sep=" ") if isinstance(value, dt.datetime) else value.isoformat()
    return f'"{text}"'


_ELEMENT: dict[type[Any], Any] = {
    str: _quoted,
    int: str,
    bool: lambda v: "t" if v else "f",
    float: repr,  # PostgreSQL reads inf, -inf and nan too
    Decimal: str,
    dt.datetime: _naive_datetime,
    dt.date: lambda v: v.isoformat(),
    dt.time: _naive_datetime,
    uuid.UUID: str,
}


def pg_array_literal(values: Sequence[Any]) -> str | list[Any]:
    """One column of rows as a PostgreSQL array literal (``{1,NULL,"a \\"b\\""}``): the
    server reads it with one ``array_in`` call, where psycopg2's list adaptation quotes
    every element and sends an ``ARRAY[...]`` expression the server must parse and plan
    element by element. Values of any other type (JSON, bytes, aware datetimes) keep the
    plain list, which psycopg2 adapts as before."""
    types = set(map(type, values))
    if types == {int}:
        return "{" + ",".join(map(str, values)) + "}"
    if types == {str}:  # no quote or backslash inside: join and quote all at once
        joined = '","'.join(values)
        if "\\" not in joined and joined.count('"') == 2 * (len(values) - 1):
            return '{"' + joined + '"}'
    elements = _ELEMENT
    try:
        return "{" + ",".join(["NULL" if v is None else elements[type(v)](v)
                               for v in values]) + "}"
    except (KeyError, TypeError):
        return list(values)


def _db_message(exc: DBAPIError) -> str:
    return str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)


def latest_position(states: Iterable[OffsetState]) -> Position | None:
    positions = [s.position for s in states if s.position is not None]
    return max(positions) if positions else None
