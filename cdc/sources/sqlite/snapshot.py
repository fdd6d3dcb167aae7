"""Initial snapshot: every captured row as a ``r`` event, consistent with the changelog
position at which streaming starts.

Inside ONE read transaction the snapshot reads the last changelog id ever handed out
(``sqlite_sequence``) and then the tables. SQLite's read transactions see one committed
state (in WAL mode without blocking the monolith's writers), so the rows read contain
exactly the changes up to that id: streaming resumes after it, and every later change
has a larger id. The rows are read through the triggers' own ``json_object`` image, so
snapshot values render exactly like streamed ones.

The offset is recorded only after the whole snapshot was confirmed by Kafka; a crash
during the snapshot repeats it (same positions). Older changelog rows, already
contained in the snapshot, are pruned afterwards.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from cdc.errors import SourceError
from cdc.events import Change, Connector, Op, Record, Table, records_for
from cdc.offsets import OffsetStore
from cdc.positions import SourcePosition
from cdc.sources.sqlite.publish import Publisher
from cdc.sources.sqlite.relay import payload
from cdc.sources.sqlite.render import parse_image
from cdc.sources.sqlite.tables import DEFAULT_SCHEMA, event_table
from cdc.sources.sqlite.triggers import (
    CHANGELOG,
    CapturedTable,
    changelog_position,
    image_sql,
    installed_tables,
    quote,
)

__all__ = ["Progress", "snapshot", "snapshot_flags"]

log = logging.getLogger("cdc.sqlite.snapshot")


@dataclass(frozen=True, slots=True)
class Progress:
    table: str
    rows: int
    total: int
    elapsed_s: float

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        rate = self.rows_per_s
        return (self.total - self.rows) / rate if rate > 0 else None


def snapshot_flags(table_sizes: Sequence[int]) -> Iterator[str]:
    """Debezium 2.x ``source.snapshot`` markers for rows of consecutive tables (pure):
    ``first`` for the very first row, ``last_in_data_collection`` for each table's last,
    ``last`` for the final row, ``true`` otherwise."""
    total = sum(table_sizes)
    seen = 0
    for size in table_sizes:
        for i in range(size):
            seen += 1
            if seen == total:
                yield "last"
            elif seen == 1:
                yield "first"
            elif i == size - 1:
                yield "last_in_data_collection"
            else:
                yield "true"


def _rows(conn: sqlite3.Connection, table: CapturedTable) -> Iterator[str]:
    ref = quote(table.name)
    order = ", ".join(quote(k) for k in table.primary_key)
    cursor = conn.execute(f"SELECT {image_sql(table, ref)} FROM {ref} ORDER BY {order}")
    for (image,) in cursor:
        yield image


def snapshot(
    conn: sqlite3.Connection,
    connector: Connector,
    publisher: Publisher,
    offsets: OffsetStore | None,
    *,
    name: str,
    schema: str = DEFAULT_SCHEMA,
    only: Sequence[str] | None = None,
    chunk: int = 5000,
    progress: Callable[[Progress], None] | None = None,
) -> int:
    """Publish every row of the captured tables (or ``only`` those); returns the
    changelog position the snapshot is consistent with.

    A full snapshot records that position as the stream offset and prunes the changelog
    up to it; a snapshot of ``only`` some tables (a re-run) leaves the offset alone.
    """
    if conn.in_transaction:
        conn.commit()
    conn.execute("BEGIN")
    try:
        position = changelog_position(conn)
        captured = installed_tables(conn)
        names = list(only) if only else sorted(captured)
        unknown = [n for n in names if n not in captured]
        if unknown:
            raise SourceError(f"not captured (install capture first): {', '.join(unknown)}")
        sizes = [
            int(conn.execute(f"SELECT count(*) FROM {quote(n)}").fetchone()[0]) for n in names
        ]
        flags = snapshot_flags(sizes)
        ts_us = time.time_ns() // 1000
        started = time.monotonic()
        for name_, size in zip(names, sizes, strict=True):
            table = event_table(captured[name_], schema)
            batch: list[Record] = []
            done = 0
            for image in _rows(conn, captured[name_]):
                change = _read_event(table, image, position, ts_us, next(flags))
                batch.extend(records_for(connector, change, now_ns=time.time_ns()))
                done += 1
                if len(batch) >= chunk:
                    publisher.publish(batch)
                    batch = []
                    _report(progress, name_, done, size, started)
            if batch:
                publisher.publish(batch)
            _report(progress, name_, done, size, started)
    except sqlite3.Error as exc:
        raise SourceError(f"snapshot failed reading SQLite: {exc}") from exc
    finally:
        conn.execute("COMMIT")
    if offsets is not None and not only:
        offsets.save(name, {"changelog_id": position, "snapshot": "completed"})
        try:
            conn.execute(f"DELETE FROM {CHANGELOG} WHERE id <= ?", (position,))
        except sqlite3.OperationalError as exc:
            log.warning("changelog prune after snapshot deferred", extra={"error": str(exc)})
    return position


def _read_event(table: Table, image: str, position: int, ts_us: int, flag: str) -> Change:
    return Change(
        op=Op.READ,
        table=table,
        before=None,
        after=payload(table, parse_image(image)),
        position=SourcePosition(position, position),
        ts_us=ts_us,
        lsn=position,
        snapshot=flag,
    )


def _report(
    progress: Callable[[Progress], None] | None, table: str, rows: int, total: int, t0: float
) -> None:
    report = Progress(table, rows, total, time.monotonic() - t0)
    log.info(
        "snapshot progress",
        extra={
            "table": table, "rows": rows, "total": total,
            "rows_per_s": round(report.rows_per_s, 1), "eta_s": report.eta_s,
        },
    )
    if progress is not None:
        progress(report)
