"""Turn Debezium field values back into Python values (pure).

With the JSON converter's ``{schema, payload}`` wrapper every field carries its Kafka
Connect type and, for Debezium's semantic types, a ``name``: decimals arrive as base64
big-endian two's-complement unscaled integers with the scale in ``parameters``, dates as
days since the epoch, ``MicroTimestamp`` as microseconds, ``ZonedTimestamp`` as an ISO
string, and so on. :func:`decode_row` applies those rules to a ``before``/``after`` struct.

Without schemas the payload alone says nothing about types; :func:`coerce` then turns raw
JSON values into what a target column expects (``datetime``, ``Decimal``, ...), using the
same defaults Debezium uses (``time.precision.mode=adaptive``: microseconds).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import uuid
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

EPOCH = dt.datetime(1970, 1, 1)
EPOCH_DATE = dt.date(1970, 1, 1)


class DecodeError(ValueError):
    """A field value does not match its declared type."""


def decimal_from_base64(value: str, scale: int) -> Decimal:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DecodeError(f"not base64 decimal bytes: {value!r}") from exc
    unscaled = int.from_bytes(raw, "big", signed=True) if raw else 0
    return Decimal(unscaled).scaleb(-scale)


def _decimal(value: Any, schema: Mapping[str, Any]) -> Decimal:
    if isinstance(value, str) and schema.get("type") == "bytes":
        params = schema.get("parameters") or {}
        try:
            scale = int(params.get("scale", 0))
        except (TypeError, ValueError) as exc:
            raise DecodeError(f"bad decimal scale {params.get('scale')!r}") from exc
        return decimal_from_base64(value, scale)
    return _to_decimal(value)


def _variable_scale_decimal(value: Any, schema: Mapping[str, Any]) -> Decimal:
    if not isinstance(value, Mapping) or "value" not in value:
        raise DecodeError(f"VariableScaleDecimal needs {{scale, value}}, got {value!r}")
    return decimal_from_base64(str(value["value"]), int(value.get("scale") or 0))


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise DecodeError(f"expected an integer, got {value!r}")
    return value


def _micros(value: Any, per_second: int) -> dt.datetime:
    n = _int(value)
    return EPOCH + dt.timedelta(microseconds=n * 1_000_000 // per_second)


def _time_of_day(value: Any, per_second: int) -> dt.time:
    n = _int(value)
    micros = n * 1_000_000 // per_second
    return (dt.datetime.min + dt.timedelta(microseconds=micros)).time()


def _zoned(value: Any, _schema: Mapping[str, Any]) -> dt.datetime:
    if not isinstance(value, str):
        raise DecodeError(f"ZonedTimestamp must be a string, got {value!r}")
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise DecodeError(f"bad ZonedTimestamp {value!r}") from exc


def _json(value: Any, _schema: Mapping[str, Any]) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError as exc:
        raise DecodeError(f"bad io.debezium.data.Json {value!r}") from exc


def _bytes(value: Any) -> bytes:
    if not isinstance(value, str):
        raise DecodeError(f"bytes must be base64 text, got {value!r}")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DecodeError(f"bad base64 bytes {value!r}") from exc


_SEMANTIC: dict[str, Callable[[Any, Mapping[str, Any]], Any]] = {
    "org.apache.kafka.connect.data.Decimal": _decimal,
    "io.debezium.data.VariableScaleDecimal": _variable_scale_decimal,
    "io.debezium.time.Date": lambda v, _s: EPOCH_DATE + dt.timedelta(days=_int(v)),
    "org.apache.kafka.connect.data.Date": lambda v, _s: EPOCH_DATE + dt.timedelta(days=_int(v)),
    "io.debezium.time.Timestamp": lambda v, _s: _micros(v, 1000),
    "org.apache.kafka.connect.data.Timestamp": lambda v, _s: _micros(v, 1000),
    "io.debezium.time.MicroTimestamp": lambda v, _s: _micros(v, 1_000_000),
    "io.debezium.time.NanoTimestamp": lambda v, _s: _micros(v, 1_000_000_000),
    "io.debezium.time.ZonedTimestamp": _zoned,
    "io.debezium.time.Time": lambda v, _s: _time_of_day(v, 1000),
    "org.apache.kafka.connect.data.Time": lambda v, _s: _time_of_day(v, 1000),
    "io.debezium.time.MicroTime": lambda v, _s: _time_of_day(v, 1_000_000),
    "io.debezium.time.NanoTime": lambda v, _s: _time_of_day(v, 1_000_000_000),
    "io.debezium.data.Json": _json,
    "io.debezium.data.Uuid": lambda v, _s: str(v),
}


def decode_value(value: Any, schema: Mapping[str, Any]) -> Any:
    """Decode one field value according to its Kafka Connect field schema."""
    if value is None:
        return None
    name = schema.get("name")
    if isinstance(name, str) and name in _SEMANTIC:
        return _SEMANTIC[name](value, schema)
    kind = schema.get("type")
    if kind == "bytes":
        return _bytes(value)
    if kind == "array" and isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, Mapping):
            return [decode_value(v, items) for v in value]
    return value


def _zoned_to_naive_utc(value: Any) -> dt.datetime:
    if type(value) is str and value.endswith("Z"):
        try:
            return dt.datetime.fromisoformat(value[:-1])
        except ValueError:
            pass
    return _to_datetime(_zoned(value, {}))


def field_decoder(
    schema: Mapping[str, Any], kind: str | None = None
) -> Callable[[Any], Any] | None:
    """:func:`decode_value` for one field, resolved once (None: values pass unchanged).

    With the target column's ``kind`` the result also coerces to it (see :func:`coerce`).
    """
    name = schema.get("name")
    if name == "io.debezium.time.ZonedTimestamp" and kind == "datetime":
        return _zoned_to_naive_utc
    first = _field_decoder(schema)
    second = COERCIONS.get(kind) if kind is not None else None
    if first is None or second is None:
        return first or second
    return lambda value: second(first(value))


def _field_decoder(schema: Mapping[str, Any]) -> Callable[[Any], Any] | None:
    name = schema.get("name")
    if isinstance(name, str) and name in _SEMANTIC:
        semantic = _SEMANTIC[name]
        return lambda value: semantic(value, schema)
    kind = schema.get("type")
    if kind == "bytes":
        return _bytes
    if kind == "array" and isinstance(schema.get("items"), Mapping):
        return lambda value: decode_value(value, schema)
    return None


def field_schemas(envelope_schema: Mapping[str, Any] | None, part: str) -> dict[str, Any] | None:
    """The per-column schemas of the envelope's ``before``/``after`` struct, if declared."""
    if not envelope_schema:
        return None
    for item in envelope_schema.get("fields") or ():
        if isinstance(item, Mapping) and item.get("field") == part:
            return {
                f["field"]: f
                for f in item.get("fields") or ()
                if isinstance(f, Mapping) and isinstance(f.get("field"), str)
            }
    return None


def decode_row(row: Mapping[str, Any], schemas: Mapping[str, Any] | None) -> dict[str, Any]:
    if not schemas:
        return dict(row)
    return {
        column: decode_value(value, schemas[column]) if column in schemas else value
        for column, value in row.items()
    }


# --- coercion to a target column's kind (used with and without schemas) -------------


def _to_decimal(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        raise DecodeError(f"expected a decimal, got {value!r}")
    try:
        return Decimal(str(value)) if isinstance(value, int | float | str) else _fail(value)
    except InvalidOperation as exc:
        raise DecodeError(f"expected a decimal, got {value!r}") from exc


def _fail(value: Any) -> Decimal:
    raise DecodeError(f"expected a decimal, got {value!r}")


def _to_datetime(value: Any) -> dt.datetime:
    """A naive UTC datetime: aware values are converted to UTC, then made naive."""
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, int) and not isinstance(value, bool):
        parsed = _micros(value, 1_000_000)
    elif isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise DecodeError(f"expected a timestamp, got {value!r}") from exc
    else:
        raise DecodeError(f"expected a timestamp, got {value!r}")
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    return parsed


def _to_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return EPOCH_DATE + dt.timedelta(days=value)
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError as exc:
            raise DecodeError(f"expected a date, got {value!r}") from exc
    raise DecodeError(f"expected a date, got {value!r}")


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str | Decimal | float):
        try:
            number = Decimal(str(value))
        except InvalidOperation as exc:
            raise DecodeError(f"expected an integer, got {value!r}") from exc
        if number != number.to_integral_value():
            raise DecodeError(f"expected an integer, got {value!r}")
        return int(number)
    raise DecodeError(f"expected an integer, got {value!r}")


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false", "t", "f"):
        return value.lower() in ("true", "t")
    raise DecodeError(f"expected a boolean, got {value!r}")


def _to_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _to_json(value: Any) -> Any:
    return _json(value, {})


def _to_uuid(value: Any) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError as exc:
        raise DecodeError(f"expected a uuid, got {value!r}") from exc


def _to_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise DecodeError(f"expected a number, got {value!r}")
    try:
        return float(value)
    except ValueError as exc:
        raise DecodeError(f"expected a number, got {value!r}") from exc


COERCIONS: dict[str, Callable[[Any], Any]] = {
    "datetime": _to_datetime,
    "date": _to_date,
    "decimal": _to_decimal,
    "int": _to_int,
    "float": _to_float,
    "bool": _to_bool,
    "str": _to_str,
    "json": _to_json,
    "uuid": _to_uuid,
    "bytes": lambda v: v if isinstance(v, bytes) else _bytes(v),
}


def coerce(value: Any, kind: str) -> Any:
    """Coerce a decoded value to a column kind (see :data:`COERCIONS`); None passes."""
    if value is None:
        return None
    try:
        convert = COERCIONS[kind]
    except KeyError:
        raise DecodeError(f"unknown column kind {kind!r}") from None
    return convert(value)
