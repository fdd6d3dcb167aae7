"""``python -m extracted.notifications sink`` as a real process: killed with SIGKILL
mid-stream again and again, it still ends with exactly the source's rows."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from cdc.events import Op
from cdc.sinks.sqlalchemy_applier import engine_url
from tests.sinks.encode import Encoder, notification_row, publish
from tests.support.servers import ROOT, free_port

pytestmark = pytest.mark.kafka


def _start(bootstrap: str, prefix: str, db_url: str, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NOTIFICATIONS_DATABASE_URL": db_url}
    return subprocess.Popen(
        [sys.executable, "-m", "extracted.notifications", "sink", "--bootstrap-servers",
         bootstrap, "--topic-prefix", prefix, "--batch-size", "20", "--metrics-port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _progress(db_url: str) -> int:
    engine = sa.create_engine(engine_url(db_url))
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(
                "SELECT coalesce(sum(next_offset), 0) FROM strangler_sink_offsets")).scalar_one())
    except sa.exc.DBAPIError:  # not migrated yet (SQLite: no file; PostgreSQL: no table)
        return 0
    finally:
        engine.dispose()


def _state(db_url: str) -> dict[int, tuple[str, str]]:
    engine = sa.create_engine(engine_url(db_url))
    try:
        with engine.connect() as conn:
            return {r[0]: (r[1], r[2]) for r in conn.execute(
                sa.text("SELECT id, subject, status FROM notification"))}
    except sa.exc.DBAPIError:
        return {}
    finally:
        engine.dispose()


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgresql",
                                                           marks=pytest.mark.postgres)])
def test_kill_9_repeatedly_loses_nothing_and_applies_nothing_twice(
    kafka_bootstrap: str, tmp_path: Path, database: str, request: pytest.FixtureRequest
) -> None:
    """On PostgreSQL the sink applies each batch on a worker thread while it plans the
    next (the pipeline): a kill lands with one batch committing and one planned."""
    prefix = f"k{uuid.uuid4().hex[:8]}"
    db_url = (f"sqlite:///{tmp_path / 'svc.sqlite3'}" if database == "sqlite"
              else request.getfixturevalue("pg_database"))
    enc = Encoder(prefix)
    rng = random.Random(7)
    expected: dict[int, tuple[str, str]] = {}
    published = 0

    def publish_changes(count: int) -> None:
        nonlocal published
        records = []
        for step in range(count):
            i = rng.randint(1, 400)
            if i in expected and rng.random() < 0.15:
                records += enc.change(Op.DELETE, notification_row(i), None)
                del expected[i]
            elif i in expected:
                row = notification_row(i, f"v{published}.{step}",
                                       status=rng.choice(["sent", "failed"]))
                records += enc.change(Op.UPDATE, notification_row(i), row)
                expected[i] = (f"v{published}.{step}", row["status"] or "")
            else:
                records += enc.change(Op.CREATE, None, notification_row(i, f"v{published}.{step}"))
                expected[i] = (f"v{published}.{step}", "sent")
        publish(kafka_bootstrap, records)
        published += len(records)

    kills = []  # (records applied when killed, records published by then)
    port = free_port()
    for _round in range(4):
        publish_changes(1500)  # the stream grows while the sink keeps dying
        proc = _start(kafka_bootstrap, prefix, db_url, port)
        started = _progress(db_url)
        deadline = time.monotonic() + 30
        while _progress(db_url) == started and time.monotonic() < deadline:
            time.sleep(0.01)  # kill it once it is applying, at a random moment
        time.sleep(rng.uniform(0.0, 0.05))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills.append((_progress(db_url), published))
    proc = _start(kafka_bootstrap, prefix, db_url, port)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).json()
            except httpx.HTTPError:
                health = {}
            if _state(db_url) == expected and health.get("consumed", 0) > 0:
                break
            time.sleep(0.5)
        assert _state(db_url) == expected
        assert all(0 < done < total for done, total in kills), kills  # killed mid-stream
        engine = sa.create_engine(engine_url(db_url))
        with engine.connect() as conn:
            offsets = conn.execute(sa.text(
                "SELECT sum(next_offset) FROM strangler_sink_offsets")).scalar_one()
        engine.dispose()
        assert offsets == published  # every record consumed exactly up to the end
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0  # graceful shutdown on SIGTERM
