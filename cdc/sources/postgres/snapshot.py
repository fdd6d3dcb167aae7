"""Snapshots: every row of the captured tables as ``r`` events, read inside one
consistent snapshot, plus the pure decisions around them (startup plan, progress,
Debezium's ``source.snapshot`` markers).

The runner's initial snapshot reads inside the snapshot the replication slot exported
when it was created, so streaming from the slot's consistent point continues exactly
where the snapshot ends. A later re-snapshot of one table uses a temporary slot for the
same guarantee; its rows carry that slot's consistent point as their position.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from psycopg2 import sql

from cdc.errors import SlotError
from cdc.events import Change, Op
from cdc.positions import SourcePosition
from cdc.sources.postgres.catalog import table_columns, table_facts, translate
from cdc.sources.postgres.tables import TableCodec, build_codec

__all__ = [
    "Progress",
    "StartupPlan",
    "progress",
    "read_snapshot",
    "snapshot_marker",
    "startup_plan",
]

log = logging.getLogger("cdc.snapshot")


@dataclass(frozen=True)
class StartupPlan:
    drop_slot: bool
    create_slot: bool
    snapshot: bool
    reason: str


def startup_plan(mode: str, offset: Mapping[str, Any] | None, slot_exists: bool) -> StartupPlan:
    """What to do before streaming, from the snapshot mode, stored offset and slot."""
    completed = bool(offset and offset.get("snapshot_completed"))
    if mode == "no_data":
        if slot_exists:
            return StartupPlan(False, False, False, "resume streaming from the slot")
        return StartupPlan(False, True, False, "new slot, no snapshot (snapshot_mode no_data)")
    if completed and slot_exists:
        return StartupPlan(False, False, False, "resume streaming from the slot")
    if completed and mode == "initial":
        raise SlotError(
            "the replication slot is gone but the offsets say streaming had started, so "
            "changes may have been lost; use snapshot_mode when_needed to snapshot again, "
            "or `strangle cdc reset`"
        )
    reason = "slot lost; snapshot again" if completed else "no completed snapshot yet"
    return StartupPlan(slot_exists, True, True, reason)


def snapshot_marker(first_table: bool, last_table: bool, first_row: bool, last_row: bool) -> str:
    """Debezium's ``source.snapshot`` value for one snapshot row."""
    if last_table and last_row:
        return "last"
    if first_table and first_row:
        return "first"
    if first_row:
        return "first_in_data_collection"
    if last_row:
        return "last_in_data_collection"
    return "true"


@dataclass(frozen=True)
class Progress:
    table: str
    rows: int
    total: int
    rows_per_s: float
    eta_s: float | None
    percent: float | None


def progress(table: str, rows: int, total: int, elapsed_s: float) -> Progress:
    rate = rows / elapsed_s if elapsed_s > 0 else 0.0
    left = max(total - rows, 0)
    eta = left / rate if rate > 0 else None
    percent = min(100.0, 100.0 * rows / total) if total > 0 else None
    return Progress(
        table,
        rows,
        total,
        round(rate, 1),
        None if eta is None else round(eta, 1),
        None if percent is None else round(percent, 1),
    )


def _estimate(cur: Any, qualified: str) -> int:
    schema, _, name = qualified.partition(".")
    cur.execute(
        "SELECT c.reltuples::bigint FROM pg_class c JOIN pg_namespace n "
        "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
        (schema, name),
    )
    row = cur.fetchone()
    if row is not None and row[0] is not None and row[0] > 0:
        return int(row[0])
    cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, name)))
    counted = cur.fetchone()
    return int(counted[0]) if counted else 0


def _codec(conn: Any, qualified: str) -> TableCodec:
    schema, _, name = qualified.partition(".")
    columns = table_columns(conn, qualified)
    facts = table_facts(conn, 0, schema, name)
    return build_codec(schema, name, columns, facts.key)


def _rows(conn: Any, codec: TableCodec, batch: int) -> Iterator[list[str | None]]:
    table = codec.table
    select = sql.SQL("SELECT {} FROM {}").format(
        sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c)) for c in codec.names),
        sql.Identifier(table.schema, table.name),
    )
    with conn.cursor(name=f"snap_{table.name[:40]}") as cur:
        cur.itersize = batch
        cur.execute(select)
        for row in cur:
            yield list(row)


def read_snapshot(
    conn: Any,
    tables: Sequence[str],
    *,
    snapshot_name: str | None,
    consistent_lsn: int,
    emit: Callable[[Change], object],
    on_progress: Callable[[Progress], None] | None = None,
    progress_every_s: float = 2.0,
    batch: int = 5000,
) -> dict[str, int]:
    """Emit a ``r`` change for every row of ``tables``; returns rows per table.

    ``conn`` must be a fresh connection that is not in a transaction; it is left
    committed.
    """
    position = SourcePosition(consistent_lsn, 0)
    now_us = time.time_ns() // 1000
    counts: dict[str, int] = {}
    with translate("snapshot failed"):
        conn.autocommit = False
        conn.set_session(isolation_level="REPEATABLE READ", readonly=True)
        with conn.cursor() as cur:
            if snapshot_name:
                cur.execute("SET TRANSACTION SNAPSHOT %s", (snapshot_name,))
            else:
                cur.execute("SELECT 1")
            codecs = [_codec(conn, t) for t in tables]
            totals = {t: _estimate(cur, t) for t in tables}
        last_index = len(tables) - 1
        for index, (qualified, codec) in enumerate(zip(tables, codecs, strict=True)):
            started = last_report = time.monotonic()
            rows = 0
            pending: list[str | None] | None = None
            for values in _rows(conn, codec, batch):
                if pending is not None:
                    emit(
                        _read(codec, pending, position, now_us, index == 0, False, rows == 1, False)
                    )
                pending = values
                rows += 1
                if on_progress and time.monotonic() - last_report >= progress_every_s:
                    last_report = time.monotonic()
                    on_progress(progress(qualified, rows, totals[qualified], last_report - started))
            if pending is not None:
                emit(
                    _read(
                        codec,
                        pending,
                        position,
                        now_us,
                        index == 0,
                        index == last_index,
                        rows == 1,
                        True,
                    )
                )
            counts[qualified] = rows
            if on_progress:
                on_progress(
                    progress(
                        qualified, rows, max(rows, 1) if rows else 0, time.monotonic() - started
                    )
                )
            log.info("snapshot of %s done", qualified, extra={"table": qualified, "rows": rows})
        conn.commit()
        conn.autocommit = True
    return counts


def _read(
    codec: TableCodec,
    values: list[str | None],
    position: SourcePosition,
    ts_us: int,
    first_table: bool,
    last_table: bool,
    first_row: bool,
    last_row: bool,
) -> Change:
    return Change(
        Op.READ,
        codec.table,
        None,
        codec.row(values),
        position,
        ts_us=ts_us,
        lsn=position.commit,
        snapshot=snapshot_marker(first_table, last_table, first_row, last_row),
    )
