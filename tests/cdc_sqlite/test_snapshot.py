from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from cdc.errors import ConfigError, SourceError
from cdc.events import RecordKind
from cdc.offsets import MemoryOffsetStore
from cdc.sources.sqlite import txids
from cdc.sources.sqlite.snapshot import Progress, snapshot_flags
from cdc.sources.sqlite.source import SqliteSource, SqliteSourceConfig, database_path
from tests.cdc_sqlite.fakes import FakePublisher
from tests.cdc_sqlite.schema import changelog, connect, create


def source(path: Path, mode: str = "initial", **kw: Any) -> tuple[SqliteSource, FakePublisher]:
    publisher = FakePublisher()
    config = SqliteSourceConfig(database=path, topic_prefix="shop", snapshot_mode=mode)
    return SqliteSource(config, publisher, offsets=kw.get("offsets") or MemoryOffsetStore(),
                        progress=kw.get("progress")), publisher


def replay(publisher: FakePublisher, table: str) -> dict[Any, dict[str, Any]]:
    """What a sink ends with: apply events in order by key."""
    rows: dict[Any, dict[str, Any]] = {}
    for record in publisher.records:
        if record.kind is not RecordKind.CHANGE or record.value is None:
            continue
        if record.value["source"]["table"] != table:
            continue
        key = record.key["id"]  # type: ignore[index]
        if record.value["op"] == "d":
            rows.pop(key, None)
        else:
            rows[key] = record.value["after"]
    return rows


def table_rows(conn: sqlite3.Connection) -> dict[Any, dict[str, Any]]:
    return {i: {"id": i, "body": b} for i, b in conn.execute("SELECT id, body FROM shop_note")}


def test_snapshot_flags() -> None:
    assert list(snapshot_flags([2, 0, 3])) == [
        "first", "last_in_data_collection", "true", "true", "last"
    ]
    assert list(snapshot_flags([1])) == ["last"]


def test_initial_snapshot_then_stream(tmp_path: Path) -> None:
    path = tmp_path / "db"
    create(path)
    conn = connect(path)
    conn.execute("INSERT INTO shop_note VALUES (1, 'before capture started')")
    conn.execute("INSERT INTO shop_note VALUES (2, 'x')")
    progress: list[Progress] = []
    src, publisher = source(path, progress=progress.append)
    assert src.prepare() == "snapshot consistent with changelog id 2"
    reads = publisher.changes()
    assert [(e["op"], e["after"]["id"], e["source"]["snapshot"]) for e in reads] == [
        ("r", 1, "first"), ("r", 2, "last")
    ]
    assert all(e["source"]["lsn"] == 2 for e in reads)
    assert changelog(conn) == []  # contained in the snapshot, pruned
    notes = [p for p in progress if p.table == "shop_note"]
    assert notes[-1].rows == notes[-1].total == 2
    conn.execute("UPDATE shop_note SET body = 'y' WHERE id = 2")
    assert src.relay.step() == 1
    assert publisher.changes()[-1]["source"]["lsn"] == 3
    assert src.prepare() == "resuming after changelog id 3"


def test_snapshot_is_consistent_under_concurrent_writes(tmp_path: Path) -> None:
    path = tmp_path / "db"
    create(path)
    conn = connect(path)
    for i in range(2000):
        conn.execute("INSERT INTO shop_note VALUES (?, 'seed')", (i,))
    stop = threading.Event()

    def writer() -> None:
        w = connect(path)
        n = 0
        while not stop.is_set():
            with txids.capture_transaction(w):
                w.execute("UPDATE shop_note SET body = ? WHERE id = ?", (f"v{n}", n % 2000))
                w.execute("INSERT INTO shop_note VALUES (?, 'new')", (10_000 + n,))
                if n % 3 == 0:
                    w.execute("DELETE FROM shop_note WHERE id = ?", (n % 2000 + 1,))
            n += 1
            time.sleep(0.001)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        src, publisher = source(path)
        src.prepare()
        for _ in range(20):
            src.relay.step()
    finally:
        stop.set()
        thread.join()
    while src.relay.step():
        pass
    ops = {e["op"] for e in publisher.changes()}
    assert {"r", "c", "u", "d"} <= ops
    assert replay(publisher, "shop_note") == table_rows(conn)


def test_no_data_starts_at_the_current_position(tmp_path: Path) -> None:
    path = tmp_path / "db"
    create(path)
    conn = connect(path)
    conn.execute("INSERT INTO shop_note VALUES (1, 'old')")
    src, publisher = source(path, "no_data")
    assert src.prepare() == "streaming from changelog id 1 without a snapshot"
    conn.execute("INSERT INTO shop_note VALUES (2, 'new')")
    src.relay.step()
    assert [e["after"]["body"] for e in publisher.changes()] == ["new"]


def test_offset_behind_a_pruned_changelog_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "db"
    create(path)
    conn = connect(path)
    offsets = MemoryOffsetStore()
    src, _ = source(path, offsets=offsets)
    src.prepare()
    for i in range(5):
        conn.execute("INSERT INTO shop_note VALUES (?, 'x')", (i,))
    conn.execute("DELETE FROM strangler_changelog WHERE id <= 3")  # another relay pruned
    with pytest.raises(SourceError, match="pruned past the recorded offset 0"):
        src.prepare()
    src.close()
    healing, publisher = source(path, "when_needed", offsets=offsets)
    assert healing.prepare().startswith("snapshot consistent with changelog id")
    assert len(replay(publisher, "shop_note")) == 5


def test_source_without_capture_installed_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plain.db"
    sqlite3.connect(path).close()
    src, _ = source(path)
    with pytest.raises(SourceError, match="no capture installed"):
        src.prepare()
    with pytest.raises(SourceError, match="does not exist"):
        source(tmp_path / "missing.db")


def test_snapshot_of_one_table_leaves_the_offset(tmp_path: Path) -> None:
    path = tmp_path / "db"
    create(path)
    conn = connect(path)
    conn.execute("INSERT INTO shop_note VALUES (1, 'a')")
    offsets = MemoryOffsetStore()
    src, _ = source(path, offsets=offsets)
    src.prepare()
    conn.execute("INSERT INTO shop_note VALUES (2, 'b')")
    src.snapshot(["shop_note"])
    assert offsets.load(src.config.offset_name) == {"changelog_id": 1, "snapshot": "completed"}
    assert len(changelog(conn)) == 1
    with pytest.raises(SourceError, match="not captured"):
        src.snapshot(["shop_log"])


def test_config_from_mapping() -> None:
    config = SqliteSourceConfig.from_mapping(
        {"database_url": "sqlite:///var/m.sqlite3", "topic_prefix": "shop"}
    )
    assert config.database == Path("var/m.sqlite3")
    assert database_path("sqlite:////abs/x.db") == Path("/abs/x.db")
    with pytest.raises(ConfigError, match="unknown keys"):
        SqliteSourceConfig.from_mapping({"database": "x", "topic_prefix": "p", "bogus": 1})
    with pytest.raises(ConfigError, match="snapshot_mode"):
        SqliteSourceConfig(database=Path("x"), topic_prefix="p", snapshot_mode="always")
    with pytest.raises(ConfigError, match="not a SQLite"):
        database_path("postgresql://x/y")


def test_a_second_relay_on_the_same_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "db"
    create(path)
    first, _ = source(path)
    first.prepare()
    second, _ = source(path)
    with pytest.raises(SourceError, match=r"another relay is running .*pid \d+"):
        second.prepare()
    first.close()
    assert second.prepare().startswith("snapshot consistent")  # own offsets store: snapshots
    second.close()


def test_status_without_capture_installed_and_lag_while_the_relay_is_down(
    tmp_path: Path,
) -> None:
    plain = tmp_path / "plain.db"
    sqlite3.connect(plain).close()
    src, _ = source(plain)
    assert src.status()["installed"] is False and src.status()["lag_s"] == 0.0
    path = tmp_path / "db"
    create(path)
    conn = connect(path)
    src, _ = source(path)
    src.prepare()
    conn.execute(
        'INSERT INTO strangler_changelog (txid, "table", op, after, ts) VALUES (0, ?, ?, ?,'
        " CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) - 5000)",
        ("shop_note", "c", '{"id": 1, "body": "x"}'),
    )
    status = src.status()
    assert status["lag_events"] == 1 and 4.5 < status["lag_s"] < 60
