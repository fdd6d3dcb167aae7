"""A hand-made schema shaped like what Django's SQLite backend creates."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from cdc.sources.sqlite import triggers
from cdc.sources.sqlite.triggers import Column

DDL = [
    'CREATE TABLE "shop_product" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT,'
    ' "name" varchar(100) NOT NULL, "price" decimal NOT NULL, "active" bool NOT NULL,'
    ' "created_at" datetime NOT NULL, "picture" BLOB NULL, "attrs" text NULL)',
    'CREATE TABLE "shop_note" ("id" integer NOT NULL PRIMARY KEY, "body" text NOT NULL)',
    'CREATE TABLE "shop_log" ("line" text NOT NULL)',
]

KINDS: dict[str, dict[str, Column]] = {
    "shop_product": {
        "id": Column("id", "bigint"),
        "price": Column("price", "decimal", scale=2, precision=10),
        "active": Column("active", "boolean"),
        "created_at": Column("created_at", "datetime"),
        "picture": Column("picture", "binary"),
        "attrs": Column("attrs", "json"),
    }
}


def connect(path: Path | str) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    return conn


def create(path: Path | str, capture: tuple[str, ...] = ("shop_product", "shop_note")) -> None:
    conn = connect(path)
    for sql in DDL:
        conn.execute(sql)
    tables = [triggers.introspect(conn, t, KINDS.get(t)) for t in capture]
    triggers.install(conn, tables)
    conn.close()


def changelog(conn: sqlite3.Connection) -> list[tuple[object, ...]]:
    return conn.execute(
        'SELECT id, txid, "table", op, before, after FROM strangler_changelog ORDER BY id'
    ).fetchall()
