"""Debezium change events as values (pure): tables, changes, records, topic names.

A :class:`Change` is one row change a source captured; :func:`records_for` turns it into
the Kafka records Debezium would write — a delete is followed by a tombstone (same key,
null value) and a primary-key change becomes delete + tombstone + create. The records
still hold plain payload mappings; :mod:`cdc.converter` serializes them.

Every source shares this module: PostgreSQL (``connector="postgresql"``) and SQLite
(``connector="sqlite"``) build the same :class:`Table` / :class:`Change` values.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cdc.positions import SourcePosition
from cdc.types import ColumnType

__all__ = [
    "DEBEZIUM_VERSION",
    "Change",
    "Column",
    "Connector",
    "Op",
    "Record",
    "RecordKind",
    "Table",
    "heartbeat_record",
    "heartbeat_topic",
    "message_record",
    "message_topic",
    "records_for",
    "topic_name",
    "transaction_id",
    "transaction_record",
    "transaction_topic",
]

DEBEZIUM_VERSION = "2.7.3.Final"
"""The Debezium release whose PostgreSQL event layout we reproduce."""

NEWKEY_HEADER = "__debezium.newkey"
OLDKEY_HEADER = "__debezium.oldkey"


class Op(StrEnum):
    CREATE = "c"
    UPDATE = "u"
    DELETE = "d"
    READ = "r"
    TRUNCATE = "t"
    MESSAGE = "m"


class RecordKind(StrEnum):
    CHANGE = "change"
    TOMBSTONE = "tombstone"
    HEARTBEAT = "heartbeat"
    TRANSACTION = "transaction"
    MESSAGE = "message"


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: ColumnType
    optional: bool = True


@dataclass(frozen=True)
class Table:
    """``Table("public", "orders_order", columns, key=("id",))``.

    ``cache`` holds per-converter serialized schemas; it is not part of the value.
    """

    schema: str
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    cache: dict[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        missing = [k for k in self.key if k not in names]
        if missing:
            raise ValueError(f"{self.qualified}: key columns {missing} are not columns")
        if not self.key:
            raise ValueError(f"{self.qualified}: a captured table needs a primary key")

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    def key_of(self, row: Mapping[str, Any]) -> dict[str, Any]:
        return {k: row[k] for k in self.key}


@dataclass(frozen=True, slots=True)
class Connector:
    """Who writes the events: ``Connector("postgresql", name="shop", db="shop")``.

    ``name`` is Debezium's ``topic.prefix`` (the logical server name).
    """

    connector: str
    name: str
    db: str
    version: str = DEBEZIUM_VERSION


@dataclass(frozen=True, slots=True)
class Change:
    """One captured row change. ``before``/``after`` are payload mappings (values already
    converted by the columns' :class:`ColumnType`); ``ts_us`` is the commit time (the
    snapshot time for ``r``); ``lsn`` the event's own position in the source log."""

    op: Op
    table: Table
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    position: SourcePosition
    ts_us: int
    tx_id: int | None = None
    lsn: int | None = None
    snapshot: str = "false"
    transaction: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Record:
    """A Kafka record before serialization. ``key``/``value`` None mean a null key/value."""

    kind: RecordKind
    topic: str
    key: dict[str, Any] | None
    value: dict[str, Any] | None
    table: Table | None
    position: SourcePosition | None
    headers: tuple[tuple[str, dict[str, Any]], ...] = ()


def topic_name(prefix: str, schema: str, table: str) -> str:
    return f"{prefix}.{schema}.{table}"


def heartbeat_topic(prefix: str) -> str:
    return f"__debezium-heartbeat.{prefix}"


def transaction_topic(prefix: str) -> str:
    return f"{prefix}.transaction"


def message_topic(prefix: str) -> str:
    return f"{prefix}.message"


def source_block(connector: Connector, change: Change) -> dict[str, Any]:
    """Debezium's ``io.debezium.connector.postgresql.Source`` struct, in its field order."""
    ts_us = change.ts_us
    return {
        "version": connector.version,
        "connector": connector.connector,
        "name": connector.name,
        "ts_ms": ts_us // 1000,
        "snapshot": change.snapshot,
        "db": connector.db,
        "sequence": change.position.sequence(),
        "ts_us": ts_us,
        "ts_ns": ts_us * 1000,
        "schema": change.table.schema,
        "table": change.table.name,
        "txId": change.tx_id,
        "lsn": change.lsn,
        "xmin": None,
    }


def envelope(
    connector: Connector,
    change: Change,
    *,
    op: Op | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    now_ns: int,
) -> dict[str, Any]:
    return {
        "before": before,
        "after": after,
        "source": source_block(connector, change),
        "transaction": change.transaction,
        "op": (op or change.op).value,
        "ts_ms": now_ns // 1_000_000,
        "ts_us": now_ns // 1000,
        "ts_ns": now_ns,
    }


def records_for(
    connector: Connector, change: Change, *, now_ns: int, tombstones: bool = True
) -> list[Record]:
    """The records Debezium writes for one change, in order."""
    table = change.table
    topic = topic_name(connector.name, table.schema, table.name)
    pos = change.position
    op = change.op
    if op is Op.TRUNCATE:
        value = envelope(connector, change, now_ns=now_ns)
        return [Record(RecordKind.CHANGE, topic, None, value, table, pos)]
    if op is Op.DELETE:
        assert change.before is not None
        key = table.key_of(change.before)
        value = envelope(connector, change, before=change.before, now_ns=now_ns)
        out = [Record(RecordKind.CHANGE, topic, key, value, table, pos)]
        if tombstones:
            out.append(Record(RecordKind.TOMBSTONE, topic, key, None, table, pos))
        return out
    assert change.after is not None
    new_key = table.key_of(change.after)
    if op is Op.UPDATE and change.before is not None:
        old_key = table.key_of(change.before)
        if old_key != new_key:
            return _key_change(connector, change, topic, old_key, new_key, now_ns, tombstones)
    value = envelope(
        connector, change, before=change.before, after=change.after, now_ns=now_ns
    )
    return [Record(RecordKind.CHANGE, topic, new_key, value, table, pos)]


def _key_change(
    connector: Connector,
    change: Change,
    topic: str,
    old_key: dict[str, Any],
    new_key: dict[str, Any],
    now_ns: int,
    tombstones: bool,
) -> list[Record]:
    table, pos = change.table, change.position
    delete = envelope(connector, change, op=Op.DELETE, before=change.before, now_ns=now_ns)
    create = envelope(connector, change, op=Op.CREATE, after=change.after, now_ns=now_ns)
    out = [
        Record(RecordKind.CHANGE, topic, old_key, delete, table, pos, ((NEWKEY_HEADER, new_key),))
    ]
    if tombstones:
        out.append(Record(RecordKind.TOMBSTONE, topic, old_key, None, table, pos))
    out.append(
        Record(RecordKind.CHANGE, topic, new_key, create, table, pos, ((OLDKEY_HEADER, old_key),))
    )
    return out


def heartbeat_record(prefix: str, *, now_ms: int) -> Record:
    """Debezium's heartbeat: key ``{"serverName": prefix}``, value ``{"ts_ms": now}``."""
    return Record(
        RecordKind.HEARTBEAT,
        heartbeat_topic(prefix),
        {"serverName": prefix},
        {"ts_ms": now_ms},
        None,
        None,
    )


def transaction_id(tx_id: int, lsn: int) -> str:
    """Debezium's PostgreSQL transaction id: ``"<xid>:<LSN>"``."""
    return f"{tx_id}:{lsn}"


def transaction_record(
    prefix: str,
    *,
    status: str,
    tx: str,
    ts_ms: int,
    counts: dict[str, int] | None = None,
) -> Record:
    """A BEGIN or END record for ``<prefix>.transaction``
    (``provide.transaction.metadata``); ``counts`` is events per data collection."""
    value: dict[str, Any] = {
        "status": status,
        "id": tx,
        "event_count": None if counts is None else sum(counts.values()),
        "data_collections": None
        if counts is None
        else [{"data_collection": name, "event_count": n} for name, n in counts.items()],
        "ts_ms": ts_ms,
    }
    return Record(RecordKind.TRANSACTION, transaction_topic(prefix), {"id": tx}, value, None, None)


def message_record(
    connector: Connector,
    *,
    prefix: str,
    content: bytes,
    position: SourcePosition,
    ts_us: int,
    tx_id: int | None,
    lsn: int,
    now_ns: int,
) -> Record:
    """A logical decoding message (``pg_logical_emit_message``) as Debezium publishes it:
    topic ``<prefix>.message``, key ``{"prefix"}``, value ``op: m`` with a ``message``
    block (content base64, ``binary.handling.mode=bytes``); the source names no table."""
    source = {
        "version": connector.version,
        "connector": connector.connector,
        "name": connector.name,
        "ts_ms": ts_us // 1000,
        "snapshot": "false",
        "db": connector.db,
        "sequence": position.sequence(),
        "ts_us": ts_us,
        "ts_ns": ts_us * 1000,
        "schema": "",
        "table": "",
        "txId": tx_id,
        "lsn": lsn,
        "xmin": None,
    }
    value = {
        "op": Op.MESSAGE.value,
        "ts_ms": now_ns // 1_000_000,
        "source": source,
        "transaction": None,
        "message": {"prefix": prefix, "content": base64.b64encode(content).decode("ascii")},
    }
    return Record(
        RecordKind.MESSAGE, message_topic(connector.name), {"prefix": prefix}, value, None, position
    )
