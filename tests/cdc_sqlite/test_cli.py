"""`strangle cdc run|status` pick the SQLite source when the monolith's DATABASE_URL is SQLite."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from cdc.sources.sqlite.source import RelayLock
from strangler_proxy.cli import cli
from tests.cdc_sqlite.schema import connect, create
from tests.cdc_sqlite.shop import ROOT, Events


def _plan(tmp_path: Path) -> Path:
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        "kafka: {bootstrap_servers: embedded, topic_prefix: clishop}\n"
        f"cdc: {{http: {{port: 0}}, state_dir: {tmp_path / 'state'}}}\n"
        "services:\n  n:\n    data: {tables: {shop_note: note}}\n"
    )
    return plan


def test_status_reads_the_sqlite_source(tmp_path: Path) -> None:
    create(tmp_path / "db")
    connect(tmp_path / "db").execute("INSERT INTO shop_note VALUES (1, 'x')")
    result = CliRunner().invoke(
        cli, ["cdc", "status", "--plan", str(_plan(tmp_path)), "--json"],
        env={"DATABASE_URL": f"sqlite:///{tmp_path / 'db'}"},
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["connector"] == "sqlite" and doc["changelog_position"] == 1
    assert doc["offset"] is None and doc["lag_events"] is None


@pytest.mark.kafka
def test_run_relays_and_stops_on_sigterm(tmp_path: Path, kafka_bootstrap: str) -> None:
    create(tmp_path / "db")
    conn = connect(tmp_path / "db")
    conn.execute("INSERT INTO shop_note VALUES (1, 'x')")
    events = Events(kafka_bootstrap, ["clishop.main.shop_note"])
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
           "DATABASE_URL": f"sqlite:///{tmp_path / 'db'}"}
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "strangle"), "cdc", "run", "--plan",
         str(_plan(tmp_path))],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path,
    )
    try:
        status_file = tmp_path / "state" / "status.json"
        deadline = time.monotonic() + 30
        while not (status_file.exists() and "streaming" in status_file.read_text()):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        conn.execute("INSERT INTO shop_note VALUES (2, 'y')")
        events.poll_until(lambda e: len(e.changes()) >= 2, what="snapshot + insert")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out.decode()[-2000:]
    assert sorted(c["op"] for c in events.changes()) == ["c", "r"]
    status = json.loads((tmp_path / "state" / "status.json").read_text())
    assert status["state"] == "stopped" and status["offset"] == 2
    logs = [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]
    assert any(entry["msg"] == "starting capture" for entry in logs)
    events.close()


@pytest.mark.kafka
def test_snapshot_of_one_table_and_reset(tmp_path: Path, kafka_bootstrap: str) -> None:
    create(tmp_path / "db")
    connect(tmp_path / "db").execute("INSERT INTO shop_note VALUES (1, 'x')")
    plan = _plan(tmp_path)
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'db'}",
           "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    events = Events(kafka_bootstrap, ["clishop.main.shop_note"])
    runner = CliRunner()
    result = runner.invoke(cli, ["cdc", "snapshot", "--plan", str(plan), "--table", "shop_note"],
                           env=env)
    assert result.exit_code == 0, result.output
    assert "sent 1 rows of shop_note" in result.output
    events.poll_until(lambda e: len(e.changes()) >= 1, what="the re-snapshot")
    assert events.changes()[0]["op"] == "r"
    bad = runner.invoke(cli, ["cdc", "snapshot", "--plan", str(plan), "--table", "shop_log"],
                        env=env)
    assert bad.exit_code == 1 and "shop_log is not a captured table" in bad.output

    offsets = tmp_path / "state" / "offsets.json"
    offsets.parent.mkdir(parents=True, exist_ok=True)
    name = f"sqlite:clishop:{(tmp_path / 'db').resolve()}"
    offsets.write_text(json.dumps({name: {"changelog_id": 1}}))
    held = RelayLock(tmp_path / "db")
    held.acquire()
    busy = runner.invoke(cli, ["cdc", "reset", "--plan", str(plan), "--yes"], env=env)
    assert busy.exit_code == 1 and "another relay is running" in busy.output
    held.release()
    done = runner.invoke(cli, ["cdc", "reset", "--plan", str(plan), "--yes"], env=env)
    assert done.exit_code == 0 and "offset" in done.output
    assert json.loads(offsets.read_text()) == {}
    events.close()
