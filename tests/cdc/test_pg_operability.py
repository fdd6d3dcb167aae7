"""The running capture: /healthz, /metrics and /status, heartbeats on an idle database,
and the slot moving forward while nothing is captured."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

from cdc.runner import PgCapture
from tests.cdc.pg_support import TopicReader, execute, make_config, query, running


def _get(port: int, path: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
        return resp.status, resp.read()


def test_health_metrics_status_and_heartbeats(
    pg_database: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    execute(pg_database, "CREATE TABLE t (id int PRIMARY KEY)", "CREATE TABLE other (id int)")
    cfg = make_config(pg_database, kafka_bootstrap, ("public.t",), tmp_path,
                      heartbeat_interval_s=0.3)
    beats = TopicReader(kafka_bootstrap, f"__debezium-heartbeat.{cfg.topic_prefix}")
    try:
        with running(PgCapture(cfg)) as capture:
            assert capture.http_port
            execute(pg_database, "INSERT INTO t VALUES (1)")
            start_flush = None
            for _ in range(3):  # writes the slot does not capture still generate WAL
                execute(pg_database, "INSERT INTO other SELECT generate_series(1, 1000)")
            records = beats.read_until(lambda r: len(r) >= 2)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                row = query(pg_database, "SELECT pg_current_wal_insert_lsn() - confirmed_flush_lsn,"
                                         " confirmed_flush_lsn - '0/0'::pg_lsn FROM "
                                         f"pg_replication_slots WHERE slot_name = '{cfg.slot}'")
                start_flush = start_flush or row[0][1]
                if row[0][0] < 1000:
                    break
                time.sleep(0.2)
            assert row[0][0] < 1000, "idle slot did not follow the WAL"
            time.sleep(2.5)  # one status period
            status, body = _get(capture.http_port, "/healthz")
            assert status == 200 and json.loads(body) == {"ok": True}
            _, metrics = _get(capture.http_port, "/metrics")
            text = metrics.decode()
            assert 'cdc_events_total{op="c"} 1.0' in text
            assert "cdc_heartbeats_total" in text and "cdc_slot_lag_bytes" in text
            assert "cdc_streaming 1.0" in text
            _, doc = _get(capture.http_port, "/status")
            state = json.loads(doc)
            assert state["state"] == "streaming" and state["acked_lsn"]
            assert state["last_event"]["op"] == "c"
    finally:
        beats.close()
    key, value, _ = records[0]
    assert key == {"serverName": cfg.topic_prefix} and isinstance(value["ts_ms"], int)
