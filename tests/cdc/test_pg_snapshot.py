"""Snapshots: pure decisions, and initial snapshot + concurrent writes on the real
server — a consumer of the topic reconstructs exactly the source table."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import psycopg2
import pytest

from cdc.config import pg_dsn
from cdc.errors import SlotError
from cdc.runner import PgCapture
from cdc.sources.postgres.snapshot import progress, snapshot_marker, startup_plan
from tests.cdc.pg_support import TopicReader, execute, make_config, query, reconstruct, running


def test_startup_plan_per_mode() -> None:
    done = {"snapshot_completed": True}
    assert startup_plan("initial", None, False).snapshot
    fresh = startup_plan("initial", None, True)
    assert fresh.drop_slot and fresh.create_slot and fresh.snapshot  # half-done snapshot
    assert not startup_plan("initial", done, True).create_slot
    with pytest.raises(SlotError, match="slot is gone"):
        startup_plan("initial", done, False)
    lost = startup_plan("when_needed", done, False)
    assert lost.create_slot and lost.snapshot and "lost" in lost.reason
    assert not startup_plan("when_needed", done, True).snapshot
    no_data = startup_plan("no_data", None, False)
    assert no_data.create_slot and not no_data.snapshot
    assert not startup_plan("no_data", None, True).create_slot


def test_snapshot_markers_and_progress() -> None:
    assert snapshot_marker(True, False, True, False) == "first"
    assert snapshot_marker(False, False, True, False) == "first_in_data_collection"
    assert snapshot_marker(False, False, False, False) == "true"
    assert snapshot_marker(False, False, False, True) == "last_in_data_collection"
    assert snapshot_marker(False, True, False, True) == "last"
    p = progress("public.t", 250, 1000, 5.0)
    assert (p.rows_per_s, p.eta_s, p.percent) == (50.0, 15.0, 25.0)
    assert progress("public.t", 0, 0, 0.0).eta_s is None


def _writer(url: str, stop: threading.Event, first_id: int) -> None:
    conn = psycopg2.connect(pg_dsn(url))
    conn.autocommit = True
    rng = random.Random(7)
    next_id = first_id
    with conn.cursor() as cur:
        while not stop.is_set():
            action = rng.random()
            if action < 0.5:
                cur.execute("INSERT INTO stock (id, qty, label) VALUES (%s, %s, %s)",
                            (next_id, rng.randint(0, 99), f"new {next_id}"))
                next_id += 1
            elif action < 0.8:
                cur.execute("UPDATE stock SET qty = qty + 1, label = label || '+' "
                            "WHERE id = %s", (rng.randint(1, next_id),))
            elif action < 0.9:
                cur.execute("DELETE FROM stock WHERE id = %s", (rng.randint(1, next_id),))
            else:
                old = rng.randint(1, next_id)
                cur.execute("UPDATE stock SET id = %s WHERE id = %s", (next_id, old))
                next_id += 1
    conn.close()


def test_initial_snapshot_with_concurrent_writes_reconstructs_the_table(
    pg_database: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    execute(
        pg_database,
        "CREATE TABLE stock (id int PRIMARY KEY, qty int NOT NULL, label text)",
        "INSERT INTO stock SELECT g, g % 100, 'row ' || g FROM generate_series(1, 20000) g",
    )
    cfg = make_config(pg_database, kafka_bootstrap, ("public.stock",), tmp_path)
    stop = threading.Event()
    writer = threading.Thread(target=_writer, args=(pg_database, stop, 20001))
    writer.start()
    reader = TopicReader(kafka_bootstrap, f"{cfg.topic_prefix}.public.stock")
    try:
        time.sleep(0.3)
        capture = PgCapture(cfg, serve_http=False)
        with running(capture):
            time.sleep(1.5)
            stop.set()
            writer.join()
            execute(pg_database, "INSERT INTO stock VALUES (-1, 0, 'end marker')")
            records = reader.read_until(
                lambda r: any(k == {"id": -1} for k, _, _ in r), timeout_s=120)
    finally:
        stop.set()
        writer.join()
        reader.close()
    ops = {v["op"] for _, v, _ in records if v}
    assert {"r", "c", "u", "d"} <= ops
    snapshot = [v for _, v, _ in records if v and v["op"] == "r"]
    assert len(snapshot) >= 19000  # whatever the table held at the slot's consistent point
    assert snapshot[0]["source"]["snapshot"] == "first"
    assert snapshot[-1]["source"]["snapshot"] == "last"
    rows = query(pg_database, "SELECT id, qty, label FROM stock")
    expected = {r[0]: {"id": r[0], "qty": r[1], "label": r[2]} for r in rows}
    assert reconstruct(records) == expected


def test_stopping_mid_snapshot_leaves_it_incomplete_and_the_next_run_redoes_it(
    pg_database: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    execute(pg_database, "CREATE TABLE big (id int PRIMARY KEY, pad text NOT NULL)",
            "INSERT INTO big SELECT g, repeat('x', 50) FROM generate_series(1, 60000) g")
    cfg = make_config(pg_database, kafka_bootstrap, ("public.big",), tmp_path)
    first = PgCapture(cfg, serve_http=False)
    thread = threading.Thread(target=first.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        publisher = first._publisher
        if publisher is not None and publisher.delivered > 100:
            break
        time.sleep(0.01)
    first.stop()
    thread.join(60)
    assert not thread.is_alive() and first.status()["state"] == "stopped"
    offsets = first.offsets.load(cfg.offset_name)
    assert not (offsets or {}).get("snapshot_completed")
    reader = TopicReader(kafka_bootstrap, f"{cfg.topic_prefix}.public.big")
    try:
        with running(PgCapture(cfg, serve_http=False)) as second:
            assert second.status()["state"] == "streaming"
            records = reader.read_until(
                lambda r: len({k["id"] for k, v, _ in r if v}) >= 60000, timeout_s=120)
    finally:
        reader.close()
    assert len({k["id"] for k, v, _ in records if v and v["op"] == "r"}) == 60000
    assert (second.offsets.load(cfg.offset_name) or {}).get("snapshot_completed")
