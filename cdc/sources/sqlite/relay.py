"""The relay: changelog rows → Debezium events on Kafka, in changelog id order.

One step (:meth:`Relay.step`) reads the next batch of committed changelog rows after the
recorded offset, publishes their records and waits for Kafka to confirm all of them,
THEN records the last id as the offset, THEN prunes the changelog up to it. A crash
before the offset is written re-sends the batch (same ``source.lsn`` / ``sequence``, so
sinks drop the duplicates); nothing is ever pruned that was not recorded, so nothing
is lost.

Why id order is enough: SQLite has one writer at a time and ids are AUTOINCREMENT, so a
transaction still open holds ids above every committed row and its rows appear all at
once when it commits — reading ``id > offset`` never skips a row that commits later.

Rows whose transaction id is negative were written by a CDC sink applying the other
direction's changes (:data:`cdc.sources.sqlite.txids.SINK_TXID`): they are passed over —
their offset still advances and they are pruned — so a change never echoes back to the
side it came from.

A row that cannot be turned into an event (unknown table, broken image, a value that is
not of its column's kind) stops the relay with :class:`~cdc.errors.DecodeError` naming
its id, before anything after it is published (Debezium's default
``event.processing.failure.handling.mode=fail``): fix the row or the capture metadata
and restart; nothing is lost.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cdc.errors import DecodeError, SourceError
from cdc.events import Change, Connector, Op, Record, Table, heartbeat_record, records_for
from cdc.offsets import OffsetStore
from cdc.positions import SourcePosition
from cdc.sources.sqlite.publish import Publisher
from cdc.sources.sqlite.render import parse_image
from cdc.sources.sqlite.tables import DEFAULT_SCHEMA, event_table
from cdc.sources.sqlite.triggers import CHANGELOG, META, CapturedTable

__all__ = ["ChangelogRow", "Relay", "change_for", "payload", "read_offset"]

log = logging.getLogger("cdc.sqlite.relay")


@dataclass(frozen=True, slots=True)
class ChangelogRow:
    id: int
    txid: int
    table: str
    op: str
    before: str | None
    after: str | None
    ts_ms: int


def payload(table: Table, image: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """An image's values converted by the table's column types (pure)."""
    if image is None:
        return None
    out: dict[str, Any] = {}
    for column in table.columns:
        if column.name in image:
            raw = image[column.name]
            out[column.name] = None if raw is None else column.type.convert(raw)
    return out


def change_for(row: ChangelogRow, table: Table) -> Change:
    """The :class:`Change` for one changelog row (pure). Position = changelog id."""
    try:
        op = Op(row.op)
        before = payload(table, parse_image(row.before))
        after = payload(table, parse_image(row.after))
    except (DecodeError, ValueError) as exc:
        raise DecodeError(
            f"changelog row {row.id} ({row.table}, op {row.op!r}): {exc} — nothing after it"
            f" was published; inspect it (SELECT * FROM {CHANGELOG} WHERE id = {row.id}), fix"
            " the value or the column's kind (capture install), and restart the relay"
        ) from exc
    return Change(
        op=op,
        table=table,
        before=before,
        after=after,
        position=SourcePosition(row.id, row.id),
        ts_us=row.ts_ms * 1000,
        tx_id=row.txid,
        lsn=row.id,
    )


def read_offset(offsets: OffsetStore, name: str) -> int | None:
    stored = offsets.load(name)
    if stored is None or "changelog_id" not in stored:
        return None
    return int(stored["changelog_id"])


class Relay:
    """``Relay(conn, connector, publisher, offsets, name="sqlite:shop")``.

    ``conn`` is the relay's own connection (autocommit, ``isolation_level=None``).
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        connector: Connector,
        publisher: Publisher,
        offsets: OffsetStore,
        *,
        name: str,
        schema: str = DEFAULT_SCHEMA,
        batch_size: int = 2000,
        prune: bool = True,
        heartbeat_interval_s: float = 0.0,
        tombstones: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.conn = conn
        self.connector = connector
        self.publisher = publisher
        self.offsets = offsets
        self.name = name
        self.schema = schema
        self.batch_size = batch_size
        self.prune = prune
        self.heartbeat_interval_s = heartbeat_interval_s
        self.tombstones = tombstones
        self.clock = clock
        self._tables: dict[str, tuple[str, Table]] = {}
        self._last_heartbeat = clock()
        self.published = 0
        self.last_event_ms: int | None = None

    def __repr__(self) -> str:
        return f"Relay({self.name!r}, batch_size={self.batch_size})"

    # -- metadata ----------------------------------------------------------------------

    def _load_tables(self) -> None:
        rows = self.conn.execute(f"SELECT table_name, spec FROM {META}").fetchall()
        for name, spec in rows:
            cached = self._tables.get(name)
            if cached is None or cached[0] != spec:
                captured = CapturedTable.from_json(name, spec)
                self._tables[name] = (spec, event_table(captured, self.schema))

    def _table(self, row: ChangelogRow) -> Table:
        if row.table not in self._tables:
            self._load_tables()
        if row.table not in self._tables:
            raise DecodeError(
                f"changelog row {row.id}: table {row.table!r} has no capture metadata;"
                " run `python -m monolith capture install`"
            )
        return self._tables[row.table][1]

    # -- one step ----------------------------------------------------------------------

    def _read(self, after_id: int) -> list[ChangelogRow]:
        try:
            rows = self.conn.execute(
                f'SELECT id, txid, "table", op, before, after, ts FROM {CHANGELOG}'
                " WHERE id > ? ORDER BY id LIMIT ?",
                (after_id, self.batch_size),
            ).fetchall()
        except sqlite3.Error as exc:
            raise SourceError(f"cannot read the changelog: {exc}") from exc
        return [ChangelogRow(*r) for r in rows]

    def records(self, rows: Iterable[ChangelogRow]) -> list[Record]:
        self._load_tables()
        now_ns = time.time_ns()
        out: list[Record] = []
        for row in rows:
            if row.txid < 0:  # applied by a sink: it came from the other side
                continue
            change = change_for(row, self._table(row))
            out.extend(
                records_for(self.connector, change, now_ns=now_ns, tombstones=self.tombstones)
            )
        return out

    def offset(self) -> int:
        stored = read_offset(self.offsets, self.name)
        if stored is None:
            raise SourceError(
                f"no offset recorded for {self.name}; run the snapshot first (snapshot mode"
                " 'initial' or 'no_data')"
            )
        return stored

    def step(self) -> int:
        """Relay one batch; returns the number of changelog rows published."""
        start = self.offset()
        rows = self._read(start)
        if not rows:
            self._maybe_heartbeat()
            return 0
        self.publisher.publish(self.records(rows))
        last = rows[-1]
        self.offsets.save(
            self.name, {"changelog_id": last.id, "txid": last.txid, "ts_ms": last.ts_ms}
        )
        self.published += len(rows)
        self.last_event_ms = last.ts_ms
        if self.prune:
            self._prune(last.id)
        return len(rows)

    def _prune(self, up_to: int) -> None:
        try:
            self.conn.execute(f"DELETE FROM {CHANGELOG} WHERE id <= ?", (up_to,))
        except sqlite3.OperationalError as exc:  # busy: the next step prunes it
            log.warning("changelog prune deferred", extra={"up_to": up_to, "error": str(exc)})

    def _maybe_heartbeat(self) -> None:
        if self.heartbeat_interval_s <= 0:
            return
        now = self.clock()
        if now - self._last_heartbeat >= self.heartbeat_interval_s:
            self.publisher.publish(
                [heartbeat_record(self.connector.name, now_ms=int(now * 1000))]
            )
            self._last_heartbeat = now

    def run(self, stop: threading.Event, *, poll_interval_s: float = 0.1) -> None:
        """Relay until ``stop`` is set; a full batch is followed at once by the next."""
        while not stop.is_set():
            if self.step() < self.batch_size:
                stop.wait(poll_interval_s)
