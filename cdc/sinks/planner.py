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

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from cdc.sinks.decode import COERCIONS, DecodeError, field_decoder, field_schemas
from cdc.sinks.mapping import TRANSFORMS, SinkMapping, TableMapping
from cdc.sinks.position import Position, PositionError, position_of

Key = tuple[Any, ...]
# Debezium's stand-in for an unchanged TOASTed column (text, and bytes after base64
# decoding): the column is left out of the write, so the stored value stays.
UNAVAILABLE = frozenset(
    {"__debezium_unavailable_value", "X19kZWJleml1bV91bmF2YWlsYWJsZV92YWx1ZQ=="}
)


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
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise PoisonEvent("undecodable", f"not JSON: {exc}") from None


_SCHEMA_PREFIX = b'{"schema":'
_PAYLOAD_CUT = b',"payload":'
_schemas: dict[bytes, Mapping[str, Any] | None] = {}


def _parse_wrapped(raw: bytes) -> tuple[Any, Mapping[str, Any] | None, bytes | None]:
    """Parse a compact JsonConverter document, parsing its (repeated) schema only once.

    Returns (payload, schema, schema bytes) — the bytes identify the schema for caches;
    anything not in the compact ``{"schema":...,"payload":...}`` layout is parsed whole.
    """
    if raw.startswith(_SCHEMA_PREFIX) and raw.endswith(b"}"):
        cut = raw.find(_PAYLOAD_CUT)
        if cut > 0:
            schema_bytes = raw[len(_SCHEMA_PREFIX):cut]
            try:
                payload = orjson.loads(raw[cut + len(_PAYLOAD_CUT):-1])
                if schema_bytes not in _schemas:
                    if len(_schemas) > 256:
                        _schemas.clear()
                    parsed = orjson.loads(schema_bytes)
                    _schemas[schema_bytes] = parsed if isinstance(parsed, Mapping) else None
            except orjson.JSONDecodeError:
                pass
            else:
                return payload, _schemas[schema_bytes], schema_bytes
    payload, schema = unwrap(parse_json(raw))
    return payload, schema, None


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


Convert = Callable[[Any], Any]
# (target column, converter or None) per source column; None entry: ignored column
ColumnPlans = dict[str, tuple[str, Convert | None] | None]
_IGNORED = object()
_plans: dict[tuple[int, str, bytes | None],
             tuple[TableMapping, ColumnPlans, Mapping[str, Any] | None]] = {}


def _compose(first: Convert | None, second: Convert | None) -> Convert | None:
    if first is None or second is None:
        return first or second
    return lambda value: second(first(value))


def _column_plan(
    mapping: TableMapping, column: str, schema: Mapping[str, Any] | None
) -> tuple[str, Convert | None] | None:
    if column in mapping.ignore:
        return None
    target = mapping.target_column(column)
    kinds = mapping.columns
    if kinds is not None and target not in kinds:
        raise PoisonEvent(
            "unknown_column",
            f"{mapping.source}: column {column!r} has no place in model {mapping.model!r}",
        )
    if target in mapping.transform:
        decoder = field_decoder(schema) if schema else None
        return target, _compose(decoder, TRANSFORMS[mapping.transform[target]])
    kind = kinds[target] if kinds is not None else None
    if schema:
        return target, field_decoder(schema, kind)
    return target, COERCIONS.get(kind) if kind is not None else None


def _plans_for(mapping: TableMapping, part: str, schema: Mapping[str, Any] | None,
               schema_key: bytes | None) -> tuple[ColumnPlans, Mapping[str, Any] | None]:
    """Per-column plans, cached when the schema is identified by its bytes (or absent)."""
    if schema is not None and schema_key is None:
        return {}, field_schemas(schema, part)
    slot = (id(mapping), part, schema_key)
    cached = _plans.get(slot)
    if cached is None or cached[0] is not mapping:
        if len(_plans) > 1024:
            _plans.clear()
        cached = _plans[slot] = (mapping, {}, field_schemas(schema, part))
    return cached[1], cached[2]


def _map_row(
    mapping: TableMapping, row: Mapping[str, Any], plans: ColumnPlans,
    fields: Mapping[str, Any] | None,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for column, value in row.items():
        try:
            plan = plans[column]
        except KeyError:
            plan = plans[column] = _column_plan(
                mapping, column, fields.get(column) if fields else None)
        if plan is None or (type(value) is str and value in UNAVAILABLE):
            continue
        target, convert = plan
        if value is not None and convert is not None:
            try:
                value = convert(value)
            except DecodeError as exc:
                raise PoisonEvent("undecodable", f"{mapping.source}.{column}: {exc}") from None
        out[target] = value
    return out


def _key(mapping: TableMapping, row: Mapping[str, Any]) -> Key:
    try:
        return tuple([row[c] for c in mapping.key])
    except KeyError as exc:
        raise PoisonEvent(
            "missing_key", f"{mapping.source}: key column {exc.args[0]!r} missing from event"
        ) from None


def _source_ts(source: Mapping[str, Any]) -> int | None:
    ts = source.get("ts_ms")
    return ts if isinstance(ts, int) and not isinstance(ts, bool) else None


def plan_event(
    mapping: SinkMapping, value: Any, *, key: Any = None, topic: str | None = None
) -> PlannedWrite | Skip:
    schema_key: bytes | None = None
    if isinstance(value, bytes):
        if not value.strip():  # JsonConverter reads empty bytes as null: a tombstone
            return _tombstone(mapping, key, topic)
        payload, schema, schema_key = _parse_wrapped(value)
        if payload is None and schema is None:
            return _tombstone(mapping, key, topic)
    else:
        if isinstance(value, str):
            value = parse_json(value)
        if value is None:
            return _tombstone(mapping, key, topic)
        payload, schema = unwrap(value)
    if type(payload) is not dict and not isinstance(payload, Mapping):
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
    if (type(source) is not dict and not isinstance(source, Mapping)) or type(
        source.get("table")
    ) is not str:
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
        if type(after) is not dict and not isinstance(after, Mapping):
            raise PoisonEvent("undecodable", f"op {op!r} without an 'after' row")
        row = _map_row(table, after, *_plans_for(table, "after", schema, schema_key))
        return Upsert(table.model, _key(table, row), row, position, ts)
    if op == "d":
        before = payload.get("before")
        if not isinstance(before, Mapping):
            raise PoisonEvent("undecodable", "delete without a 'before' row")
        row = _map_row(table, before, *_plans_for(table, "before", schema, schema_key))
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
    row = _map_row(table, payload, {}, schemas)
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
