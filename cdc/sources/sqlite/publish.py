"""Where the relay and the snapshot hand their records: a :class:`Publisher` returns only
once Kafka confirmed every record, or raises :class:`~cdc.errors.KafkaError`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from cdc.converter import JsonConverter
from cdc.events import Record, RecordKind
from cdc.kafka import Producer
from cdc.observability import Metrics

__all__ = ["KafkaPublisher", "Publisher"]


class Publisher(Protocol):
    def publish(self, records: Sequence[Record]) -> None: ...


class KafkaPublisher:
    """``KafkaPublisher(Producer(bootstrap), JsonConverter(connector="sqlite"))``."""

    def __init__(
        self,
        producer: Producer,
        converter: JsonConverter,
        *,
        flush_timeout_s: float = 30.0,
        metrics: Metrics | None = None,
    ) -> None:
        self.producer = producer
        self.converter = converter
        self.flush_timeout_s = flush_timeout_s
        self.metrics = metrics
        self.delivered = 0

    def __repr__(self) -> str:
        return f"KafkaPublisher({self.producer!r}, {self.converter!r})"

    def publish(self, records: Sequence[Record]) -> None:
        for record in records:
            self.producer.ensure_topic(record.topic)
            key, value = self.converter.serialize(record)
            self.producer.produce(
                record.topic, key, value, _confirmed, self.converter.headers(record)
            )
        self.producer.flush(self.flush_timeout_s)
        self.delivered += len(records)
        if self.metrics is not None:
            _count(self.metrics, records)


def _count(metrics: Metrics, records: Sequence[Record]) -> None:
    for record in records:
        if record.kind is RecordKind.HEARTBEAT:
            metrics.heartbeats.inc()
        elif record.value is None:
            metrics.events.labels("tombstone").inc()
        else:
            metrics.events.labels(str(record.value["op"])).inc()
    metrics.delivered.inc(len(records))


def _confirmed() -> None:
    """Delivery is checked as a whole by ``flush``, which raises on any failure."""
