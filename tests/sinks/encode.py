"""Debezium records for the monolith's notification table, made by the CDC source's own
encoder (``cdc.events`` + ``cdc.converter``), and a helper to publish them."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

from cdc.converter import JsonConverter
from cdc.events import Change, Column, Connector, Op, Table, records_for
from cdc.kafka import Producer
from cdc.positions import SourcePosition
from cdc.types import pg_column_type

TEXT, INT8, BOOL, TSTZ = 25, 20, 16, 1184

NOTIFICATION = Table("public", "notifications_notification", tuple(
    Column(name, pg_column_type(oid), optional=name in ("sent_at", "read_at"))
    for name, oid in [("id", INT8), ("customer_id", INT8), ("channel", TEXT),
                      ("template", TEXT), ("subject", TEXT), ("body", TEXT),
                      ("status", TEXT), ("created_at", TSTZ), ("sent_at", TSTZ),
                      ("read_at", TSTZ)]
), key=("id",))

_lsn = itertools.count(10_000, 8)


def notification_row(i: int, subject: str = "Hello", **over: Any) -> dict[str, str | None]:
    """A row as PostgreSQL's text output would give it."""
    row: dict[str, str | None] = {
        "id": str(i), "customer_id": "1", "channel": "email", "template": "",
        "subject": subject, "body": "Body", "status": "sent",
        "created_at": "2024-03-01 12:00:00.5+00", "sent_at": None, "read_at": None,
    }
    row.update(over)
    return row


def _convert(table: Table, row: dict[str, str | None] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    types = {c.name: c.type for c in table.columns}
    return {k: None if v is None else types[k].convert(v) for k, v in row.items()}


class Encoder:
    def __init__(self, prefix: str, *, schemas: bool = True) -> None:
        self.connector = Connector("postgresql", name=prefix, db="shop")
        self.converter = JsonConverter(schemas_enable=schemas)
        self.tx = itertools.count(500)

    def change(self, op: Op, before: dict[str, str | None] | None,
               after: dict[str, str | None] | None, table: Table = NOTIFICATION
               ) -> list[tuple[str, bytes | None, bytes | None]]:
        """One single-change transaction -> [(topic, key, value)] (with tombstones)."""
        lsn = next(_lsn)
        change = Change(op, table, _convert(table, before), _convert(table, after),
                        SourcePosition(lsn + 4, lsn), ts_us=1_700_000_000_000_000 + lsn,
                        tx_id=next(self.tx), lsn=lsn)
        out = []
        for record in records_for(self.connector, change, now_ns=1_700_000_000_000_000_000):
            key, value = self.converter.serialize(record)
            out.append((record.topic, key, value))
        return out


def publish(bootstrap: str, records: Iterable[tuple[str, bytes | None, bytes | None]]) -> None:
    producer = Producer(bootstrap)
    for topic, key, value in records:
        producer.ensure_topic(topic)
        producer.produce(topic, key, value, lambda: None)
    producer.flush()
