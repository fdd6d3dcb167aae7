from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest

from cdc.errors import DecodeError
from cdc.sources.sqlite.render import (
    jsonb_text,
    kind_for_declared,
    kind_for_django,
    parse_image,
    render_row,
    render_value,
)
from cdc.sources.sqlite.triggers import CapturedTable, Column


def price(raw: str) -> Any:
    image = parse_image('{"price": ' + raw + "}")
    assert image is not None
    return render_value(Column("price", "decimal", 2), image["price"])


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("19.99", "19.99"), ("10", "10.00"), ("0.125", "0.13"), ("0.145", "0.15"),
     ("0.3", "0.30"), ("-7.5", "-7.50"),
     ("1234567890123.45", "1234567890123.45"), ("0.30000000000000004", "0.30")],
)
def test_decimal_is_reformatted_from_the_field_scale(raw: str, expected: str) -> None:
    value = price(raw)
    assert isinstance(value, Decimal) and str(value) == expected


@pytest.mark.parametrize(
    ("column", "raw", "expected"),
    [
        (Column("b", "boolean"), 1, True),
        (Column("b", "boolean"), 0, False),
        (Column("t", "datetime"), "2024-05-01 10:00:00.5",
         dt.datetime(2024, 5, 1, 10, 0, 0, 500000, tzinfo=dt.UTC)),
        (Column("t", "datetime"), "2024-05-01 12:00:00+02:00",
         dt.datetime(2024, 5, 1, 10, tzinfo=dt.UTC)),
        (Column("t", "timestamp"), "2024-05-01 10:00:00", dt.datetime(2024, 5, 1, 10)),
        (Column("d", "date"), "2024-05-01", dt.date(2024, 5, 1)),
        (Column("d", "time"), "10:11:12.000013", dt.time(10, 11, 12, 13)),
        (Column("u", "uuid"), "12345678123456781234567812345678",
         uuid.UUID("12345678-1234-5678-1234-567812345678")),
        (Column("j", "json"), '{"bb": 1, "a": [1, 2.5], "c": "é"}',
         '{"a": [1, 2.5], "c": "é", "bb": 1}'),
        (Column("p", "binary"), {"$blob": "CAFE"}, b"\xca\xfe"),
        (Column("p", "duration"), 90_000_000, dt.timedelta(seconds=90)),
        (Column("i", "integer"), 7, 7),
        (Column("i", "bigint"), Decimal("7.0"), 7),
        (Column("f", "float"), Decimal("2.5"), 2.5),
        (Column("s", "text"), 12, "12"),
        (Column("x"), Decimal("2.5"), 2.5),
        (Column("x", declared="bool"), 1, True),
        (Column("x", declared="decimal(6, 3)"), 2, Decimal("2.000")),
        (Column("x", declared=""), {"$blob": "00"}, b"\x00"),
        (Column("b", "boolean"), None, None),
    ],
)
def test_values_render_as_postgres_holds_them(column: Column, raw: Any, expected: Any) -> None:
    assert render_value(column, raw) == expected


def test_bad_values_raise_decode_error_naming_the_column() -> None:
    with pytest.raises(DecodeError, match="'created_at'"):
        render_value(Column("created_at", "datetime"), "yesterday")
    with pytest.raises(DecodeError, match="not a boolean"):
        render_value(Column("b", "boolean"), 2)
    with pytest.raises(DecodeError, match="not JSON"):
        parse_image("{broken")


def test_render_row_follows_column_order() -> None:
    table = CapturedTable(
        "t", (Column("id", "integer"), Column("ok", "boolean"), Column("n", "text")), ("id",)
    )
    assert render_row(table, {"ok": 1, "id": 3, "n": "a"}) == {"id": 3, "ok": True, "n": "a"}
    assert render_row(table, None) is None


def test_kind_lookups() -> None:
    assert kind_for_django("DecimalField") == "decimal"
    assert kind_for_django("PositiveBigIntegerField") == "bigint"
    assert kind_for_django("AutoField") == "integer"
    assert kind_for_django("MyCustomField") == "auto"
    assert kind_for_declared("varchar(100)") == ("text", None)
    assert kind_for_declared("datetime") == ("datetime", None)
    assert kind_for_declared("integer unsigned") == ("bigint", None)
    assert kind_for_declared("smallint unsigned") == ("smallint", None)
    assert kind_for_declared("NUMERIC(10,2)") == ("decimal", 2)


def test_jsonb_text_matches_postgres_key_order() -> None:
    assert jsonb_text({"aaa": 1, "b": None, "cc": True}) == '{"b": null, "cc": true, "aaa": 1}'
