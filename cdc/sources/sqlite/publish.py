"""Where the relay and the snapshot hand their records: a :class:`Publisher` returns only
once Kafka confirmed every record, or raises :class:`~cdc.errors.KafkaError`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from cdc.converter import JsonConverter
from cdc.events import Record
from cdc.kafka import Producer

__all__ = ["KafkaPublisher", "Publisher"]


class Publisher(Protocol):
    def publish(self, records: Sequence[Record]) -> None: ...


class KafkaPublisher:
    """``KafkaPublisher(Producer(bootstrap), JsonConverter(connector="sqlite"))``."""

    def __init__(
        self, producer: Producer, converter: JsonConverter, *, flush_timeout_s: float = 30.0
    ) -> None:
        self.producer = producer
        self.converter = converter
        self.flush_timeout_s = flush_timeout_s

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


def _confirmed() -> None:
    """Delivery is checked as a whole by ``flush``, which raises on any failure."""
