"""The sink loop: Kafka records -> planned writes -> one database transaction per batch.

The service database, not Kafka, is the source of truth for where the sink stands: on
every partition assignment the consumer seeks to the offsets stored with the applied
rows (``strangler_sink_offsets``), so a crash anywhere replays exactly the batch that
was not committed. Kafka offsets are committed too, but only for monitoring.

Poison events — undecodable, unknown columns, or rows the database refuses (constraint
violations) — go to ``<topic>.dlq`` with the original key and value and the error in
headers; the sink records their offsets and keeps going. A batch the database refuses
is retried event by event to find the poison one. When the database itself is down the
batch is rewound and retried after a pause; nothing is skipped.

Lag is time behind the source: now minus the source timestamp (``source.ts_ms``) of the
newest applied event or heartbeat — never broker watermarks.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter as Tally
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, TopicPartition
from confluent_kafka import Consumer as _KafkaConsumer
from confluent_kafka import KafkaError as _KafkaError
from confluent_kafka import KafkaException as _KafkaException
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from cdc.errors import KafkaError
from cdc.kafka import Producer, ensure_topics
from cdc.sinks.pipeline import ApplyPipeline
from cdc.sinks.planner import PlannedWrite, PoisonEvent, Skip, plan_event
from cdc.sinks.sqlalchemy_applier import ApplyError, Consumed, SqlAlchemyApplier

log = logging.getLogger("cdc.sinks")

DLQ_SUFFIX = ".dlq"


@dataclass(frozen=True, kw_only=True)
class SinkConfig:
    """``SinkConfig(bootstrap_servers="127.0.0.1:9092", group_id="notifications-sink",
    topics=("shop.public.notifications_notification",))``"""

    bootstrap_servers: str
    group_id: str
    topics: tuple[str, ...]
    heartbeat_topic: str | None = None
    batch_size: int = 1000
    pipelined: bool | None = None  # None: when the applier says it pays (a DB server)
    poll_timeout_s: float = 0.5
    retry_pause_s: float = 1.0
    session_timeout_ms: int = 6000

    def dlq_topic(self, topic: str) -> str:
        return topic + DLQ_SUFFIX


@dataclass
class SinkStats:
    consumed: int = 0
    applied: int = 0
    skipped: int = 0
    dead_lettered: Tally[str] = field(default_factory=Tally)
    batches: int = 0
    last_source_ts_ms: int | None = None
    last_batch_at: float | None = None
    last_error: str | None = None

    def lag_s(self, now: float | None = None) -> float | None:
        if self.last_source_ts_ms is None:
            return None
        return max(0.0, (now if now is not None else time.time()) - self.last_source_ts_ms / 1000)

    def as_dict(self) -> dict[str, Any]:
        lag = self.lag_s()
        return {
            "consumed": self.consumed, "applied": self.applied, "skipped": self.skipped,
            "dead_lettered": sum(self.dead_lettered.values()),
            "dead_lettered_by_reason": dict(self.dead_lettered), "batches": self.batches,
            "lag_s": round(lag, 3) if lag is not None else None,
            "last_error": self.last_error,
        }


class SinkMetrics:
    def __init__(self, sink: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.events = Counter("strangler_sink_events_total", "Events by outcome",
                              ["sink", "outcome"], registry=self.registry)
        self.dead = Counter("strangler_sink_dead_letters_total", "Events sent to the DLQ",
                            ["sink", "reason"], registry=self.registry)
        self.lag = Gauge("strangler_sink_lag_seconds",
                         "Seconds between now and the newest applied source timestamp",
                         ["sink"], registry=self.registry)
        self.apply_seconds = Histogram("strangler_sink_batch_apply_seconds",
                                       "Time to apply one batch", ["sink"],
                                       registry=self.registry)
        self.sink = sink


@dataclass(frozen=True, slots=True)
class _Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def _describe(err: Any) -> str:
    if isinstance(err, _KafkaException) and err.args:
        err = err.args[0]
    if isinstance(err, _KafkaError):
        return f"{err.name()}: {err.str()}"
    return str(err)


class SinkConsumer:
    def __init__(self, config: SinkConfig, applier: SqlAlchemyApplier, *,
                 producer: Producer | None = None, metrics: SinkMetrics | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.applier = applier
        self.stats = SinkStats()
        self.metrics = metrics or SinkMetrics(applier.sink)
        self.clock = clock
        topics = list(config.topics) + ([config.heartbeat_topic] if config.heartbeat_topic else [])
        ensure_topics(config.bootstrap_servers, topics)
        self.producer = producer or Producer(config.bootstrap_servers)
        try:
            self._consumer = _KafkaConsumer({
                "bootstrap.servers": config.bootstrap_servers,
                "group.id": config.group_id,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "session.timeout.ms": config.session_timeout_ms,
                "heartbeat.interval.ms": max(500, config.session_timeout_ms // 6),
                # librdkafka reconnects by itself; record why, for /healthz
                "error_cb": self._on_kafka_error,
            })
            self._consumer.subscribe(topics, on_assign=self._on_assign)
        except _KafkaException as exc:
            raise KafkaError(f"could not subscribe to {topics}: {_describe(exc)}") from exc
        self.assigned = threading.Event()
        self._resync = False
        self._pipeline: ApplyPipeline[Sequence[_Record]] | None = None

    def _on_kafka_error(self, err: Any) -> None:
        self.stats.last_error = f"kafka: {_describe(err)}"
        log.warning("kafka client error", extra={"sink": self.applier.sink,
                                                 "error": _describe(err)})

    # -- assignment: resume from the offsets stored with the data -----------------------

    def _on_assign(self, consumer: Any, partitions: list[Any]) -> None:
        if self._pipeline is not None:
            self._pipeline.settle()  # the stored offsets must include the batch in flight
        stored = {(s.topic, s.partition): s.next_offset for s in self.applier.offsets()}
        for tp in partitions:
            tp.offset = stored.get((tp.topic, tp.partition), OFFSET_BEGINNING)
        consumer.assign(partitions)
        self.assigned.set()
        log.info("partitions assigned", extra={
            "sink": self.applier.sink,
            "partitions": [f"{tp.topic}[{tp.partition}]@{tp.offset}" for tp in partitions]})

    # -- the loop -----------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Until ``stop``: a database or Kafka failure pauses and retries the same batch
        (it was rewound and nothing was committed); the sink never skips ahead.

        On a database server (see ``SqlAlchemyApplier.overlaps_commit``) each batch is
        applied on a worker thread while the next one is polled and planned; batches
        still commit one at a time, in order."""
        pipelined = self.config.pipelined
        if pipelined is None:
            pipelined = self.applier.overlaps_commit
        self._pipeline = ApplyPipeline() if pipelined else None
        try:
            while not stop.is_set():
                try:
                    self.step()
                except ApplyError as exc:
                    self._pause(stop, "database unavailable; retrying", exc)
                except KafkaError as exc:
                    self._pause(stop, "kafka unavailable; retrying", exc)
                    self.producer = Producer(self.config.bootstrap_servers)  # drop failed state
        finally:
            pipeline, self._pipeline = self._pipeline, None
            if pipeline is not None:
                try:
                    self._finish(pipeline.collect())
                except (ApplyError, KafkaError) as exc:
                    log.warning("last batch not applied", extra={"sink": self.applier.sink,
                                                                 "error": str(exc)})
                pipeline.close()

    def _pause(self, stop: threading.Event, message: str, exc: Exception) -> None:
        self.stats.last_error = str(exc)
        log.warning(message, extra={"sink": self.applier.sink, "error": str(exc)})
        stop.wait(self.config.retry_pause_s)

    def step(self) -> int:
        """Consume and apply one batch; returns how many records it consumed. Inside
        ``run`` on a database server the batch is left applying on the pipeline's thread
        and the previous one is finished (its failure raised) first."""
        if self._resync:
            self._seek_to_stored_offsets()
            self._resync = False
        records = self._poll()
        pipeline = self._pipeline
        if not records:
            if pipeline is not None:
                self._finish(self._collect(pipeline))
            self._observe_lag()
            return 0
        planned, poison = self._plan(records)
        if pipeline is not None:
            # a failed previous batch raises here; this one is dropped, and both are
            # re-read from the offsets stored in the database
            self._finish(self._collect(pipeline))
            pipeline.submit(lambda: self._apply(records, planned, poison))
            return len(records)
        try:
            self._apply(records, planned, poison)
        except (ApplyError, KafkaError):
            self._resync = True  # rewind before the next poll, from the stored offsets
            raise
        self._finish(records)
        return len(records)

    def _collect(self, pipeline: ApplyPipeline[Sequence[_Record]]) -> Sequence[_Record] | None:
        try:
            return pipeline.collect()
        except (ApplyError, KafkaError):
            self._resync = True
            raise

    def _finish(self, records: Sequence[_Record] | None) -> None:
        """Book a batch whose transaction has committed."""
        if not records:
            return
        self.stats.last_error = None
        self._commit_kafka(records)
        self.stats.batches += 1
        self.stats.last_batch_at = self.clock()
        self._observe_lag()

    def _poll(self) -> list[_Record]:
        try:
            messages = self._consumer.consume(self.config.batch_size,
                                              self.config.poll_timeout_s)
        except _KafkaException as exc:
            raise KafkaError(f"consume failed: {_describe(exc)}") from exc
        records = []
        for msg in messages:
            err = msg.error()
            if err is not None:
                if err.code() in (_KafkaError._PARTITION_EOF, _KafkaError.UNKNOWN_TOPIC_OR_PART):
                    continue
                raise KafkaError(f"consumer error: {_describe(err)}")
            records.append(_Record(str(msg.topic()), int(msg.partition() or 0),
                                   int(msg.offset() or 0), msg.key(), msg.value()))
        return records

    def _plan(self, records: Sequence[_Record]
              ) -> tuple[list[tuple[_Record, PlannedWrite | None, Consumed]],
                         list[tuple[_Record, PoisonEvent]]]:
        planned: list[tuple[_Record, PlannedWrite | None, Consumed]] = []
        poison: list[tuple[_Record, PoisonEvent]] = []
        for record in records:
            try:
                result = plan_event(self.applier.mapping, record.value, key=record.key,
                                    topic=record.topic)
            except PoisonEvent as exc:
                poison.append((record, exc))
                planned.append((record, None, Consumed(record.topic, record.partition,
                                                       record.offset)))
                continue
            if isinstance(result, Skip):
                ts = result.source_ts_ms
                planned.append((record, None, Consumed(record.topic, record.partition,
                                                       record.offset, None, ts)))
                continue
            planned.append((record, result, Consumed(record.topic, record.partition,
                                                     record.offset, result.position,
                                                     result.source_ts_ms)))
        return planned, poison

    def _apply(self, records: Sequence[_Record],
               planned: Sequence[tuple[_Record, PlannedWrite | None, Consumed]],
               poison: Sequence[tuple[_Record, PoisonEvent]]) -> Sequence[_Record]:
        """Dead-letter, then one transaction; returns ``records`` (for the pipeline)."""
        if poison:
            self._dead_letter(poison)
        writes = [w for _r, w, _c in planned if w is not None]
        consumed = [c for _r, _w, c in planned]
        started = time.perf_counter()
        try:
            result = self.applier.apply(writes, consumed)
        except ApplyError as exc:
            if exc.kind != "constraint":
                raise
            self._apply_one_by_one(planned)
        else:
            self._count(result.applied, result.skipped, len(records))
        self.metrics.apply_seconds.labels(self.applier.sink).observe(
            time.perf_counter() - started)
        for c in consumed:
            if c.source_ts_ms is not None and (self.stats.last_source_ts_ms is None
                                               or c.source_ts_ms > self.stats.last_source_ts_ms):
                self.stats.last_source_ts_ms = c.source_ts_ms
        return records

    def _apply_one_by_one(
        self, planned: Sequence[tuple[_Record, PlannedWrite | None, Consumed]]
    ) -> None:
        applied = skipped = 0
        for record, write, consumed in planned:
            if write is None:
                self.applier.apply([], [consumed])
                continue
            try:
                result = self.applier.apply([write], [consumed])
            except ApplyError as exc:
                if exc.kind != "constraint":
                    raise
                self._dead_letter([(record, PoisonEvent("constraint", str(exc)))])
                self.applier.apply([], [consumed])
                continue
            applied += result.applied
            skipped += result.skipped
        self._count(applied, skipped, len(planned))

    def _count(self, applied: int, skipped: int, consumed: int) -> None:
        self.stats.consumed += consumed
        self.stats.applied += applied
        self.stats.skipped += skipped
        self.metrics.events.labels(self.applier.sink, "applied").inc(applied)
        self.metrics.events.labels(self.applier.sink, "skipped").inc(skipped)

    def _dead_letter(self, poison: Sequence[tuple[_Record, PoisonEvent]]) -> None:
        """Publish to ``<topic>.dlq`` and wait for Kafka's confirmation (before the offsets
        are committed, so a poison event is never lost; a crash may publish it twice)."""
        for record, error in poison:
            topic = self.config.dlq_topic(record.topic)
            self.producer.ensure_topic(topic)
            headers = [
                ("strangler.error.reason", error.reason.encode()),
                ("strangler.error.message", str(error).encode()),
                ("strangler.original.topic", record.topic.encode()),
                ("strangler.original.partition", str(record.partition).encode()),
                ("strangler.original.offset", str(record.offset).encode()),
                ("__connect.errors.exception.message", str(error).encode()),
            ]
            self.producer.produce(topic, record.key, record.value, lambda: None, headers)
            self.stats.dead_lettered[error.reason] += 1
            self.metrics.dead.labels(self.applier.sink, error.reason).inc()
            log.warning("event dead-lettered", extra={
                "sink": self.applier.sink, "topic": record.topic,
                "partition": record.partition, "offset": record.offset,
                "reason": error.reason, "error": str(error)})
        self.producer.flush()

    def _seek_to_stored_offsets(self) -> None:
        """Put every assigned partition back where the database says the sink stands."""
        stored = {(s.topic, s.partition): s.next_offset for s in self.applier.offsets()}
        try:
            for tp in self._consumer.assignment():
                offset = stored.get((tp.topic, tp.partition), OFFSET_BEGINNING)
                self._consumer.seek(TopicPartition(tp.topic, tp.partition, offset))
        except _KafkaException as exc:
            raise KafkaError(f"could not rewind to the stored offsets: {_describe(exc)}"
                             ) from exc

    def _commit_kafka(self, records: Sequence[_Record]) -> None:
        last: dict[tuple[str, int], int] = {}
        for r in records:
            last[(r.topic, r.partition)] = max(last.get((r.topic, r.partition), -1), r.offset)
        try:
            self._consumer.commit(offsets=[TopicPartition(t, p, o + 1)
                                           for (t, p), o in last.items()], asynchronous=True)
        except _KafkaException as exc:  # only for monitoring; the database holds the truth
            log.warning("kafka offset commit failed", extra={"error": _describe(exc)})

    def _observe_lag(self) -> None:
        lag = self.stats.lag_s(self.clock())
        if lag is not None:
            self.metrics.lag.labels(self.applier.sink).set(lag)

    def close(self) -> None:
        try:
            self._consumer.close()
        finally:
            self.producer.flush(5)


def serve_health(sink: SinkConsumer, port: int, *, stale_after_s: float = 60.0
                 ) -> ThreadingHTTPServer:
    """``/healthz`` (JSON stats; 503 after an error or a stall) and ``/metrics``."""
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                body = generate_latest(sink.metrics.registry)
                self._send(200, body, "text/plain; version=0.0.4")
                return
            if self.path == "/healthz":
                stats = sink.stats.as_dict()
                stalled = (sink.stats.last_error is not None
                           and (sink.stats.last_batch_at is None
                                or time.time() - sink.stats.last_batch_at > stale_after_s))
                stats["status"] = "error" if stalled else "ok"
                self._send(503 if stalled else 200, json.dumps(stats).encode(),
                           "application/json")
                return
            self._send(404, b'{"error": "not found"}', "application/json")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True, name="sink-health").start()
    return server
