from __future__ import annotations

import base64
from decimal import Decimal

import pytest

from cdc.types import UNAVAILABLE_VALUE, decimal_bytes, parse_pg_array, pg_column_type


def _unscaled(b64: str) -> int:
    return int.from_bytes(base64.b64decode(b64), "big", signed=True)


@pytest.mark.parametrize(
    ("n", "raw"),
    [(0, b"\x00"), (127, b"\x7f"), (128, b"\x00\x80"), (-1, b"\xff"), (-128, b"\x80"),
     (-129, b"\xff\x7f"), (12345, b"\x30\x39")],
)
def test_decimal_bytes_match_java_biginteger(n: int, raw: bytes) -> None:
    assert decimal_bytes(n) == raw


def _typmod(precision: int, scale: int) -> int:
    return ((precision << 16) | scale) + 4


def test_numeric_with_scale_is_precise_decimal() -> None:
    t = pg_column_type(1700, _typmod(10, 2))
    assert t.schema == {
        "type": "bytes",
        "name": "org.apache.kafka.connect.data.Decimal",
        "version": 1,
        "parameters": {"scale": "2", "connect.decimal.precision": "10"},
    }
    assert _unscaled(t.convert("123.45")) == 12345
    assert _unscaled(t.convert("-0.50")) == -50
    assert t.convert("0.00") == "AA=="


def test_unconstrained_numeric_is_variable_scale_decimal() -> None:
    t = pg_column_type(1700, -1)
    assert t.schema["name"] == "io.debezium.data.VariableScaleDecimal"
    value = t.convert("1.500")
    assert value["scale"] == 3
    assert Decimal(_unscaled(value["value"])).scaleb(-3) == Decimal("1.500")
    with pytest.raises(ValueError, match="NaN"):
        t.convert("NaN")


def test_temporal_types_follow_adaptive_precision() -> None:
    assert pg_column_type(1082).convert("1970-01-11") == 10
    assert pg_column_type(1082).schema["name"] == "io.debezium.time.Date"
    micro_ts = pg_column_type(1114, -1)
    assert micro_ts.schema["name"] == "io.debezium.time.MicroTimestamp"
    assert micro_ts.convert("1970-01-01 00:00:01.5") == 1_500_000
    milli_ts = pg_column_type(1114, 3)
    assert milli_ts.schema["name"] == "io.debezium.time.Timestamp"
    assert milli_ts.convert("1970-01-01 00:00:01.5") == 1500
    assert pg_column_type(1083, -1).convert("01:00:00.000001") == 3_600_000_001
    assert pg_column_type(1083, 0).schema["name"] == "io.debezium.time.Time"
    zoned = pg_column_type(1184, -1)
    assert zoned.schema["name"] == "io.debezium.time.ZonedTimestamp"
    assert zoned.convert("2024-03-01 10:20:30.25+00") == "2024-03-01T10:20:30.250000Z"
    assert zoned.convert("2024-03-01 12:20:30+02") == "2024-03-01T10:20:30.000000Z"
    assert pg_column_type(1184, 0).convert("2024-03-01 10:20:30+00") == "2024-03-01T10:20:30Z"
    assert pg_column_type(1266, -1).convert("10:00:00+01") == "09:00:00.000000Z"
    assert pg_column_type(1186).convert("1 day 01:00:00") == 90_000_000_000


def test_simple_types() -> None:
    assert pg_column_type(16).convert("t") is True
    assert pg_column_type(16).convert("f") is False
    assert pg_column_type(21).schema == {"type": "int16"}
    assert pg_column_type(20).convert("9007199254740993") == 9007199254740993
    assert pg_column_type(701).convert("1.25") == 1.25
    assert pg_column_type(17).convert("\\x0001ff") == base64.b64encode(b"\x00\x01\xff").decode()
    assert pg_column_type(2950).schema["name"] == "io.debezium.data.Uuid"
    assert pg_column_type(3802).schema["name"] == "io.debezium.data.Json"
    assert pg_column_type(3802).convert('{"a": 1}') == '{"a": 1}'
    assert pg_column_type(1043).unavailable == UNAVAILABLE_VALUE
    assert pg_column_type(99999).schema == {"type": "string"}


def test_arrays_of_simple_types() -> None:
    ints = pg_column_type(1007)
    assert ints.schema == {"type": "array", "items": {"type": "int32", "optional": True}}
    assert ints.convert("{1,NULL,3}") == [1, None, 3]
    texts = pg_column_type(1009)
    assert texts.convert('{"a b","c\\"d",NULL,"NULL",e}') == ["a b", 'c"d', None, "NULL", "e"]
    assert texts.convert("{}") == []
    assert parse_pg_array('{"",x}') == ["", "x"]
    with pytest.raises(ValueError, match="multi-dimensional"):
        ints.convert("{{1,2},{3,4}}")
