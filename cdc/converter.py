"""Kafka Connect's JsonConverter, as Debezium is usually deployed (pure).

``schemas_enable=True`` wraps every key and value as ``{"schema": ..., "payload": ...}``
with Kafka Connect schemas and Debezium's semantic type names; ``False`` writes the bare
payload. Schemas are constant per table, so their JSON is built once per topic and the
payload is spliced in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any

import orjson

from cdc.events import Change, Column, Connector, Record, RecordKind, Table, topic_name

__all__ = [
    "ChangeTemplate",
    "JsonConverter",
    "field_schema",
    "key_schema",
    "message_value_schema",
    "unwrap",
    "value_envelope_schema",
]

_SNAPSHOT_ENUM = {
    "type": "string",
    "optional": True,
    "name": "io.debezium.data.Enum",
    "version": 1,
    "parameters": {
        "allowed": "true,first,first_in_data_collection,last_in_data_collection,last,false,"
        "incremental"
    },
    "default": "false",
    "field": "snapshot",
}


def _f(type_: str, name: str, optional: bool = False) -> dict[str, Any]:
    return {"type": type_, "optional": optional, "field": name}


def source_schema(connector: str) -> dict[str, Any]:
    return {
        "type": "struct",
        "fields": [
            _f("string", "version"),
            _f("string", "connector"),
            _f("string", "name"),
            _f("int64", "ts_ms"),
            _SNAPSHOT_ENUM,
            _f("string", "db"),
            _f("string", "sequence", True),
            _f("int64", "ts_us", True),
            _f("int64", "ts_ns", True),
            _f("string", "schema"),
            _f("string", "table"),
            _f("int64", "txId", True),
            _f("int64", "lsn", True),
            _f("int64", "xmin", True),
        ],
        "optional": False,
        "name": f"io.debezium.connector.{connector}.Source",
        "field": "source",
    }


_TRANSACTION_BLOCK = {
    "type": "struct",
    "fields": [
        _f("string", "id"),
        _f("int64", "total_order"),
        _f("int64", "data_collection_order"),
    ],
    "optional": True,
    "name": "event.block",
    "version": 1,
    "field": "transaction",
}

_HEARTBEAT_KEY = {
    "type": "struct",
    "fields": [_f("string", "serverName")],
    "optional": False,
    "name": "io.debezium.connector.common.ServerNameKey",
}
_HEARTBEAT_VALUE = {
    "type": "struct",
    "fields": [_f("int64", "ts_ms")],
    "optional": False,
    "name": "io.debezium.connector.common.Heartbeat",
}


_MESSAGE_KEY = {
    "type": "struct",
    "fields": [_f("string", "prefix", True)],
    "optional": False,
    "name": "io.debezium.connector.postgresql.MessageKey",
    "version": 1,
}


def message_value_schema(connector: str) -> dict[str, Any]:
    """Debezium's ``io.debezium.connector.postgresql.MessageValue`` (``op: m`` events)."""
    return {
        "type": "struct",
        "fields": [
            _f("string", "op"),
            _f("int64", "ts_ms", True),
            source_schema(connector),
            _TRANSACTION_BLOCK,
            {
                "type": "struct",
                "fields": [_f("string", "prefix", True), _f("bytes", "content", True)],
                "optional": False,
                "name": "io.debezium.connector.postgresql.Message",
                "version": 1,
                "field": "message",
            },
        ],
        "optional": False,
        "name": "io.debezium.connector.postgresql.MessageValue",
        "version": 1,
    }


_TRANSACTION_KEY = {
    "type": "struct",
    "fields": [_f("string", "id")],
    "optional": False,
    "name": "io.debezium.connector.common.TransactionMetadataKey",
}
_TRANSACTION_VALUE = {
    "type": "struct",
    "fields": [
        _f("string", "status"),
        _f("string", "id"),
        _f("int64", "event_count", True),
        {
            "type": "array",
            "items": {
                "type": "struct",
                "fields": [_f("string", "data_collection"), _f("int64", "event_count")],
                "optional": False,
            },
            "optional": True,
            "field": "data_collections",
        },
        _f("int64", "ts_ms"),
    ],
    "optional": False,
    "name": "io.debezium.connector.common.TransactionMetadataValue",
}


def field_schema(column: Column, optional: bool | None = None) -> dict[str, Any]:
    """A struct field's schema in JsonConverter's key order."""
    base = column.type.schema
    out: dict[str, Any] = {"type": base["type"]}
    for nested in ("fields", "items"):
        if nested in base:
            out[nested] = base[nested]
    out["optional"] = column.optional if optional is None else optional
    for attr in ("default", "name", "version", "doc", "parameters"):
        if attr in base:
            out[attr] = base[attr]
    out["field"] = column.name
    return out


def key_schema(topic: str, table: Table) -> dict[str, Any]:
    by_name = {c.name: c for c in table.columns}
    return {
        "type": "struct",
        "fields": [field_schema(by_name[k], optional=False) for k in table.key],
        "optional": False,
        "name": f"{topic}.Key",
    }


def value_envelope_schema(topic: str, table: Table, connector: str) -> dict[str, Any]:
    row_fields = [field_schema(c) for c in table.columns]

    def row(field: str) -> dict[str, Any]:
        return {
            "type": "struct",
            "fields": row_fields,
            "optional": True,
            "name": f"{topic}.Value",
            "field": field,
        }

    return {
        "type": "struct",
        "fields": [
            row("before"),
            row("after"),
            source_schema(connector),
            _TRANSACTION_BLOCK,
            _f("string", "op"),
            _f("int64", "ts_ms", True),
            _f("int64", "ts_us", True),
            _f("int64", "ts_ns", True),
        ],
        "optional": False,
        "name": f"{topic}.Envelope",
        "version": 2,
    }


def unwrap(raw: bytes | None) -> Any:
    """The payload of a JsonConverter message, with or without the schema wrapper."""
    if raw is None:
        return None
    doc = orjson.loads(raw)
    if isinstance(doc, Mapping) and doc.keys() == {"schema", "payload"}:
        return doc["payload"]
    return doc


class JsonConverter:
    """``JsonConverter(schemas_enable=True, connector="postgresql")``."""

    def __init__(self, *, schemas_enable: bool = True, connector: str = "postgresql") -> None:
        self.schemas_enable = schemas_enable
        self.connector = connector
        self._schemas: dict[str, tuple[Table, bytes, bytes]] = {}
        self._templates: dict[str, tuple[Table, Connector, bytes]] = {}

    def __repr__(self) -> str:
        return f"JsonConverter(schemas_enable={self.schemas_enable}, connector={self.connector!r})"

    def _table_schemas(self, topic: str, table: Table) -> tuple[bytes, bytes]:
        cached = self._schemas.get(topic)
        if cached is None or cached[0] is not table:
            key = orjson.dumps(key_schema(topic, table))
            value = orjson.dumps(value_envelope_schema(topic, table, self.connector))
            cached = self._schemas[topic] = (table, key, value)
        return cached[1], cached[2]

    def _wrap(self, schema: bytes, payload: Any) -> bytes:
        return b"".join((b'{"schema":', schema, b',"payload":', orjson.dumps(payload), b"}"))

    def serialize(self, record: Record) -> tuple[bytes | None, bytes | None]:
        """``(key bytes, value bytes)``; a null key/value stays None (tombstones)."""
        key, value = record.key, record.value
        if not self.schemas_enable:
            return (
                None if key is None else orjson.dumps(key),
                None if value is None else orjson.dumps(value),
            )
        if record.kind is RecordKind.TRANSACTION:
            return (
                self._wrap(orjson.dumps(_TRANSACTION_KEY), key),
                self._wrap(orjson.dumps(_TRANSACTION_VALUE), value),
            )
        if record.kind is RecordKind.MESSAGE:
            return (
                self._wrap(orjson.dumps(_MESSAGE_KEY), key),
                self._wrap(orjson.dumps(message_value_schema(self.connector)), value),
            )
        if record.kind is RecordKind.HEARTBEAT:
            return (
                self._wrap(orjson.dumps(_HEARTBEAT_KEY), key),
                self._wrap(orjson.dumps(_HEARTBEAT_VALUE), value),
            )
        assert record.table is not None
        key_s, value_s = self._table_schemas(record.topic, record.table)
        return (
            None if key is None else self._wrap(key_s, key),
            None if value is None else self._wrap(value_s, value),
        )

    def _template(self, connector: Connector, table: Table) -> bytes:
        """The whole value message of one table with ``%`` holes for what varies."""
        topic = topic_name(connector.name, table.schema, table.name)
        cached = self._templates.get(topic)
        if cached is not None and cached[0] is table and cached[1] == connector:
            return cached[2]

        def const(value: Any) -> bytes:
            return orjson.dumps(value).replace(b"%", b"%%")

        body = (
            b'{"before":%s,"after":%s,"source":{"version":'
            + const(connector.version)
            + b',"connector":'
            + const(connector.connector)
            + b',"name":'
            + const(connector.name)
            + b',"ts_ms":%d,"snapshot":"%s","db":'
            + const(connector.db)
            + b',"sequence":"[\\"%d\\",\\"%d\\"]","ts_us":%d,"ts_ns":%d,"schema":'
            + const(table.schema)
            + b',"table":'
            + const(table.name)
            + b',"txId":%s,"lsn":%s,"xmin":null},"transaction":%s,"op":"%s",'
            b'"ts_ms":%d,"ts_us":%d,"ts_ns":%d}'
        )
        if self.schemas_enable:
            _, value_schema = self._table_schemas(topic, table)
            body = b'{"schema":' + value_schema.replace(b"%", b"%%") + b',"payload":' + body + b"}"
        self._templates[topic] = (table, connector, body)
        return body

    def change_value(
        self,
        connector: Connector,
        change: Change,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        op: str,
        now_ns: int,
    ) -> bytes:
        """The value bytes of :func:`cdc.events.envelope` for ``change``, built from a
        per-table template — the hot path of the publisher (same JSON, fewer objects)."""
        dumps = orjson.dumps
        ts_us, pos = change.ts_us, change.position
        return self._template(connector, change.table) % (
            b"null" if before is None else dumps(before),
            b"null" if after is None else dumps(after),
            ts_us // 1000,
            change.snapshot.encode(),
            pos.commit,
            pos.event,
            ts_us,
            ts_us * 1000,
            b"null" if change.tx_id is None else b"%d" % change.tx_id,
            b"null" if change.lsn is None else b"%d" % change.lsn,
            b"null" if change.transaction is None else dumps(change.transaction),
            op.encode(),
            now_ns // 1_000_000,
            now_ns // 1000,
            now_ns,
        )

    def change_template(self, connector: Connector, table: Table) -> ChangeTemplate:
        """Key and value bytes of one-record changes of ``table`` from the JSON text of
        its column values (see :class:`ChangeTemplate`)."""
        topic = topic_name(connector.name, table.schema, table.name)
        key_s, value_s = self._table_schemas(topic, table)
        return ChangeTemplate(
            connector, table, key_s if self.schemas_enable else None,
            value_s if self.schemas_enable else None,
        )

    def key_bytes(self, topic: str, table: Table, key: dict[str, Any]) -> bytes:
        if not self.schemas_enable:
            return orjson.dumps(key)
        key_s, _ = self._table_schemas(topic, table)
        return self._wrap(key_s, key)

    def headers(self, record: Record) -> list[tuple[str, bytes]]:
        return [(name, orjson.dumps(value)) for name, value in record.headers]


def _esc(raw: bytes) -> bytes:
    return raw.replace(b"%", b"%%")


TxnParts = tuple[bytes, bytes, bytes]


class ChangeTemplate:
    """The bytes of a one-record change (``before`` null: inserts, updates without a
    before image) from ``parts``, the JSON text of every column value in column order.

    ``txn(op, commit_lsn, ts_us, tx_id)`` renders what is constant within a source
    transaction once; ``value(txn_parts, parts, lsn, now_ns)`` then joins the constant
    chunks with the row, the event position and the processing time. The output is
    byte for byte what :meth:`JsonConverter.serialize` writes for the same record.
    """

    __slots__ = ("_head", "_key", "_key_parts", "_mid1", "_mid2", "_now", "_row", "_tail",
                 "table", "topic")

    def __init__(
        self,
        connector: Connector,
        table: Table,
        key_schema_json: bytes | None,
        value_schema_json: bytes | None,
    ) -> None:
        self.table = table
        self.topic = topic_name(connector.name, table.schema, table.name)
        names = [c.name for c in table.columns]
        index = [names.index(k) for k in table.key]
        self._key_parts: Callable[[Sequence[bytes]], Any] = (
            itemgetter(*index) if len(index) > 1 else lambda parts: (parts[index[0]],)
        )

        def struct(fields: list[str]) -> bytes:
            return b"{" + b",".join(_esc(orjson.dumps(f)) + b":%s" for f in fields) + b"}"

        def const(value: Any) -> bytes:
            return _esc(orjson.dumps(value))

        key = struct(list(table.key))
        if key_schema_json is not None:
            key = b'{"schema":' + _esc(key_schema_json) + b',"payload":' + key + b"}"
        self._key = key
        self._row = struct(names)
        self._head = b'{"before":null,"after":'
        if value_schema_json is not None:
            self._head = b'{"schema":' + value_schema_json + b',"payload":' + self._head
        self._mid1 = (
            b',"source":{"version":' + const(connector.version)
            + b',"connector":' + const(connector.connector)
            + b',"name":' + const(connector.name)
            + b',"ts_ms":%d,"snapshot":"false","db":' + const(connector.db)
            + b',"sequence":"[\\"%d\\",\\"'
        )
        self._mid2 = (
            b'\\"]","ts_us":%d,"ts_ns":%d,"schema":' + const(table.schema)
            + b',"table":' + const(table.name)
            + b',"txId":%s,"lsn":'
        )
        self._tail = b',"xmin":null},"transaction":null,"op":"%s","ts_ms":'
        self._now = b'%d,"ts_us":%d,"ts_ns":%d}' + (b"}" if value_schema_json is not None else b"")

    def txn(self, op: str, commit_lsn: int, ts_us: int, tx_id: int | None) -> TxnParts:
        return (
            self._mid1 % (ts_us // 1000, commit_lsn),
            self._mid2 % (ts_us, ts_us * 1000, b"null" if tx_id is None else b"%d" % tx_id),
            self._tail % op.encode(),
        )

    def value(self, txn: TxnParts, parts: Sequence[bytes], lsn: int, now_ns: int) -> bytes:
        at = b"%d" % lsn
        return b"".join((
            self._head, self._row % tuple(parts), txn[0], at, txn[1], at, txn[2],
            self._now % (now_ns // 1_000_000, now_ns // 1000, now_ns),
        ))

    def key(self, parts: Sequence[bytes]) -> bytes:
        key: bytes = self._key % self._key_parts(parts)
        return key
