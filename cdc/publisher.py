"""Changes → serialized Kafka records, tracked per transaction (source-agnostic).

``Publisher.publish(change, txn)`` writes every record Debezium would write for the
change and counts it on ``txn``; Kafka's confirmation counts it back. With an
:class:`~cdc.delivery.AckTracker` the caller then knows which source position is safe
to acknowledge.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from cdc.converter import JsonConverter
from cdc.delivery import Txn
from cdc.events import Change, Connector, heartbeat_record, records_for
from cdc.kafka import Producer

__all__ = ["Publisher"]


class Publisher:
    def __init__(
        self,
        producer: Producer,
        connector: Connector,
        converter: JsonConverter,
        *,
        tombstones: bool = True,
        clock_ns: Callable[[], int] = time.time_ns,
        delivery_hook: Callable[[Change], None] | None = None,
    ) -> None:
        self.producer = producer
        self.connector = connector
        self.converter = converter
        self.tombstones = tombstones
        self.clock_ns = clock_ns
        self.sent_by_op: Counter[str] = Counter()
        self.delivery_hook = delivery_hook
        self._topics: set[str] = set()

    @staticmethod
    def _nothing() -> None:
        return None

    def _hooked(self, confirm: Callable[[], None], change: Change) -> Callable[[], None]:
        hook = self.delivery_hook
        assert hook is not None

        def confirmed() -> None:
            confirm()
            hook(change)

        return confirmed

    def publish(self, change: Change, txn: Txn[Any] | None = None) -> int:
        records = records_for(
            self.connector, change, now_ns=self.clock_ns(), tombstones=self.tombstones
        )
        producer, converter, known = self.producer, self.converter, self._topics
        for rec in records:
            if rec.topic not in known:
                producer.ensure_topic(rec.topic)
                known.add(rec.topic)
            key, value = converter.serialize(rec)
            headers = converter.headers(rec) if rec.headers else ()
            if txn is not None:
                txn.sent()
            confirm = self._nothing if txn is None else txn.delivered
            if self.delivery_hook is not None:
                confirm = self._hooked(confirm, change)
            producer.produce(rec.topic, key, value, confirm, headers)
            self.sent_by_op["tombstone" if value is None else change.op.value] += 1
        return len(records)

    @property
    def delivered(self) -> int:
        """Records Kafka confirmed so far (heartbeats included)."""
        return self.producer.confirmed

    def heartbeat(self, on_delivery: Callable[[], None] | None = None) -> None:
        rec = heartbeat_record(self.connector.name, now_ms=self.clock_ns() // 1_000_000)
        self.producer.ensure_topic(rec.topic)
        key, value = self.converter.serialize(rec)
        self.producer.produce(rec.topic, key, value, on_delivery or (lambda: None))
