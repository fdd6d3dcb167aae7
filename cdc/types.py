"""Column types: the Kafka Connect schema Debezium gives a column, and how a source
value becomes the JSON payload value.

PostgreSQL columns map as Debezium's connector does by default
(``decimal.handling.mode=precise``, ``time.precision.mode=adaptive``,
``binary.handling.mode=bytes``, ``interval.handling.mode=numeric``)::

    numeric(p,s)   bytes   org.apache.kafka.connect.data.Decimal  base64 unscaled, scale in schema
    numeric        struct  io.debezium.data.VariableScaleDecimal  {scale, value}
    date           int32   io.debezium.time.Date                  days since 1970-01-01
    time(0..3)     int32   io.debezium.time.Time                  ms since midnight
    time(4..6)     int64   io.debezium.time.MicroTime             µs since midnight
    timestamp(p)   int64   io.debezium.time.(Micro)Timestamp      ms/µs since epoch
    timestamptz    string  io.debezium.time.ZonedTimestamp        ISO-8601 in UTC
    timetz         string  io.debezium.time.ZonedTime
    interval       int64   io.debezium.time.MicroDuration
    uuid           string  io.debezium.data.Uuid
    json, jsonb    string  io.debezium.data.Json
    bytea          bytes   (base64 in JSON)
    bool, int2/4/8, float4/8, text/varchar/char, one-dimensional arrays of simple types

Anything else (enums, inet, ...) is a plain string. ``ColumnType.convert`` takes the
text form PostgreSQL writes (pgoutput and ``::text`` agree); other sources build their
own ``ColumnType`` with a converter for their values.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = [
    "UNAVAILABLE_VALUE",
    "ColumnType",
    "decimal_bytes",
    "pg_column_type",
]

UNAVAILABLE_VALUE = "__debezium_unavailable_value"
"""What Debezium writes for an unchanged TOASTed value PostgreSQL did not send."""

_EPOCH = datetime(1970, 1, 1)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_US = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class ColumnType:
    """``ColumnType({"type": "int32"}, int, 0)`` — a Connect schema (without ``optional``
    and ``field``), a converter from the source's value to the payload value, and the
    value Debezium writes when a required column's value is not known (e.g. the non-key
    columns of a ``REPLICA IDENTITY DEFAULT`` delete)."""

    schema: Mapping[str, Any]
    convert: Callable[[Any], Any]
    fallback: Any = None
    unavailable: Any = field(default=None)


def _semantic(type_: str, name: str, **extra: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": type_, "name": name, "version": 1}
    schema.update(extra)
    return schema


def decimal_bytes(unscaled: int) -> bytes:
    """Big-endian two's complement, minimal length (Java ``BigInteger.toByteArray``)."""
    bits = unscaled.bit_length() if unscaled >= 0 else (~unscaled).bit_length()
    return unscaled.to_bytes(bits // 8 + 1, "big", signed=True)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _decimal(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"not a decimal: {text!r}") from None
    if not value.is_finite():
        raise ValueError(f"{text} cannot be represented as a Kafka Connect decimal")
    return value


def _fixed_decimal(scale: int) -> Callable[[Any], Any]:
    def exact(text: Any) -> str:
        value = _decimal(str(text))
        return _b64(decimal_bytes(int(value.scaleb(scale).to_integral_value())))

    def convert(text: Any) -> str:
        # fast path: PostgreSQL writes numeric(p,s) with exactly s fraction digits
        whole, dot, frac = text.partition(".")
        if len(frac) == scale and (dot or not scale) and whole.lstrip("-").isdigit():
            return _b64(decimal_bytes(int(whole + frac)))
        return exact(text)

    return convert


def _variable_decimal(text: Any) -> dict[str, Any]:
    value = _decimal(str(text))
    exponent = value.as_tuple().exponent
    scale = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    return {"scale": scale, "value": _b64(decimal_bytes(int(value.scaleb(scale))))}


def _bool(text: Any) -> bool:
    """pgoutput writes ``t``/``f``; ``bool::text`` (the snapshot's reads) ``true``/``false``."""
    return text is True or text in ("t", "true")


def _bytea(text: Any) -> str:
    if isinstance(text, bytes | bytearray | memoryview):
        return _b64(bytes(text))
    if text.startswith("\\x"):
        return _b64(bytes.fromhex(text[2:]))
    raise ValueError(f"bytea not in hex output format: {text[:20]!r}")


def _date(text: Any) -> int:
    return date.fromisoformat(text).toordinal() - _EPOCH_ORDINAL


def _micros(frac: str | None) -> int:
    return int((frac or "0").ljust(6, "0")[:6])


def _time_us(text: Any) -> int:
    hms, _, frac = text.partition(".")
    h, m, s = hms.split(":")
    return ((int(h) * 60 + int(m)) * 60 + int(s)) * 1_000_000 + int((frac + "000000")[:6])


def _time_ms(text: Any) -> int:
    return _time_us(text) // 1000


def _timestamp_us(text: Any) -> int:
    return (datetime.fromisoformat(text) - _EPOCH) // _US


def _timestamp_ms(text: Any) -> int:
    return _timestamp_us(text) // 1000


def _iso_utc(width: int) -> Callable[[Any], str]:
    def exact(text: Any) -> str:
        moment = datetime.fromisoformat(text).astimezone(UTC)
        base = moment.strftime("%Y-%m-%dT%H:%M:%S")
        if width:
            base += "." + f"{moment.microsecond:06d}"[:width].ljust(width, "0")
        return base + "Z"

    def convert(value: Any) -> str:
        text = str(value)
        # fast path: the session is pinned to UTC, so PostgreSQL writes
        # "YYYY-MM-DD HH:MM:SS[.ffffff]+00"
        if len(text) >= 22 and text[10] == " " and text.endswith("+00") and text[4] == "-":
            frac = text[20:-3] if text[19] == "." else ""
            out: str = text[:10] + "T" + text[11:19]
            if width:
                out += "." + frac[:width].ljust(width, "0")
            return out + "Z"
        return exact(text)

    return convert


def _zoned_time(width: int) -> Callable[[Any], str]:
    def convert(text: Any) -> str:
        match = re.fullmatch(r"(\d\d):(\d\d):(\d\d)(?:\.(\d+))?([+-]\d\d)(?::?(\d\d))?", text)
        if not match:
            raise ValueError(f"not a time with time zone: {text!r}")
        h, m, s, frac, off_h, off_m = match.groups()
        sign = 1 if off_h[0] == "+" else -1
        offset = timedelta(hours=int(off_h), minutes=sign * int(off_m or 0))
        moment = datetime(2000, 1, 3, int(h) % 24, int(m), int(s), _micros(frac))
        utc = moment - offset
        out = utc.strftime("%H:%M:%S")
        if width:
            out += "." + f"{utc.microsecond:06d}"[:width]
        return out + "Z"

    return convert


_DAYS_PER_MONTH = 365.25 / 12
_INTERVAL_PART = re.compile(r"(-?\d+) (year|mon|day)s?")
_INTERVAL_TIME = re.compile(r"(-)?(\d+):(\d\d):(\d\d)(?:\.(\d+))?")


def _interval_us(text: Any) -> int:
    months = days = 0
    for number, unit in _INTERVAL_PART.findall(text):
        if unit == "year":
            months += int(number) * 12
        elif unit == "mon":
            months += int(number)
        else:
            days += int(number)
    micros = 0
    clock = _INTERVAL_TIME.search(text)
    if clock:
        sign, h, m, s, frac = clock.groups()
        micros = ((int(h) * 60 + int(m)) * 60 + int(s)) * 1_000_000 + _micros(frac)
        micros = -micros if sign else micros
    return round(months * _DAYS_PER_MONTH * 86_400_000_000) + days * 86_400_000_000 + micros


def _identity(value: Any) -> Any:
    return value


def parse_pg_array(text: str) -> list[str | None]:
    """Elements of a one-dimensional PostgreSQL array literal, ``NULL`` as ``None``."""
    if not (text.startswith("{") and text.endswith("}")):
        raise ValueError(f"not an array literal: {text[:40]!r}")
    body = text[1:-1]
    items: list[str | None] = []
    if not body:
        return items
    i, n = 0, len(body)
    while i <= n:
        if i < n and body[i] == "{":
            raise ValueError("multi-dimensional arrays are not supported")
        if i < n and body[i] == '"':
            i += 1
            chars: list[str] = []
            while body[i] != '"':
                if body[i] == "\\":
                    i += 1
                chars.append(body[i])
                i += 1
            items.append("".join(chars))
            i += 1
        else:
            end = body.find(",", i)
            end = n if end < 0 else end
            raw = body[i:end].strip()
            items.append(None if raw == "NULL" else raw)
            i = end
        i += 1
    return items


def _array_of(element: ColumnType) -> ColumnType:
    elem_convert = element.convert

    def convert(text: Any) -> list[Any]:
        if isinstance(text, list):
            return [None if v is None else elem_convert(v) for v in text]
        return [None if v is None else elem_convert(v) for v in parse_pg_array(text)]

    items = {"type": element.schema["type"], "optional": True}
    items.update({k: v for k, v in element.schema.items() if k != "type"})
    return ColumnType({"type": "array", "items": items}, convert, [])


BOOLEAN = ColumnType({"type": "boolean"}, _bool, False)
INT16 = ColumnType({"type": "int16"}, int, 0)
INT32 = ColumnType({"type": "int32"}, int, 0)
INT64 = ColumnType({"type": "int64"}, int, 0)
FLOAT32 = ColumnType({"type": "float"}, float, 0.0)
FLOAT64 = ColumnType({"type": "double"}, float, 0.0)
STRING = ColumnType({"type": "string"}, _identity, "", UNAVAILABLE_VALUE)
BYTES = ColumnType({"type": "bytes"}, _bytea, "", _b64(UNAVAILABLE_VALUE.encode()))
JSON = ColumnType(_semantic("string", "io.debezium.data.Json"), _identity, "{}", UNAVAILABLE_VALUE)
UUID = ColumnType(
    _semantic("string", "io.debezium.data.Uuid"), _identity, "00000000-0000-0000-0000-000000000000"
)
DATE = ColumnType(_semantic("int32", "io.debezium.time.Date"), _date, 0)
INTERVAL = ColumnType(_semantic("int64", "io.debezium.time.MicroDuration"), _interval_us, 0)
VARIABLE_DECIMAL = ColumnType(
    {
        "type": "struct",
        "fields": [
            {"type": "int32", "optional": False, "field": "scale"},
            {"type": "bytes", "optional": False, "field": "value"},
        ],
        "name": "io.debezium.data.VariableScaleDecimal",
        "version": 1,
        "doc": "Variable scaled decimal",
    },
    _variable_decimal,
    {"scale": 0, "value": "AA=="},
)


def decimal_type(precision: int, scale: int) -> ColumnType:
    schema = _semantic(
        "bytes",
        "org.apache.kafka.connect.data.Decimal",
        parameters={"scale": str(scale), "connect.decimal.precision": str(precision)},
    )
    return ColumnType(schema, _fixed_decimal(scale), "AA==")


def time_type(precision: int) -> ColumnType:
    if precision <= 3:
        return ColumnType(_semantic("int32", "io.debezium.time.Time"), _time_ms, 0)
    return ColumnType(_semantic("int64", "io.debezium.time.MicroTime"), _time_us, 0)


def timestamp_type(precision: int) -> ColumnType:
    if precision <= 3:
        return ColumnType(_semantic("int64", "io.debezium.time.Timestamp"), _timestamp_ms, 0)
    return ColumnType(_semantic("int64", "io.debezium.time.MicroTimestamp"), _timestamp_us, 0)


def zoned_timestamp_type(precision: int) -> ColumnType:
    convert = _iso_utc(precision)
    return ColumnType(
        _semantic("string", "io.debezium.time.ZonedTimestamp"),
        convert,
        convert("1970-01-01 00:00:00+00"),
    )


def zoned_time_type(precision: int) -> ColumnType:
    convert = _zoned_time(precision)
    schema = _semantic("string", "io.debezium.time.ZonedTime")
    return ColumnType(schema, convert, convert("00:00:00+00"))


_SIMPLE: dict[int, ColumnType] = {
    16: BOOLEAN,
    17: BYTES,
    18: STRING,
    19: STRING,
    20: INT64,
    21: INT16,
    23: INT32,
    25: STRING,
    26: INT64,
    114: JSON,
    700: FLOAT32,
    701: FLOAT64,
    1042: STRING,
    1043: STRING,
    1082: DATE,
    1186: INTERVAL,
    2950: UUID,
    3802: JSON,
}

_ARRAY_ELEMENT: dict[int, int] = {
    1000: 16, 1005: 21, 1007: 23, 1016: 20, 1021: 700, 1022: 701,
    1009: 25, 1014: 1042, 1015: 1043, 2951: 2950, 1182: 1082,
}

_TIME_OIDS = {
    1083: time_type,
    1114: timestamp_type,
    1184: zoned_timestamp_type,
    1266: zoned_time_type,
}


def _time_precision(typmod: int) -> int:
    return 6 if typmod < 0 else min(typmod, 6)


def pg_column_type(type_oid: int, typmod: int = -1) -> ColumnType:
    """Debezium's default mapping of a PostgreSQL column (``atttypid``, ``atttypmod``)."""
    if type_oid in _SIMPLE:
        return _SIMPLE[type_oid]
    if type_oid == 1700:
        if typmod < 4:
            return VARIABLE_DECIMAL
        return decimal_type(((typmod - 4) >> 16) & 0xFFFF, (typmod - 4) & 0xFFFF)
    if type_oid in _TIME_OIDS:
        return _TIME_OIDS[type_oid](_time_precision(typmod))
    if type_oid in _ARRAY_ELEMENT:
        return _array_of(_SIMPLE[_ARRAY_ELEMENT[type_oid]])
    return STRING
