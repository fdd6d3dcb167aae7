"""Render changelog values as PostgreSQL would hold them for the same Django field (pure).

SQLite keeps what Django writes in loose types: a ``DecimalField`` as REAL (or INTEGER
when whole), a ``BooleanField`` as 0/1, a ``DateTimeField`` as UTC text without offset,
a ``UUIDField`` as 32 hex characters, a ``DurationField`` as microseconds, a
``JSONField`` as text. The same field on PostgreSQL is ``numeric(p, s)``, ``boolean``,
``timestamptz``, ``uuid``, ``interval``, ``jsonb`` (rendered as its output text).
:func:`render_row` turns one
changelog image into the Python values the PostgreSQL source produces for those types,
so both sources feed the same converter and consumers cannot tell them apart.

Kinds (``Column.kind``) name the PostgreSQL type Django creates for the field:
smallint, integer, bigint, float, decimal, boolean, text, datetime (timestamptz),
timestamp (without time zone), date, time, uuid, json, binary, duration, and ``auto``
(decide from the declared SQLite type, then from the value).

:func:`column_type` gives the :class:`cdc.types.ColumnType` of that PostgreSQL type with
its converter fed from the rendered value, so the shared converter writes the same
schema and payload as the PostgreSQL source.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from cdc.errors import DecodeError
from cdc.sources.sqlite.triggers import CapturedTable, Column

__all__ = [
    "KINDS",
    "Value",
    "jsonb_text",
    "kind_for_declared",
    "kind_for_django",
    "parse_image",
    "render_row",
    "render_value",
]

KINDS = frozenset(
    {
        "auto", "smallint", "integer", "bigint", "float", "decimal", "boolean", "text",
        "datetime", "timestamp", "date", "time", "uuid", "json", "binary", "duration",
    }
)

Value = (
    None | bool | int | float | str | bytes | Decimal | dt.datetime | dt.date | dt.time
    | dt.timedelta | uuid.UUID | dict[str, Any] | list[Any]
)

_DJANGO: dict[str, str] = {
    **dict.fromkeys(["AutoField", "IntegerField", "PositiveIntegerField"], "integer"),
    **dict.fromkeys(["BigAutoField", "BigIntegerField", "PositiveBigIntegerField"], "bigint"),
    **dict.fromkeys(
        ["SmallAutoField", "SmallIntegerField", "PositiveSmallIntegerField"], "smallint"
    ),
    **dict.fromkeys(
        [
            "CharField", "TextField", "EmailField", "SlugField", "URLField",
            "GenericIPAddressField", "IPAddressField", "FilePathField", "FileField",
            "ImageField",
        ],
        "text",
    ),
    "FloatField": "float",
    "DecimalField": "decimal",
    "BooleanField": "boolean",
    "NullBooleanField": "boolean",
    "DateTimeField": "datetime",
    "DateField": "date",
    "TimeField": "time",
    "UUIDField": "uuid",
    "JSONField": "json",
    "BinaryField": "binary",
    "DurationField": "duration",
}


def kind_for_django(internal_type: str) -> str:
    """``kind_for_django("DecimalField") == "decimal"``; unknown field types → ``auto``."""
    return _DJANGO.get(internal_type, "auto")


_NUMERIC = re.compile(r"^\s*(?:decimal|numeric)\s*\(\s*\d+\s*,\s*(\d+)\s*\)", re.I)


def kind_for_declared(declared: str) -> tuple[str, int | None]:
    """The kind for a declared SQLite column type, as Django's SQLite backend names them."""
    d = declared.strip().lower()
    m = _NUMERIC.match(d)
    if m:
        return "decimal", int(m.group(1))
    if d in {"bool", "boolean"}:
        return "boolean", None
    if d.startswith(("decimal", "numeric")):
        return "decimal", None
    for prefix, kind in (
        ("datetime", "datetime"), ("timestamp", "datetime"), ("date", "date"),
        ("time", "time"), ("uuid", "uuid"), ("json", "json"), ("blob", "binary"),
    ):
        if d.startswith(prefix):
            return kind, None
    if d.startswith("smallint"):
        return "smallint", None
    if "int" in d:
        return "bigint", None
    if any(w in d for w in ("real", "floa", "doub")):
        return "float", None
    if any(w in d for w in ("char", "clob", "text")):
        return "text", None
    return "auto", None


def parse_image(text: str | None) -> dict[str, Any] | None:
    """A changelog ``before``/``after`` column; numbers with a fraction stay Decimal so
    no digit SQLite printed is lost before the column's kind is known."""
    if text is None:
        return None
    try:
        image = json.loads(text, parse_float=Decimal)
    except ValueError as exc:
        raise DecodeError(f"changelog image is not JSON: {text[:80]!r}") from exc
    if not isinstance(image, dict):
        raise DecodeError(f"changelog image is not a JSON object: {text[:80]!r}")
    return image


def _blob(raw: Any) -> bytes | None:
    if isinstance(raw, dict) and set(raw) == {"$blob"}:
        return bytes.fromhex(raw["$blob"])
    return None


def _aware(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def _decimal(raw: Any, scale: int | None) -> Decimal:
    if isinstance(raw, bool):
        raise TypeError("boolean")
    value = Decimal(raw) if isinstance(raw, int | Decimal | str) else Decimal(str(raw))
    if scale is None:
        return value
    return value.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_UP)


_INTS = frozenset({"smallint", "integer", "bigint"})


def _render(kind: str, raw: Any, scale: int | None) -> Value:
    if kind in _INTS:
        if isinstance(raw, Decimal) and raw == raw.to_integral_value():
            return int(raw)
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise TypeError(type(raw).__name__)
        return raw
    if kind == "float":
        return float(raw)
    if kind == "decimal":
        return _decimal(raw, scale)
    if kind == "boolean":
        if raw in (0, 1) and not isinstance(raw, str):
            return bool(raw)
        if isinstance(raw, str) and raw.lower() in {"t", "true", "f", "false"}:
            return raw.lower() in {"t", "true"}
        raise TypeError("not 0/1")
    if kind == "text":
        return raw if isinstance(raw, str) else str(raw)
    if kind == "datetime":
        return _aware(dt.datetime.fromisoformat(raw))
    if kind == "timestamp":
        return dt.datetime.fromisoformat(raw).replace(tzinfo=None)
    if kind == "date":
        return dt.date.fromisoformat(raw)
    if kind == "time":
        return dt.time.fromisoformat(raw)
    if kind == "uuid":
        return uuid.UUID(raw)
    if kind == "json":
        return jsonb_text(json.loads(raw, parse_float=Decimal) if isinstance(raw, str) else raw)
    if kind == "binary":
        return raw.encode() if isinstance(raw, str) else bytes(raw)
    if kind == "duration":
        return dt.timedelta(microseconds=int(raw))
    raise ValueError(f"unknown column kind {kind!r}")


def _auto(raw: Any) -> Value:
    if isinstance(raw, Decimal):
        return float(raw)
    return raw  # type: ignore[no-any-return]


def render_value(column: Column, raw: Any) -> Value:
    """One value of ``column`` as PostgreSQL would hold it; ``DecodeError`` if it cannot be."""
    if raw is None:
        return None
    blob = _blob(raw)
    kind, scale = column.kind, column.scale
    if kind == "auto":
        kind, declared_scale = kind_for_declared(column.declared)
        scale = scale if scale is not None else declared_scale
    if blob is not None:
        if kind in {"binary", "auto"}:
            return blob
        raw = blob.decode("utf-8", "replace")
    if kind == "auto":
        return _auto(raw)
    try:
        return _render(kind, raw, scale)
    except (TypeError, ValueError, InvalidOperation, AttributeError) as exc:
        raise DecodeError(
            f"column {column.name!r} ({kind}) holds {raw!r}, which is not a {kind}: {exc}"
        ) from exc


def render_row(table: CapturedTable, image: Mapping[str, Any] | None) -> dict[str, Value] | None:
    """A whole image, in the table's column order; columns the image lacks are omitted."""
    if image is None:
        return None
    return {c.name: render_value(c, image[c.name]) for c in table.columns if c.name in image}


def _jsonb(value: Any) -> str:
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda kv: (len(kv[0].encode()), kv[0].encode()))
        return "{" + ", ".join(f"{_jsonb(k)}: {_jsonb(v)}" for k, v in items) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_jsonb(v) for v in value) + "]"
    if isinstance(value, Decimal):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def jsonb_text(value: Any) -> str:
    """PostgreSQL's ``jsonb`` output text for a parsed JSON value: object keys ordered by
    length then bytes (duplicates: last wins, as jsonb keeps), ``", "``/``": "``."""
    return _jsonb(value)
