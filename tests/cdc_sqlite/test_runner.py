from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from cdc.errors import ConfigError, SourceError
from cdc.offsets import MemoryOffsetStore
from cdc.sources.sqlite.runner import (
    SqliteCapture,
    capture_for_plan,
    database_url,
    sqlite_config,
    status_for_plan,
)
from tests.cdc_sqlite.schema import connect, create
from tests.cdc_sqlite.shop import Events

PLAN: dict[str, Any] = {
    "kafka": {"bootstrap_servers": "embedded", "topic_prefix": "shop"},
    "services": {"n": {"data": {"tables": {"shop_note": "note"}}}},
}


def test_config_takes_the_plan_and_a_sqlite_url(tmp_path: Path) -> None:
    env = {"DATABASE_URL": "sqlite:///var/monolith.sqlite3"}
    config = sqlite_config(PLAN, env, base_dir=tmp_path)
    assert config.database_url == "sqlite:///var/monolith.sqlite3"
    assert config.tables == ("public.shop_note",) and config.embedded_kafka
    assert database_url({}, {}) == "sqlite:///var/monolith.sqlite3"  # the monolith's default
    with pytest.raises(ConfigError, match="not a SQLite"):
        sqlite_config(PLAN, {"DATABASE_URL": "postgresql://db/shop"})
    with pytest.raises(ConfigError, match=r"cdc\.snapshot_mode"):
        sqlite_config({**PLAN, "cdc": {"snapshot_mode": "never"}}, env)
    with pytest.raises(ConfigError, match=r"cdc\.source"):
        sqlite_config({**PLAN, "cdc": {"source": "postgres"}}, env)


def _capture(tmp_path: Path, bootstrap: str, tables: dict[str, str]) -> SqliteCapture:
    plan = {
        "kafka": {"bootstrap_servers": bootstrap, "topic_prefix": f"r{tmp_path.name[-6:]}"},
        "cdc": {"http": {"port": 0}, "state_dir": str(tmp_path / "state"),
                "heartbeat_interval_s": 0.5},
        "services": {"n": {"data": {"tables": tables}}},
    }
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'db'}"}
    return SqliteCapture(sqlite_config(plan, env), offsets=MemoryOffsetStore())


@pytest.mark.kafka
def test_runner_relays_and_serves_health_metrics_and_status(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    create(tmp_path / "db")
    conn = connect(tmp_path / "db")
    conn.execute("INSERT INTO shop_note VALUES (1, 'before start')")
    capture = _capture(tmp_path, kafka_bootstrap, {"shop_note": "note"})
    prefix = capture.config.topic_prefix
    events = Events(kafka_bootstrap, [f"{prefix}.main.shop_note"])
    thread = threading.Thread(target=capture.run)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while capture.http_port is None or capture.status()["state"] != "streaming":
            assert time.monotonic() < deadline and thread.is_alive()
            time.sleep(0.05)
        conn.execute("INSERT INTO shop_note VALUES (2, 'after start')")
        events.poll_until(lambda e: len(e.changes()) >= 2, what="snapshot + insert")
        assert [c["op"] for c in events.changes()] == ["r", "c"]
        base = f"http://127.0.0.1:{capture.http_port}"
        assert httpx.get(f"{base}/healthz").json() == {"ok": True}
        assert 'cdc_events_total{op="c"} 1.0' in httpx.get(f"{base}/metrics").text
        status = httpx.get(f"{base}/status").json()
        assert status["connector"] == "sqlite" and status["offset"] == 2
        assert json.loads((tmp_path / "state" / "status.json").read_text())["state"] == "streaming"
    finally:
        capture.stop()
        thread.join(30)
    assert not thread.is_alive()
    assert capture.status()["state"] == "stopped"
    events.close()


@pytest.mark.kafka
def test_runner_refuses_plan_tables_without_capture(tmp_path: Path, kafka_bootstrap: str) -> None:
    create(tmp_path / "db")
    capture = _capture(tmp_path, kafka_bootstrap, {"shop_note": "n", "shop_log": "l"})
    with pytest.raises(SourceError, match="capture is not installed for shop_log"):
        capture.run()
    assert capture.status()["state"] == "failed"


def test_plan_factory_picks_sqlite_only_for_a_sqlite_database(tmp_path: Path) -> None:
    create(tmp_path / "db")
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        "kafka: {bootstrap_servers: embedded, topic_prefix: shop}\n"
        "services:\n  n:\n    data: {tables: {shop_note: note}}\n"
    )
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'db'}"}
    capture = capture_for_plan(plan, env, serve_http=False)
    assert isinstance(capture, SqliteCapture)
    assert capture_for_plan(plan, {"DATABASE_URL": "postgresql://h/db"}) is None
    status = status_for_plan(plan, env)
    assert status is not None
    assert status["offset"] is None and status["tables"] == ["shop_note", "shop_product"]
    assert status["runner_state"] == "unknown (no status file)"
    with pytest.raises(ConfigError, match="not found"):
        capture_for_plan(tmp_path / "missing.yaml", env)
