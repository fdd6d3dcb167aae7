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
from cdc.events import (
    Change,
    Connector,
    Op,
    Record,
    Table,
    heartbeat_record,
    records_for,
    topic_name,
)
from cdc.kafka import Producer

__all__ = ["Publisher"]

_ONE_RECORD = frozenset({Op.CREATE, Op.READ, Op.UPDATE})


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
        self._topic_of: dict[int, tuple[Table, str]] = {}  # id(table): tables are unhashable

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
        op = change.op
        if op in _ONE_RECORD and (op is not Op.UPDATE or change.before is None):
            return self._publish_one(change, txn)
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

    def _publish_one(self, change: Change, txn: Txn[Any] | None) -> int:
        """Hot path for a change that is exactly one record (inserts, snapshot rows,
        updates without a before image): bytes straight from the converter's template."""
        table, after = change.table, change.after
        assert after is not None
        known = self._topic_of.get(id(table))
        if known is not None and known[0] is table:
            topic = known[1]
        else:
            topic = topic_name(self.connector.name, table.schema, table.name)
            self.producer.ensure_topic(topic)
            self._topic_of[id(table)] = (table, topic)
        converter = self.converter
        key = converter.key_bytes(topic, table, {k: after[k] for k in table.key})
        value = converter.change_value(
            self.connector, change, change.before, after, change.op.value, self.clock_ns()
        )
        if txn is not None:
            txn.sent()
        confirm = self._nothing if txn is None else txn.delivered
        if self.delivery_hook is not None:
            confirm = self._hooked(confirm, change)
        self.producer.produce(topic, key, value, confirm)
        self.sent_by_op[change.op.value] += 1
        return 1

    @property
    def delivered(self) -> int:
        """Records Kafka confirmed so far (heartbeats included)."""
        return self.producer.confirmed

    def publish_record(self, rec: Record, txn: Txn[Any] | None = None) -> None:
        """A record that is not a row change (transaction metadata), counted on ``txn``."""
        if rec.topic not in self._topics:
            self.producer.ensure_topic(rec.topic)
            self._topics.add(rec.topic)
        key, value = self.converter.serialize(rec)
        if txn is not None:
            txn.sent()
        self.producer.produce(
            rec.topic, key, value, self._nothing if txn is None else txn.delivered
        )

    def heartbeat(self, on_delivery: Callable[[], None] | None = None) -> None:
        rec = heartbeat_record(self.connector.name, now_ms=self.clock_ns() // 1_000_000)
        self.producer.ensure_topic(rec.topic)
        key, value = self.converter.serialize(rec)
        self.producer.produce(rec.topic, key, value, on_delivery or (lambda: None))
