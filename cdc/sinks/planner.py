"""Turn Debezium change events into planned writes for a service's models (pure).

``plan_event(mapping, value, key=..., topic=...)`` accepts a record as read from Kafka —
raw JSON bytes or already parsed, with or without the JSON converter's ``{schema,
payload}`` wrapper — and returns one of:

* :class:`Upsert` for ``c``, ``u`` and snapshot reads ``r``;
* :class:`Delete` for ``d``, and for a tombstone (null value), which carries no
  position: it only repeats a delete already seen, or stands in for one compacted away;
* :class:`Truncate` for ``t``;
* :class:`Skip` for what a sink has nothing to do with: transaction markers, logical
  messages (``m``), heartbeats, tables the mapping does not declare.

Anything else raises :class:`PoisonEvent` with a message saying what is wrong, so the
consumer can dead-letter it and keep going.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cdc.sinks.decode import DecodeError, coerce, decode_row, field_schemas
from cdc.sinks.mapping import TRANSFORMS, SinkMapping, TableMapping
from cdc.sinks.position import Position, PositionError, position_of

Key = tuple[Any, ...]
# Debezium's stand-in for an unchanged TOASTed column (text, and bytes after base64
# decoding): the column is left out of the write, so the stored value stays.
UNAVAILABLE = frozenset({"__debezium_unavailable_value", b"__debezium_unavailable_value"})


class PoisonEvent(ValueError):
    """An event the sink cannot apply; ``reason`` is a short machine-readable tag."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Upsert:
    model: str
    key: Key
    row: Mapping[str, Any]
    position: Position
    source_ts_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Delete:
    model: str
    key: Key
    position: Position | None  # None for a tombstone
    source_ts_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Truncate:
    model: str
    position: Position
    source_ts_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Skip:
    reason: str
    source_ts_ms: int | None = None  # heartbeats: how recent the source is


PlannedWrite = Upsert | Delete | Truncate


def parse_json(raw: bytes | str | None) -> Any:
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PoisonEvent("undecodable", f"not JSON: {exc}") from None


def unwrap(document: Any) -> tuple[Any, Mapping[str, Any] | None]:
    """Split a JsonConverter ``{schema, payload}`` document; bare payloads pass through."""
    if isinstance(document, Mapping) and set(document) == {"schema", "payload"}:
        schema = document["schema"]
        return document["payload"], schema if isinstance(schema, Mapping) else None
    return document, None


def table_of_topic(topic: str) -> tuple[str | None, str]:
    parts = topic.split(".")
    if len(parts) >= 3:
        return parts[-2], parts[-1]
    return None, parts[-1]


def _map_row(
    mapping: TableMapping, row: Mapping[str, Any], schemas: Mapping[str, Any] | None
) -> dict[str, Any]:
    try:
        decoded = decode_row(row, schemas)
    except DecodeError as exc:
        raise PoisonEvent("undecodable", f"{mapping.source}: {exc}") from None
    out: dict[str, Any] = {}
    kinds = mapping.columns
    for column, value in decoded.items():
        if column in mapping.ignore or (isinstance(value, str | bytes) and value in UNAVAILABLE):
            continue
        target = mapping.target_column(column)
        if kinds is not None and target not in kinds:
            raise PoisonEvent(
                "unknown_column",
                f"{mapping.source}: column {column!r} has no place in model {mapping.model!r}",
            )
        try:
            if target in mapping.transform:
                value = TRANSFORMS[mapping.transform[target]](value)
            elif kinds is not None:
                value = coerce(value, kinds[target])
        except DecodeError as exc:
            raise PoisonEvent("undecodable", f"{mapping.source}.{column}: {exc}") from None
        out[target] = value
    return out


def _key(mapping: TableMapping, row: Mapping[str, Any]) -> Key:
    missing = [c for c in mapping.key if c not in row]
    if missing:
        raise PoisonEvent(
            "missing_key", f"{mapping.source}: key column {missing[0]!r} missing from event"
        )
    return tuple(row[c] for c in mapping.key)


def _source_ts(source: Mapping[str, Any]) -> int | None:
    ts = source.get("ts_ms")
    return ts if isinstance(ts, int) and not isinstance(ts, bool) else None


def plan_event(
    mapping: SinkMapping, value: Any, *, key: Any = None, topic: str | None = None
) -> PlannedWrite | Skip:
    if isinstance(value, bytes | str):
        value = parse_json(value)
    if value is None:
        return _tombstone(mapping, key, topic)
    payload, schema = unwrap(value)
    if not isinstance(payload, Mapping):
        raise PoisonEvent("undecodable", f"event payload is not an object: {payload!r}")
    if "op" not in payload:
        if "status" in payload and "event_count" in payload:
            return Skip("transaction marker")
        if set(payload) <= {"ts_ms"}:
            ts = payload.get("ts_ms")
            return Skip("heartbeat", ts if isinstance(ts, int) else None)
        raise PoisonEvent("undecodable", "event has no 'op'")
    op = payload["op"]
    if op == "m":
        return Skip("logical message")
    source = payload.get("source")
    if not isinstance(source, Mapping) or not isinstance(source.get("table"), str):
        raise PoisonEvent("undecodable", "event has no source.table")
    schema_name = source.get("schema")
    table = mapping.for_source(schema_name if isinstance(schema_name, str) else None,
                               source["table"])
    if table is None:
        return Skip(f"unmapped table {source['table']}")
    try:
        position = position_of(source)
    except PositionError as exc:
        raise PoisonEvent("undecodable", str(exc)) from None
    ts = _source_ts(source)
    if op in ("c", "u", "r"):
        after = payload.get("after")
        if not isinstance(after, Mapping):
            raise PoisonEvent("undecodable", f"op {op!r} without an 'after' row")
        row = _map_row(table, after, field_schemas(schema, "after"))
        return Upsert(table.model, _key(table, row), row, position, ts)
    if op == "d":
        before = payload.get("before")
        if not isinstance(before, Mapping):
            raise PoisonEvent("undecodable", "delete without a 'before' row")
        row = _map_row(table, before, field_schemas(schema, "before"))
        return Delete(table.model, _key(table, row), position, ts)
    if op == "t":
        return Truncate(table.model, position, ts)
    raise PoisonEvent("undecodable", f"unknown op {op!r}")


def _tombstone(mapping: SinkMapping, key: Any, topic: str | None) -> PlannedWrite | Skip:
    if topic is None or key is None:
        raise PoisonEvent("undecodable", "tombstone without a topic and key")
    schema_name, table_name = table_of_topic(topic)
    table = mapping.for_source(schema_name, table_name)
    if table is None:
        return Skip(f"unmapped table {table_name}")
    if isinstance(key, bytes | str):
        key = parse_json(key)
    payload, schema = unwrap(key)
    if not isinstance(payload, Mapping):
        raise PoisonEvent("undecodable", f"tombstone key is not an object: {payload!r}")
    schemas = None
    if schema:
        schemas = {
            f["field"]: f
            for f in schema.get("fields") or ()
            if isinstance(f, Mapping) and isinstance(f.get("field"), str)
        }
    row = _map_row(table, payload, schemas)
    return Delete(table.model, _key(table, row), None)


def collapse(writes: Sequence[PlannedWrite]) -> list[list[PlannedWrite]]:
    """Split a batch at truncates and keep, per row, only the newest write of each segment.

    Within a segment, a write replaces an earlier one for the same row when its position
    is at least as new (tombstones, which have no position, always replace).
    """
    segments: list[list[PlannedWrite]] = []
    latest: dict[tuple[str, Key], Upsert | Delete] = {}
    for write in writes:
        if isinstance(write, Truncate):
            if latest:
                segments.append(list(latest.values()))
                latest = {}
            segments.append([write])
            continue
        slot = (write.model, write.key)
        current = latest.get(slot)
        if (
            current is None
            or write.position is None
            or current.position is None
            or write.position >= current.position
        ):
            latest.pop(slot, None)
            latest[slot] = write
    if latest:
        segments.append(list(latest.values()))
    return segments
