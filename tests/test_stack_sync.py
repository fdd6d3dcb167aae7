"""strangler_proxy/stack_sync.py: waiting for the initial CDC sync, on real SQLite files."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from strangler_proxy.stack_sync import SyncProgress, SyncTimeout, count_rows, wait_in_sync


def _db(path: Path, table: str, rows: int) -> str:
    with sqlite3.connect(path) as conn:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {table} (id INTEGER PRIMARY KEY)")
        conn.executemany(f"INSERT INTO {table} DEFAULT VALUES", [()] * rows)
    return f"sqlite:///{path}"


def test_counts_with_a_missing_table_as_zero(tmp_path: Path) -> None:
    url = _db(tmp_path / "a.sqlite3", "customer", 3)
    assert count_rows(url, ["customer", "notification"]) == [3, 0]


def test_waits_until_every_table_has_the_monoliths_row_count(tmp_path: Path) -> None:
    mono = _db(tmp_path / "m.sqlite3", "accounts_customer", 5)
    svc = _db(tmp_path / "s.sqlite3", "customer", 1)
    seen: list[str] = []

    def catch_up() -> None:
        time.sleep(0.8)
        _db(tmp_path / "s.sqlite3", "customer", 4)

    thread = threading.Thread(target=catch_up)
    thread.start()
    done = wait_in_sync(mono, svc, {"accounts_customer": "customer"}, timeout_s=20,
                        on_progress=lambda p: seen.append(p.describe()))
    thread.join()
    assert done.done and done.counts == {"accounts_customer": (5, 5)}
    assert seen == ["accounts_customer 1/5"]


def test_gives_up_with_the_counts_or_when_a_component_dies(tmp_path: Path) -> None:
    mono = _db(tmp_path / "m.sqlite3", "t", 2)
    svc = _db(tmp_path / "s.sqlite3", "t", 0)
    with pytest.raises(SyncTimeout, match=r"not caught up after 1 s: t 0/2"):
        wait_in_sync(mono, svc, {"t": "t"}, timeout_s=1, on_progress=lambda p: None)
    with pytest.raises(SyncTimeout, match="a component stopped"):
        wait_in_sync(mono, svc, {"t": "t"}, timeout_s=30, on_progress=lambda p: None,
                     alive=lambda: False)
    assert not SyncProgress({"t": (2, 0)}).done
