from __future__ import annotations

import sqlite3
import threading
from itertools import groupby
from pathlib import Path

import pytest

from cdc.sources.sqlite import txids
from tests.cdc_sqlite.schema import changelog, connect, create


@pytest.mark.parametrize(
    ("sql", "write"),
    [
        ('INSERT INTO "a" VALUES (1)', True),
        ("  update a set x=1", True),
        ("-- c\n/* d */ DELETE FROM a", True),
        ("REPLACE INTO a VALUES (1)", True),
        ("WITH x AS (SELECT 1) INSERT INTO a SELECT * FROM x", True),
        ("WITH x AS (SELECT 1) SELECT * FROM x", False),
        ('SELECT "updated" FROM a', False),
        ("BEGIN", False),
        ("", False),
    ],
)
def test_is_write(sql: str, write: bool) -> None:
    assert txids.is_write(sql) is write


def test_each_transaction_gets_its_own_id(tmp_path: Path) -> None:
    create(tmp_path / "db")
    conn = connect(tmp_path / "db")
    with txids.capture_transaction(conn) as first:
        conn.execute("INSERT INTO shop_note VALUES (1, 'a')")
        conn.execute("INSERT INTO shop_note VALUES (2, 'b')")
    with pytest.raises(RuntimeError), txids.capture_transaction(conn):
        conn.execute("INSERT INTO shop_note VALUES (3, 'rolled back')")
        raise RuntimeError
    with txids.capture_transaction(conn) as second:
        conn.execute("UPDATE shop_note SET body = 'c'")
    rows = changelog(conn)
    assert [r[1] for r in rows] == [first, first, second, second]
    assert first is not None and second == first + 1


def test_bump_without_capture_installed_is_a_no_op() -> None:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    assert txids.bump(conn) is None


def test_concurrent_writers_get_contiguous_distinct_ids(tmp_path: Path) -> None:
    create(tmp_path / "db")

    def writer(base: int) -> None:
        conn = connect(tmp_path / "db")
        for i in range(30):
            with txids.capture_transaction(conn):
                for j in range(3):
                    conn.execute("INSERT INTO shop_note VALUES (?, 'x')", (base + i * 3 + j,))
        conn.close()

    threads = [threading.Thread(target=writer, args=(n * 1000,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows = changelog(connect(tmp_path / "db"))
    assert len(rows) == 360
    groups = [(txid, len(list(g))) for txid, g in groupby(r[1] for r in rows)]
    assert all(size == 3 for _, size in groups)
    assert [t for t, _ in groups] == sorted({t for t, _ in groups})
