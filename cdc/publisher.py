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
    ) -> None:
        self.producer = producer
        self.connector = connector
        self.converter = converter
        self.tombstones = tombstones
        self.clock_ns = clock_ns
        self.sent_by_op: Counter[str] = Counter()
        self.delivered = 0

    def _confirm(self, txn: Txn[Any] | None) -> Callable[[], None]:
        if txn is None:

            def confirmed() -> None:
                self.delivered += 1

            return confirmed

        def confirmed_in_txn() -> None:
            self.delivered += 1
            txn.delivered()

        return confirmed_in_txn

    def publish(self, change: Change, txn: Txn[Any] | None = None) -> int:
        records = records_for(
            self.connector, change, now_ns=self.clock_ns(), tombstones=self.tombstones
        )
        producer, converter = self.producer, self.converter
        for rec in records:
            producer.ensure_topic(rec.topic)
            key, value = converter.serialize(rec)
            headers = converter.headers(rec) if rec.headers else ()
            if txn is not None:
                txn.sent()
            producer.produce(rec.topic, key, value, self._confirm(txn), headers)
            self.sent_by_op["tombstone" if value is None else change.op.value] += 1
        return len(records)

    def heartbeat(self, on_delivery: Callable[[], None] | None = None) -> None:
        rec = heartbeat_record(self.connector.name, now_ms=self.clock_ns() // 1_000_000)
        self.producer.ensure_topic(rec.topic)
        key, value = self.converter.serialize(rec)
        self.producer.produce(rec.topic, key, value, on_delivery or (lambda: None))
