"""Drop the replication slots a test left in its database: slots are cluster-wide and an
idle one makes the session server keep every WAL segment after it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _drop_test_slots(request: pytest.FixtureRequest) -> Iterator[None]:
    if "pg_database" not in request.fixturenames:
        yield
        return
    import psycopg2

    from cdc.config import pg_dsn

    url = request.getfixturevalue("pg_database")
    yield
    conn = psycopg2.connect(pg_dsn(url))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                "WHERE database = current_database() AND NOT active"
            )
    finally:
        conn.close()
