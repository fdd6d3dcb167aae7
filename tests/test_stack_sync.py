"""strangler_proxy/stack_sync.py: has the service applied the initial CDC snapshot?"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from strangler_proxy.stack_sync import (
    SyncProgress,
    SyncTimeout,
    both,
    count_rows,
    counts_progress,
    position_progress,
    wait_in_sync,
)

RELAY = {"connector": "sqlite", "state": "streaming", "offset": 440}


def test_positions_the_service_reached_the_relays_offset() -> None:
    assert position_progress(RELAY, {"source_position": "440:440"}) == SyncProgress(
        True, "service at change 440 of 440")
    assert position_progress(RELAY, {"source_position": "12:12"}) == SyncProgress(
        False, "service at change 12 of 440")
    assert position_progress(RELAY, {"source_position": None}) == SyncProgress(
        False, "service has applied nothing yet (relay at 440)")
    assert position_progress(RELAY, None) is not None and not position_progress(RELAY, None).done
    snapshotting = {**RELAY, "state": "snapshot"}
    assert position_progress(snapshotting, {"source_position": "440:440"}) == SyncProgress(
        False, "CDC relay snapshot")


def test_positions_do_not_apply_to_other_sources() -> None:
    assert position_progress(None, {"source_position": "1:1"}) is None
    assert position_progress({"connector": "postgresql", "state": "streaming"}, {}) is None


def _db(path: Path, table: str, rows: int) -> str:
    with sqlite3.connect(path) as conn:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {table} (id INTEGER PRIMARY KEY)")
        conn.executemany(f"INSERT INTO {table} DEFAULT VALUES", [()] * rows)
    return f"sqlite:///{path}"


def test_counts_on_real_files_with_a_missing_table_as_zero(tmp_path: Path) -> None:
    mono = _db(tmp_path / "m.sqlite3", "accounts_customer", 3)
    svc = _db(tmp_path / "s.sqlite3", "customer", 3)
    assert count_rows(svc, ["customer", "notification"]) == [3, 0]
    assert counts_progress(mono, svc, {"accounts_customer": "customer"}) == SyncProgress(
        True, "accounts_customer 3/3")
    assert counts_progress(mono, svc, {"public.accounts_customer": "customer",
                                       "accounts_customer": "notification"}) == SyncProgress(
        False, "public.accounts_customer 3/3, accounts_customer 0/3")
    _db(tmp_path / "s.sqlite3", "customer", 2)  # rows of the service's own, after a cutover
    assert counts_progress(mono, svc, {"accounts_customer": "customer"}).done


def test_both_position_and_counts_must_be_done() -> None:
    at, rows = SyncProgress(True, "service at change 9 of 9"), SyncProgress(False, "t 1/5")
    assert both(at, rows) == SyncProgress(False, "service at change 9 of 9; rows t 1/5")
    assert both(at, SyncProgress(True, "t 5/5")).done
    assert both(None, rows) == rows


def test_waits_until_caught_up_reporting_each_new_state_once(tmp_path: Path) -> None:
    mono = _db(tmp_path / "m.sqlite3", "t", 5)
    svc = _db(tmp_path / "s.sqlite3", "t", 1)
    seen: list[str] = []

    def catch_up() -> None:
        time.sleep(1.2)
        _db(tmp_path / "s.sqlite3", "t", 4)

    thread = threading.Thread(target=catch_up)
    thread.start()
    done = wait_in_sync(lambda: counts_progress(mono, svc, {"t": "t"}), timeout_s=20,
                        on_progress=lambda p: seen.append(p.detail))
    thread.join()
    assert done == SyncProgress(True, "t 5/5")
    assert seen == ["t 1/5"]


def test_gives_up_with_the_last_state_or_when_a_component_dies() -> None:
    behind = SyncProgress(False, "service at change 2 of 9")
    with pytest.raises(SyncTimeout, match=r"not caught up after 1 s: service at change 2 of 9"):
        wait_in_sync(lambda: behind, timeout_s=1, on_progress=lambda p: None)
    with pytest.raises(SyncTimeout, match="a component stopped"):
        wait_in_sync(lambda: behind, timeout_s=30, on_progress=lambda p: None,
                     alive=lambda: False)
