"""The real components the integration tests rely on actually run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg2
from confluent_kafka.admin import AdminClient, NewTopic

from tests.support.postgres import OWNER_FILE, PostgresServer, stale_roots


def test_postgres_session_server_supports_logical_replication(postgres: PostgresServer) -> None:
    conn = psycopg2.connect(postgres.dsn())
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW wal_level")
            assert cur.fetchone() == ("logical",)
            cur.execute("SELECT current_setting('server_version_num')::int")
            row = cur.fetchone()
            assert row is not None and row[0] >= 150000
    finally:
        conn.close()


def test_embedded_broker_creates_and_lists_topics(kafka_bootstrap: str) -> None:
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    futures = admin.create_topics([NewTopic("infra.check", num_partitions=1)])
    futures["infra.check"].result(10)
    assert "infra.check" in admin.list_topics(timeout=10).topics


def test_stale_postgres_dirs_are_those_whose_session_died(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    dirs = {"strangler-pg-dead": str(dead.pid), "strangler-pg-live": str(os.getpid()),
            "strangler-pg-new": None, "other-dir": str(dead.pid)}
    for name, owner in dirs.items():
        (tmp_path / name).mkdir()
        if owner is not None:
            (tmp_path / name / OWNER_FILE).write_text(owner)
    assert stale_roots(tmp_path) == [tmp_path / "strangler-pg-dead"]


def test_session_server_records_its_owner(postgres: PostgresServer) -> None:
    assert (postgres.root / OWNER_FILE).read_text() == str(os.getpid())
