import base64
import datetime as dt
from decimal import Decimal

import pytest

from cdc.sinks.decode import DecodeError, coerce, decimal_from_base64, decode_value


def _b64(unscaled: int, length: int) -> str:
    return base64.b64encode(unscaled.to_bytes(length, "big", signed=True)).decode()


def test_decimal_from_base64_positive_negative_and_scale() -> None:
    assert decimal_from_base64(_b64(12345, 2), 2) == Decimal("123.45")
    assert decimal_from_base64(_b64(-5, 1), 2) == Decimal("-0.05")
    # Debezium's documented example: "AJs=" with scale 2 is 1.55
    assert decimal_from_base64("AJs=", 2) == Decimal("1.55")


def test_semantic_types() -> None:
    dec = {"type": "bytes", "name": "org.apache.kafka.connect.data.Decimal",
           "parameters": {"scale": "2", "connect.decimal.precision": "10"}}
    assert decode_value(_b64(1999, 2), dec) == Decimal("19.99")
    var = {"type": "struct", "name": "io.debezium.data.VariableScaleDecimal"}
    assert decode_value({"scale": 3, "value": _b64(1234, 2)}, var) == Decimal("1.234")
    assert decode_value(19723, {"type": "int32", "name": "io.debezium.time.Date"}) == dt.date(
        2024, 1, 1
    )
    micro = {"type": "int64", "name": "io.debezium.time.MicroTimestamp"}
    assert decode_value(1_704_067_200_123_456, micro) == dt.datetime(2024, 1, 1, 0, 0, 0, 123456)
    millis = {"type": "int64", "name": "io.debezium.time.Timestamp"}
    assert decode_value(1_704_067_200_123, millis) == dt.datetime(2024, 1, 1, 0, 0, 0, 123000)
    zoned = {"type": "string", "name": "io.debezium.time.ZonedTimestamp"}
    assert decode_value("2024-01-01T10:00:00.5Z", zoned) == dt.datetime(
        2024, 1, 1, 10, 0, 0, 500000, tzinfo=dt.UTC
    )
    micro_time = {"type": "int64", "name": "io.debezium.time.MicroTime"}
    assert decode_value(3_600_000_001, micro_time) == dt.time(1, 0, 0, 1)
    jsonb = {"type": "string", "name": "io.debezium.data.Json"}
    assert decode_value('{"a": [1]}', jsonb) == {"a": [1]}
    assert decode_value("AQI=", {"type": "bytes"}) == b"\x01\x02"
    assert decode_value(None, dec) is None


def test_bad_values_raise_decode_error() -> None:
    dec = {"type": "bytes", "name": "org.apache.kafka.connect.data.Decimal",
           "parameters": {"scale": "2"}}
    with pytest.raises(DecodeError, match="base64"):
        decode_value("not base64!", dec)
    with pytest.raises(DecodeError, match="integer"):
        decode_value("2024-01-01", {"type": "int32", "name": "io.debezium.time.Date"})


def test_coerce_without_schema() -> None:
    assert coerce("2024-01-01T10:00:00+02:00", "datetime") == dt.datetime(2024, 1, 1, 8)
    assert coerce(1_704_067_200_000_000, "datetime") == dt.datetime(2024, 1, 1)
    assert coerce("19.90", "decimal") == Decimal("19.90")
    assert coerce(19723, "date") == dt.date(2024, 1, 1)
    assert coerce("7", "int") == 7
    assert coerce("t", "bool") is True
    assert coerce({"a": 1}, "str") == '{"a":1}'
    assert coerce(None, "int") is None
    with pytest.raises(DecodeError):
        coerce("7.5", "int")
    with pytest.raises(DecodeError):
        coerce("yesterday", "datetime")
