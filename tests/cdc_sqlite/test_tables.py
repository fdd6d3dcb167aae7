"""The SQLite column types write what the PostgreSQL source writes for the same field."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from cdc.sources.sqlite.tables import column_type, event_table, pg_type
from cdc.sources.sqlite.triggers import CapturedTable, Column
from cdc.types import pg_column_type


@pytest.mark.parametrize(
    ("column", "sqlite_value", "pg_oid", "pg_typmod", "pg_text"),
    [
        (Column("p", "decimal", 2, 10), Decimal("19.99"), 1700, (10 << 16 | 2) + 4, "19.99"),
        (Column("p", "decimal", 2, 10), 10, 1700, (10 << 16 | 2) + 4, "10.00"),
        (Column("b", "boolean"), 1, 16, -1, "t"),
        (Column("b", "boolean"), 0, 16, -1, "f"),
        (Column("t", "datetime"), "2024-05-01 10:00:00.25", 1184, -1,
         "2024-05-01 10:00:00.25+00"),
        (Column("t", "timestamp"), "2024-05-01 10:00:00", 1114, -1, "2024-05-01 10:00:00"),
        (Column("d", "date"), "2024-05-01", 1082, -1, "2024-05-01"),
        (Column("t", "time"), "10:00:00.5", 1083, -1, "10:00:00.5"),
        (Column("u", "uuid"), "12345678123456781234567812345678", 2950, -1,
         "12345678-1234-5678-1234-567812345678"),
        (Column("j", "json"), '{"bb": 1, "a": 2}', 3802, -1, '{"a": 2, "bb": 1}'),
        (Column("x", "binary"), {"$blob": "CAFE"}, 17, -1, "\\xcafe"),
        (Column("x", "duration"), 93_784_000_005, 1186, -1, "1 day 02:03:04.000005"),
        (Column("x", "duration"), -3_600_000_000, 1186, -1, "-01:00:00"),
        (Column("i", "integer"), 5, 23, -1, "5"),
        (Column("i", "bigint"), 5, 20, -1, "5"),
        (Column("s", "text"), "hé", 25, -1, "hé"),
        (Column("x", declared="varchar(10)"), "a", 25, -1, "a"),
    ],
)
def test_payload_equals_the_postgres_sources(
    column: Column, sqlite_value: Any, pg_oid: int, pg_typmod: int, pg_text: str
) -> None:
    assert pg_type(column) == (pg_oid, pg_typmod)
    ours, theirs = column_type(column), pg_column_type(pg_oid, pg_typmod)
    assert ours.schema == theirs.schema
    assert ours.convert(sqlite_value) == theirs.convert(pg_text)


def test_decimal_without_precision_is_variable_scale() -> None:
    assert pg_type(Column("p", "decimal", 2)) == (1700, -1)
    converted = column_type(Column("p", "decimal", 2)).convert(Decimal("1.5"))
    assert converted == pg_column_type(1700, -1).convert("1.50")


def test_event_table_keeps_key_and_nullability() -> None:
    captured = CapturedTable(
        "shop_note",
        (Column("id", "bigint", nullable=True), Column("body", "text", nullable=False),
         Column("note", "text")),
        ("id",),
    )
    table = event_table(captured)
    assert table.qualified == "main.shop_note" and table.key == ("id",)
    assert event_table(captured, "public").qualified == "public.shop_note"
    assert [(c.name, c.optional) for c in table.columns] == [
        ("id", False), ("body", False), ("note", True)
    ]


def test_postgres_boolean_text_forms_both_convert() -> None:
    """pgoutput sends t/f, the PG snapshot's ``::text`` reads true/false; SQLite sends t/f."""
    boolean = pg_column_type(16)
    assert [boolean.convert(v) for v in ("t", "true", "f", "false")] == [True, True, False, False]
