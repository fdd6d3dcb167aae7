"""The long-running PostgreSQL → Kafka capture process.

``PgCapture(config).run()``: check Kafka, sync the publication, snapshot if the
snapshot mode and offsets say so, then stream the slot. Every record of a transaction
is produced asynchronously; the slot is acknowledged with the transaction's commit end
LSN only after Kafka confirmed all of them (:class:`~cdc.delivery.AckTracker`). A crash
at any point therefore resumes at the first unacknowledged transaction: nothing is
lost, and the only duplicates are re-sent transactions with their original positions.

Idle databases: a heartbeat record goes to ``__debezium-heartbeat.<prefix>`` every
``heartbeat_interval_s`` and, with nothing in flight, the slot is moved to the server's
WAL end so it does not retain WAL. ``stop()`` (SIGTERM in ``strangle cdc run``) drains
Kafka, acknowledges what was confirmed and exits.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cdc.config import CdcConfig
from cdc.converter import JsonConverter
from cdc.delivery import AckTracker, Txn
from cdc.embedded_broker import EmbeddedBroker
from cdc.errors import CdcError, ConfigError, DecodeError
from cdc.events import (
    Change,
    Connector,
    message_record,
    transaction_id,
    transaction_record,
)
from cdc.kafka import Producer
from cdc.liveness import events_per_second, is_healthy
from cdc.observability import Metrics, StatusServer
from cdc.offsets import OffsetStore, open_store
from cdc.positions import SourcePosition, format_lsn
from cdc.publisher import Publisher
from cdc.sources.postgres import catalog
from cdc.sources.postgres.capture import ChangeAssembler, TableFacts
from cdc.sources.postgres.decode import (
    Begin,
    Commit,
    LogicalMessage,
    Origin,
    decode,
    is_sink_origin,
)
from cdc.sources.postgres.fastpath import OneRecordPath
from cdc.sources.postgres.publication import sync_publication
from cdc.sources.postgres.snapshot import Progress, read_snapshot, startup_plan
from cdc.sources.postgres.stream import ReplicationStream

__all__ = ["PgCapture"]

log = logging.getLogger("cdc.runner")

SERVICE_EVERY = 512  # messages read per batch; Kafka polls / acks between batches
_ROW_TAGS = frozenset(b"IUDT")  # Insert Update Delete Truncate
LAG_QUERY_EVERY_S = 5.0
STATUS_EVERY_S = 2.0
OFFSET_EVERY_S = 5.0


class _SnapshotStopped(Exception):
    pass


_gc_lock = threading.Lock()
_gc_streams = 0
_gc_saved: tuple[int, int, int] | None = None
YOUNG_GC_THRESHOLD = 20_000


@contextlib.contextmanager
def _fewer_young_collections() -> Any:
    """While streaming, collect the youngest generation every 20,000 allocations, not 700.

    Each transaction leaves a few GC-tracked objects (its Txn, its delivery callback)
    alive until Kafka confirms it — thousands in flight — and the default threshold had
    the collector scan them every ~100 transactions (~8% of the CPU of single-row
    transactions). Restored when the last stream in the process ends."""
    global _gc_streams, _gc_saved
    with _gc_lock:
        if _gc_streams == 0:
            _gc_saved = gc.get_threshold()
            if _gc_saved[0] < YOUNG_GC_THRESHOLD:
                gc.set_threshold(YOUNG_GC_THRESHOLD, *_gc_saved[1:])
        _gc_streams += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_streams -= 1
            if _gc_streams == 0 and _gc_saved is not None:
                gc.set_threshold(*_gc_saved)


class _TransactionMetadata:
    """Debezium's ``provide.transaction.metadata``: BEGIN/END records on
    ``<prefix>.transaction`` and a ``transaction`` block in every change event. The
    BEGIN/END records belong to the transaction's delivery like its changes."""

    def __init__(self, publisher: Publisher, prefix: str) -> None:
        self.publisher = publisher
        self.prefix = prefix
        self.id = ""
        self.total = 0
        self.counts: dict[str, int] = {}

    def begin(self, msg: Begin, txn: Txn[int]) -> None:
        self.id = transaction_id(msg.xid, msg.final_lsn)
        self.total = 0
        self.counts = {}
        rec = transaction_record(
            self.prefix, status="BEGIN", tx=self.id, ts_ms=msg.commit_ts_us // 1000
        )
        self.publisher.publish_record(rec, txn)

    def annotate(self, changes: Sequence[Change]) -> list[Change]:
        out = []
        for change in changes:
            name = change.table.qualified
            self.total += 1
            self.counts[name] = self.counts.get(name, 0) + 1
            block = {
                "id": self.id,
                "total_order": self.total,
                "data_collection_order": self.counts[name],
            }
            out.append(dataclasses.replace(change, transaction=block))
        return out

    def end(self, msg: Commit, txn: Txn[int]) -> None:
        rec = transaction_record(
            self.prefix,
            status="END",
            tx=self.id,
            ts_ms=msg.commit_ts_us // 1000,
            counts=self.counts,
        )
        self.publisher.publish_record(rec, txn)


class PgCapture:
    """``PgCapture(config).run()`` — blocks until :meth:`stop` or an error.

    ``fast_path=False`` sends every change the general way (the hot path's output is
    identical; the switch exists to compare them)."""

    def __init__(
        self,
        config: CdcConfig,
        *,
        offsets: OffsetStore | None = None,
        metrics: Metrics | None = None,
        serve_http: bool = True,
        delivery_hook: Callable[[Change], None] | None = None,
        fast_path: bool = True,
    ) -> None:
        self.config = config
        self.fast_path = fast_path
        self.metrics = metrics or Metrics()
        self.offsets = offsets or open_store(config.offsets, default_dir=config.state_dir)
        self.serve_http = serve_http
        self.delivery_hook = delivery_hook
        self.http_port: int | None = None
        self._stop = threading.Event()
        self._state = "starting"
        self._broker: EmbeddedBroker | None = None
        self._producer: Producer | None = None
        self._catalog: Any = None
        self._stream: ReplicationStream | None = None
        self._tracker: AckTracker[int] = AckTracker()
        self._unacked_commits: deque[tuple[int, int]] = deque()
        self._last_change: Change | None = None
        self._last_loop = time.monotonic()
        self._rate: deque[tuple[float, int]] = deque(maxlen=30)
        self._snapshot: dict[str, Any] | None = None
        self._lag_bytes: int | None = None
        self._acked_commit_ts_us: int | None = None
        self._publisher: Publisher | None = None
        self._fast: OneRecordPath | None = None
        self._error: str | None = None
        self._delivered_seen = 0
        self._last_lag_query = 0.0
        self._next_heartbeat = 0.0
        self._next_periodic = 0.0

    # -- lifecycle -------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        server = None
        try:
            if self.serve_http:
                server = StatusServer(
                    self.config.http_host,
                    self.config.http_port,
                    self.metrics,
                    self.status,
                    self.healthy,
                )
                self.http_port = server.start()
            self._run()
        except CdcError as exc:
            self._error = str(exc)
            self._state = "failed"
            raise
        finally:
            self._close()
            if self._state != "failed":
                self._state = "stopped"
            self._write_status()
            if server is not None:
                server.stop()

    def _close(self) -> None:
        self.metrics.streaming.set(0)
        if self._stream is not None:
            self._stream.close()
        if self._catalog is not None:
            self._catalog.close()
        if self._broker is not None:
            self._broker.stop()

    def _bootstrap(self) -> str:
        if not self.config.embedded_kafka:
            return self.config.bootstrap_servers
        self._broker = EmbeddedBroker()
        self._broker.start()
        log.info(
            "embedded Kafka broker started", extra={"bootstrap": self._broker.bootstrap_servers}
        )
        return self._broker.bootstrap_servers

    def _run(self) -> None:
        cfg = self.config
        if self._stop.is_set():
            return
        producer = Producer(
            self._bootstrap(),
            message_timeout_s=cfg.message_timeout_s,
            config=cfg.producer,
            topic_partitions=cfg.topic_partitions,
        )
        producer.check()
        self._producer = producer
        self._catalog = catalog.connect(cfg.database_url)
        dbname = self._catalog.get_dsn_parameters().get("dbname", "")
        self._publisher = Publisher(
            producer,
            Connector("postgresql", name=cfg.topic_prefix, db=dbname),
            JsonConverter(schemas_enable=cfg.schemas_enable),
            tombstones=cfg.tombstones_on_delete,
            delivery_hook=self.delivery_hook,
        )
        sync_publication(self._catalog, cfg.publication, cfg.tables)
        offset = self.offsets.load(cfg.offset_name)
        slot = catalog.slot_info(self._catalog, cfg.slot)
        plan = startup_plan(cfg.snapshot_mode, offset, slot is not None)
        log.info(
            "starting capture",
            extra={"slot": cfg.slot, "plan": plan.reason, "tables": list(cfg.tables)},
        )
        if plan.drop_slot:
            catalog.drop_slot(self._catalog, cfg.slot)
        self._stream = ReplicationStream(
            cfg.database_url, slot=cfg.slot, publication=cfg.publication
        )
        if plan.create_slot:
            consistent, snapshot_name = self._stream.create_slot(export_snapshot=plan.snapshot)
            if plan.snapshot and not self._run_snapshot(snapshot_name, consistent):
                return
            self.offsets.save(
                cfg.offset_name,
                {
                    "slot": cfg.slot,
                    "snapshot_completed": True,
                    "lsn": consistent,
                    "snapshot_mode": cfg.snapshot_mode,
                },
            )
        if self._stop.is_set():
            return
        self._stream.start()
        self._state = "streaming"
        self.metrics.streaming.set(1)
        log.info("streaming", extra={"slot": cfg.slot, "publication": cfg.publication})
        with _fewer_young_collections():
            self._stream_loop()

    # -- snapshot --------------------------------------------------------------------

    def _run_snapshot(self, snapshot_name: str | None, consistent: int) -> bool:
        """Snapshot every captured table; False when stopped before the end (the next
        run then snapshots again, since the offsets do not say it completed)."""
        assert self._publisher is not None and self._producer is not None
        self._state = "snapshot"
        publisher, producer, metrics = self._publisher, self._producer, self.metrics
        conn = catalog.connect(self.config.database_url)
        emitted = 0

        def emit(change: Change) -> None:
            nonlocal emitted
            if self._stop.is_set():
                raise _SnapshotStopped
            publisher.publish(change)
            emitted += 1
            if emitted % SERVICE_EVERY == 0:
                producer.poll(0)
                self._last_loop = time.monotonic()

        def on_progress(p: Progress) -> None:
            self._snapshot = {
                "table": p.table,
                "rows": p.rows,
                "total_estimate": p.total,
                "rows_per_s": p.rows_per_s,
                "eta_s": p.eta_s,
                "percent": p.percent,
            }
            metrics.snapshot_rate.set(p.rows_per_s)
            metrics.snapshot_eta.set(p.eta_s or 0)
            log.info("snapshot progress", extra=self._snapshot)
            self._write_status()

        try:
            counts = read_snapshot(
                conn,
                self.config.tables,
                snapshot_name=snapshot_name,
                consistent_lsn=consistent,
                emit=emit,
                on_progress=on_progress,
            )
        except _SnapshotStopped:
            producer.flush(self.config.message_timeout_s)
            log.info("snapshot stopped before the end; the next run starts it again")
            return False
        finally:
            conn.close()
        for table, rows in counts.items():
            metrics.snapshot_rows.labels(table).inc(rows)
        producer.flush(self.config.message_timeout_s)
        self._count_sent()
        log.info("snapshot complete", extra={"rows": counts, "lsn": format_lsn(consistent)})
        return True

    # -- streaming -------------------------------------------------------------------

    def _facts(self, relid: int, schema: str, name: str) -> TableFacts:
        return catalog.table_facts(self._catalog, relid, schema, name)

    def _stream_loop(self) -> None:
        assert self._stream is not None and self._publisher is not None
        assert self._producer is not None
        stream, publisher, tracker = self._stream, self._publisher, self._tracker
        assembler = ChangeAssembler(self._facts, captured=frozenset(self.config.tables))
        feed, publish = assembler.feed, publisher.publish
        txn: Txn[int] | None = None
        meta = (
            _TransactionMetadata(publisher, self.config.topic_prefix)
            if self.config.provide_transaction_metadata
            else None
        )
        fast = None
        if meta is None and self.fast_path:
            fast = self._fast = OneRecordPath(
                assembler,
                self._producer,
                publisher.converter,
                publisher.connector,
                clock_ns=publisher.clock_ns,
                delivery_hook=self.delivery_hook,
            )
        one_record = fast.handle if fast is not None else None
        echo = False  # the transaction in hand was written by a strangler sink: drop it
        now = time.monotonic()
        self._next_heartbeat = now + self.config.heartbeat_interval_s
        self._next_periodic = now
        read_batch = stream.read_batch
        while not self._stop.is_set():
            batch = read_batch(SERVICE_EVERY)
            if not batch:
                self._service(idle=True)
                # the socket wakes us for WAL only: with records in flight, come back
                # soon for their confirmations so the slot is acknowledged promptly
                stream.wait(0.002 if tracker.in_flight else 0.05)
                continue
            for payload, lsn in batch:
                tag = payload[0]
                if echo and tag in _ROW_TAGS:
                    continue
                if (
                    (tag == 0x49 or tag == 0x55)  # Insert, Update
                    and one_record is not None
                    and txn is not None
                    and one_record(payload, lsn, txn)
                ):
                    continue
                try:
                    msg = decode(payload)
                    changes = feed(msg, lsn)
                except DecodeError as exc:
                    raise DecodeError(
                        f"poison change at LSN {format_lsn(lsn)}: {exc}. Nothing from this "
                        "transaction on was acknowledged; fix the column type or value and restart"
                    ) from exc
                cls = msg.__class__
                if cls is Begin:
                    echo = False
                    txn = tracker.begin()
                    if meta is not None:
                        assert isinstance(msg, Begin)
                        meta.begin(msg, txn)
                elif cls is Origin:
                    assert isinstance(msg, Origin)
                    echo = is_sink_origin(msg.name)
                elif changes:
                    if meta is not None:
                        changes = meta.annotate(changes)
                    for change in changes:
                        publish(change, txn)
                    self._last_change = changes[-1]
                elif cls is LogicalMessage:
                    assert isinstance(msg, LogicalMessage)
                    self._publish_message(msg, txn, assembler.begin)
                elif cls is Commit and txn is not None:
                    assert isinstance(msg, Commit)
                    if meta is not None:
                        meta.end(msg, txn)
                    tracker.commit(txn, msg.end_lsn)
                    self._unacked_commits.append((msg.end_lsn, msg.commit_ts_us))
                    txn = None
            self._service(idle=False)
        self._drain()

    def _publish_message(
        self, msg: LogicalMessage, txn: Txn[int] | None, begin: Begin | None
    ) -> None:
        """``pg_logical_emit_message()`` → ``<prefix>.message``. A transactional message
        belongs to its transaction's delivery; a non-transactional one (sent as soon as
        PostgreSQL decodes it) is acknowledged at its own LSN once Kafka confirmed it."""
        assert self._publisher is not None
        publisher = self._publisher
        owner: Txn[int] | None
        if msg.transactional and txn is not None and begin is not None:
            commit, ts_us, xid, owner = begin.final_lsn, begin.commit_ts_us, begin.xid, txn
        else:
            commit, ts_us, xid, owner = msg.lsn, time.time_ns() // 1000, None, None
        rec = message_record(
            publisher.connector,
            prefix=msg.prefix,
            content=msg.content,
            position=SourcePosition(commit, msg.lsn),
            ts_us=ts_us,
            tx_id=xid,
            lsn=msg.lsn,
            now_ns=publisher.clock_ns(),
        )
        if owner is not None:
            publisher.publish_record(rec, owner)
        else:
            own = self._tracker.begin()
            publisher.publish_record(rec, own)
            self._tracker.commit(own, msg.lsn)
        publisher.sent_by_op["m"] += 1

    def _service(self, *, idle: bool) -> None:
        """Serve Kafka callbacks, acknowledge what is confirmed, periodic chores."""
        assert self._stream is not None and self._publisher is not None
        assert self._producer is not None
        self._producer.poll(0)
        self._ack_ready()
        now = time.monotonic()
        self._last_loop = now
        if idle:
            if self._tracker.in_flight == 0:
                self._stream.ack(self._stream.wal_end)
            if now >= self._next_heartbeat:
                self._publisher.heartbeat(self.metrics.heartbeats.inc)
                self._next_heartbeat = now + self.config.heartbeat_interval_s
        else:
            self._next_heartbeat = now + self.config.heartbeat_interval_s
        if now >= self._next_periodic:
            self._next_periodic = now + STATUS_EVERY_S
            self._periodic(now)

    def _ack_ready(self) -> None:
        assert self._stream is not None
        lsn = self._tracker.ready()
        if lsn is None:
            return
        self._stream.ack(lsn)
        acked = 0
        while self._unacked_commits and self._unacked_commits[0][0] <= lsn:
            _, self._acked_commit_ts_us = self._unacked_commits.popleft()
            acked += 1
        self.metrics.transactions.inc(acked)
        self.metrics.acked_lsn.set(lsn)

    def _count_sent(self) -> None:
        assert self._publisher is not None
        for op, n in self._publisher.sent_by_op.items():
            self.metrics.events.labels(op).inc(n)
        self._publisher.sent_by_op.clear()
        if self._fast is not None:
            for op, n in self._fast.take_sent().items():
                self.metrics.events.labels(op).inc(n)

    def _periodic(self, now: float) -> None:
        assert self._publisher is not None and self._producer is not None
        self._count_sent()
        self._rate.append((now, self._publisher.delivered))
        self.metrics.delivered.inc(self._publisher.delivered - self._delivered_seen)
        self._delivered_seen = self._publisher.delivered
        self.metrics.pending_records.set(len(self._producer))
        now_us = time.time_ns() // 1000
        oldest = self._unacked_commits[0][1] if self._unacked_commits else None
        self.metrics.lag_seconds.set(max(0.0, (now_us - oldest) / 1e6) if oldest else 0.0)
        last = self._last_event()
        if last is not None:
            self.metrics.behind_source_ms.set(max(0, (now_us - last["commit_ts_us"]) // 1000))
        if now - self._last_lag_query >= LAG_QUERY_EVERY_S:
            self._last_lag_query = now
            info = catalog.slot_info(self._catalog, self.config.slot)
            self._lag_bytes = info.lag_bytes if info else None
            self.metrics.lag_bytes.set(self._lag_bytes or 0)
            self._save_offset()
        self._write_status()

    def _save_offset(self) -> None:
        assert self._stream is not None
        if self._stream.acked_lsn:
            self.offsets.save(
                self.config.offset_name,
                {
                    "slot": self.config.slot,
                    "snapshot_completed": True,
                    "lsn": self._stream.acked_lsn,
                    "ts_usec": self._acked_commit_ts_us,
                    "snapshot_mode": self.config.snapshot_mode,
                },
            )

    def _drain(self) -> None:
        """Graceful stop: wait for Kafka, acknowledge what it confirmed."""
        assert self._producer is not None
        log.info("stopping: draining Kafka deliveries")
        try:
            self._producer.flush(self.config.message_timeout_s)
        finally:
            self._ack_ready()
            self._save_offset()
        log.info(
            "stopped",
            extra={"acked_lsn": format_lsn(self._stream.acked_lsn) if self._stream else None},
        )

    # -- status ----------------------------------------------------------------------

    def healthy(self) -> bool:
        age = time.monotonic() - self._last_loop
        return is_healthy(self._state, age, self.config.heartbeat_interval_s)

    def events_per_second(self) -> float:
        return events_per_second(self._rate)

    def status(self) -> dict[str, Any]:
        acked = self._stream.acked_lsn if self._stream else 0
        oldest = self._unacked_commits[0][1] if self._unacked_commits else None
        return {
            "state": self._state,
            "error": self._error,
            "pid": os.getpid(),
            "slot": self.config.slot,
            "publication": self.config.publication,
            "tables": list(self.config.tables),
            "acked_lsn": format_lsn(acked) if acked else None,
            "lag_bytes": self._lag_bytes,
            "lag_seconds": round(max(0.0, time.time() - oldest / 1e6), 3) if oldest else 0.0,
            "last_event": self._last_event(),
            "events_delivered": self._publisher.delivered if self._publisher else 0,
            "events_per_s": self.events_per_second(),
            "snapshot": self._snapshot,
            "http_port": self.http_port,
            "updated_at": time.time(),
        }

    def _last_event(self) -> dict[str, Any] | None:
        change = self._last_change
        fast = self._fast.last if self._fast is not None else None
        if fast is not None and (change is None or (change.lsn or 0) < fast[2]):
            codec, op, lsn, ts_us = fast
            return {
                "table": codec.table.qualified,
                "op": op,
                "lsn": format_lsn(lsn),
                "commit_ts_us": ts_us,
            }
        if change is None:
            return None
        return {
            "table": change.table.qualified,
            "op": change.op.value,
            "lsn": format_lsn(change.lsn) if change.lsn is not None else None,
            "commit_ts_us": change.ts_us,
        }

    def _write_status(self) -> None:
        path = Path(self.config.state_dir) / "status.json"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.status(), default=str))
            tmp.replace(path)
        except OSError as exc:
            log.warning("cannot write status file", extra={"path": str(path), "error": str(exc)})


def snapshot_table(config: CdcConfig, table: str, *, on_progress: Any = None) -> int:
    """Re-snapshot one captured table now, alongside a running capture.

    Reads inside the snapshot of a temporary replication slot, so the rows carry that
    slot's consistent point as their position: sinks order them correctly against the
    streamed changes of the same rows. Returns the number of rows sent.
    """
    qualified = table if "." in table else f"public.{table}"
    if qualified not in config.tables:
        raise ConfigError(
            f"{qualified} is not a captured table (captured: {', '.join(config.tables)})"
        )
    bootstrap = config.bootstrap_servers
    if config.embedded_kafka:
        raise ConfigError(
            "kafka.bootstrap_servers is 'embedded': the broker lives inside `strangle cdc run`; "
            "set KAFKA_BOOTSTRAP_SERVERS to its address to re-snapshot"
        )
    producer = Producer(
        bootstrap,
        message_timeout_s=config.message_timeout_s,
        config=config.producer,
        topic_partitions=config.topic_partitions,
    )
    producer.check()
    conn = catalog.connect(config.database_url)
    stream = ReplicationStream(
        config.database_url,
        slot=f"{config.slot}_snap_{os.getpid()}",
        publication=config.publication,
    )
    try:
        dbname = conn.get_dsn_parameters().get("dbname", "")
        publisher = Publisher(
            producer,
            Connector("postgresql", name=config.topic_prefix, db=dbname),
            JsonConverter(schemas_enable=config.schemas_enable),
            tombstones=config.tombstones_on_delete,
        )
        consistent, name = stream.create_slot(export_snapshot=True, temporary=True)
        reader = catalog.connect(config.database_url)
        try:
            counts = read_snapshot(
                reader,
                [qualified],
                snapshot_name=name,
                consistent_lsn=consistent,
                emit=publisher.publish,
                on_progress=on_progress,
            )
        finally:
            reader.close()
        producer.flush(config.message_timeout_s)
    finally:
        stream.close()
        conn.close()
    return counts[qualified]
