"""Debezium's documented PostgreSQL example events (tests/cdc/fixtures/debezium, see
EDITS.md there for provenance) and the ``customers`` table they describe."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cdc.events import Column, Connector, Table
from cdc.types import pg_column_type

FIXTURES = Path(__file__).parent / "fixtures" / "debezium"

CUSTOMERS = Table(
    "public",
    "customers",
    (
        Column("id", pg_column_type(23), optional=False),
        Column("first_name", pg_column_type(1043), optional=False),
        Column("last_name", pg_column_type(1043), optional=False),
        Column("email", pg_column_type(1043), optional=False),
    ),
    key=("id",),
)
CONNECTOR = Connector("postgresql", name="PostgreSQL_server", db="postgres")


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    return type(value).__name__
