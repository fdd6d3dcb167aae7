from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from cdc.errors import TableNotCapturable
from cdc.sources.sqlite import triggers
from cdc.sources.sqlite.triggers import CapturedTable, Column
from tests.cdc_sqlite.schema import changelog, connect, create


@pytest.fixture
def db(tmp_path: Path) -> sqlite3.Connection:
    path = tmp_path / "shop.sqlite3"
    create(path)
    return connect(path)


def _objects(conn: sqlite3.Connection) -> set[str]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE name LIKE 'strangler%'")
    return {r[0] for r in rows}


def test_insert_update_delete_write_full_images(db: sqlite3.Connection) -> None:
    db.execute(
        "INSERT INTO shop_product (name, price, active, created_at, attrs)"
        " VALUES ('mug', 19.99, 1, '2024-05-01 10:00:00.5', '{\"b\": 1}')"
    )
    db.execute("UPDATE shop_product SET price = 17.5, active = 0 WHERE id = 1")
    db.execute("DELETE FROM shop_product WHERE id = 1")
    rows = changelog(db)
    assert [(r[2], r[3]) for r in rows] == [
        ("shop_product", "c"), ("shop_product", "u"), ("shop_product", "d")
    ]
    created = json.loads(rows[0][5])
    assert created == {
        "id": 1, "name": "mug", "price": 19.99, "active": 1,
        "created_at": "2024-05-01 10:00:00.5", "picture": None, "attrs": '{"b": 1}',
    }
    assert rows[0][4] is None
    assert json.loads(rows[1][4]) == created
    assert json.loads(rows[1][5])["price"] == 17.5
    assert json.loads(rows[2][4])["active"] == 0 and rows[2][5] is None
    assert [r[0] for r in rows] == sorted(r[0] for r in rows)


def test_blobs_are_encoded_in_any_column_and_never_break_the_write(
    db: sqlite3.Connection,
) -> None:
    db.execute(
        "INSERT INTO shop_product (name, price, active, created_at, picture)"
        " VALUES (x'00ff', 1, 1, '2024-01-01', x'cafe00')"
    )
    after = json.loads(changelog(db)[0][5])
    assert after["picture"] == {"$blob": "CAFE00"}
    assert after["name"] == {"$blob": "00FF"}


def test_rolled_back_transaction_leaves_no_changes(db: sqlite3.Connection) -> None:
    db.execute("BEGIN")
    db.execute("INSERT INTO shop_note (id, body) VALUES (1, 'x')")
    db.execute("ROLLBACK")
    assert changelog(db) == []


def test_uncaptured_table_writes_nothing(db: sqlite3.Connection) -> None:
    db.execute("INSERT INTO shop_log (line) VALUES ('hello')")
    assert changelog(db) == []


def test_table_without_primary_key_is_refused(db: sqlite3.Connection) -> None:
    with pytest.raises(TableNotCapturable, match="no primary key"):
        triggers.introspect(db, "shop_log")
    with pytest.raises(TableNotCapturable, match="does not exist"):
        triggers.introspect(db, "nope")


def test_install_is_idempotent_and_keeps_pending_changes(db: sqlite3.Connection) -> None:
    db.execute("INSERT INTO shop_note (id, body) VALUES (1, 'x')")
    tables = [triggers.introspect(db, "shop_note")]
    triggers.install(db, tables)
    triggers.install(db, tables)
    db.execute("INSERT INTO shop_note (id, body) VALUES (2, 'y')")
    assert [r[0] for r in changelog(db)] == [1, 2]
    assert triggers.verify(db, tables) == []


def test_verify_sees_triggers_dropped_by_a_table_rebuild(db: sqlite3.Connection) -> None:
    tables = [triggers.introspect(db, "shop_note")]
    # what Django's SQLite schema editor does to alter a table
    db.executescript(
        'CREATE TABLE "new__shop_note" ("id" integer NOT NULL PRIMARY KEY, "body" text NOT NULL,'
        ' "title" text NULL);'
        'INSERT INTO "new__shop_note" ("id", "body") SELECT "id", "body" FROM "shop_note";'
        'DROP TABLE "shop_note"; ALTER TABLE "new__shop_note" RENAME TO "shop_note";'
    )
    assert any("missing" in p for p in triggers.verify(db, tables))
    db.execute("INSERT INTO shop_note (id, body) VALUES (1, 'lost?')")
    assert changelog(db) == []
    rebuilt = [triggers.introspect(db, "shop_note")]
    triggers.install(db, rebuilt)
    assert triggers.verify(db, rebuilt) == []
    db.execute("INSERT INTO shop_note (id, body, title) VALUES (2, 'b', 't')")
    assert json.loads(changelog(db)[0][5]) == {"id": 2, "body": "b", "title": "t"}


def test_verify_sees_outdated_triggers_after_a_column_is_added(db: sqlite3.Connection) -> None:
    db.execute('ALTER TABLE "shop_note" ADD COLUMN "extra" text NULL')
    problems = triggers.verify(db, [triggers.introspect(db, "shop_note")])
    assert problems and all("outdated" in p for p in problems)


def test_uninstall_removes_everything_and_writes_keep_working(db: sqlite3.Connection) -> None:
    assert {"strangler_changelog", "strangler_txn", "strangler_capture"} <= _objects(db)
    dropped = triggers.uninstall(db)
    assert len(dropped) == 6
    assert _objects(db) == set()
    db.execute("INSERT INTO shop_note (id, body) VALUES (9, 'fine')")
    assert triggers.installed_tables(db) == {}
    assert triggers.uninstall(db) == []


def test_metadata_round_trips_through_the_database(db: sqlite3.Connection) -> None:
    installed = triggers.installed_tables(db)
    assert set(installed) == {"shop_product", "shop_note"}
    product = installed["shop_product"]
    assert product.primary_key == ("id",)
    assert product.column("price") == Column("price", "decimal", 2, 10, False, "decimal")
    assert product.column("picture").nullable


def test_identifiers_are_quoted() -> None:
    table = CapturedTable('we"ird', (Column('i"d'), Column("v")), ('i"d',))
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute('CREATE TABLE "we""ird" ("i""d" integer primary key, v)')
    triggers.install(conn, [table])
    conn.execute('INSERT INTO "we""ird" VALUES (1, 2)')
    after = conn.execute("SELECT after FROM strangler_changelog").fetchone()[0]
    assert json.loads(after) == {'i"d': 1, "v": 2}
