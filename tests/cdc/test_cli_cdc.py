"""``strangle cdc status|snapshot|reset`` in-process against the real server and broker."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from click.testing import CliRunner

from cdc.runner import PgCapture
from strangler_proxy.cli import cli
from tests.cdc.pg_support import (
    TopicReader,
    execute,
    make_config,
    query,
    running,
    slots_here,
    write_plan,
)


def _plan(tmp_path: Path, url: str, bootstrap: str, prefix: str) -> Path:
    return write_plan(tmp_path / "plan.yaml", url, bootstrap, prefix)


def test_status_snapshot_and_reset(pg_database: str, kafka_bootstrap: str, tmp_path: Path) -> None:
    execute(pg_database, "CREATE TABLE ledger (id int PRIMARY KEY, version int NOT NULL)",
            "INSERT INTO ledger VALUES (1, 0), (2, 0)")
    prefix = f"cli{uuid.uuid4().hex[:6]}"
    plan = _plan(tmp_path, pg_database, kafka_bootstrap, prefix)
    runner = CliRunner()
    cfg = make_config(pg_database, kafka_bootstrap, ("public.ledger",), tmp_path / "state",
                      topic_prefix=prefix)
    reader = TopicReader(kafka_bootstrap, f"{prefix}.public.ledger")
    try:
        with running(PgCapture(cfg)) as capture:
            execute(pg_database, "UPDATE ledger SET version = 1 WHERE id = 1")
            reader.read_until(lambda r: len(r) >= 3)
            capture._write_status()
            result = runner.invoke(cli, ["cdc", "status", "--plan", str(plan), "--json"])
            assert result.exit_code == 0, result.output
            doc = json.loads(result.output)
            assert doc["slot_exists"] and doc["slot_active"]
            assert doc["runner_state"] == "streaming"
            assert doc["last_event"]["table"] == "public.ledger"
            assert "/" in doc["confirmed_lsn"] and doc["lag_bytes"] is not None

            refused = runner.invoke(cli, ["cdc", "reset", "--plan", str(plan), "--yes"])
            assert refused.exit_code != 0 and "in use by a running capture" in refused.output

            snap = runner.invoke(cli, ["cdc", "snapshot", "--plan", str(plan),
                                       "--table", "ledger"])
            assert snap.exit_code == 0, snap.output
            assert "sent 2 rows of ledger" in snap.output
            records = reader.read_until(lambda r: len(r) >= 5)
            bad = runner.invoke(cli, ["cdc", "snapshot", "--plan", str(plan),
                                      "--table", "nope"])
            assert bad.exit_code != 0 and "not a captured table" in bad.output
    finally:
        reader.close()
    resnap = [v for _, v, _ in records[3:]]
    assert [v["op"] for v in resnap] == ["r", "r"]
    assert {v["after"]["id"]: v["after"]["version"] for v in resnap} == {1: 1, 2: 0}
    first_update = records[2][1]
    assert resnap[0]["source"]["lsn"] > first_update["source"]["lsn"]

    aborted = runner.invoke(cli, ["cdc", "reset", "--plan", str(plan)], input="n\n")
    assert aborted.exit_code != 0
    assert query(pg_database, f"SELECT count(*) FROM pg_replication_slots "
                              f"WHERE slot_name = '{cfg.slot}'")[0][0] == 1
    done = runner.invoke(cli, ["cdc", "reset", "--plan", str(plan), "--yes"])
    assert done.exit_code == 0, done.output
    assert "dropped" in done.output
    assert slots_here(pg_database) == 0


def test_bad_plan_is_a_clear_cli_error(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text("kafka: {topic_prefix: shop}\ncdc: {snapshot_mode: sometimes}\n")
    result = CliRunner().invoke(cli, ["cdc", "status", "--plan", str(plan)],
                                env={"DATABASE_URL": "postgresql://x@127.0.0.1:1/x"})
    assert result.exit_code != 0
    assert "cdc.snapshot_mode: 'sometimes' is not one of initial, no_data, when_needed" in (
        result.output)
