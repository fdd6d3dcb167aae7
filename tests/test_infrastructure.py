"""The real components the integration tests rely on actually run."""

from __future__ import annotations

import psycopg2
from confluent_kafka.admin import AdminClient, NewTopic

from tests.support.postgres import PostgresServer


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
