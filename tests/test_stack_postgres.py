"""strangler_proxy/stack_postgres.py: can the monolith's PostgreSQL feed CDC?"""

from __future__ import annotations

import uuid

import psycopg2
import pytest

from strangler_proxy.stack_postgres import cdc_problems, check_cdc_source, is_postgres
from tests.support.monolith_server import free_port
from tests.support.postgres import PostgresServer


def test_logical_wal_and_a_replicating_role_are_all_it_needs() -> None:
    assert cdc_problems(wal_level="logical", role="app", can_replicate=True) == []
    [wal] = cdc_problems(wal_level="replica", role="app", can_replicate=True)
    assert "wal_level is 'replica'" in wal and "ALTER SYSTEM SET wal_level = logical" in wal
    [role] = cdc_problems(wal_level="logical", role="app", can_replicate=False)
    assert "role 'app' may not replicate" in role and 'ALTER ROLE "app" REPLICATION' in role
    assert len(cdc_problems(wal_level="minimal", role="app", can_replicate=False)) == 2


def test_postgres_urls_are_recognised() -> None:
    assert is_postgres("postgresql://u@h/db") and is_postgres("postgres://u@h/db")
    assert is_postgres("postgresql+psycopg2://u@h/db")
    assert not is_postgres("sqlite:///var/monolith.sqlite3") and not is_postgres("")


@pytest.mark.postgres
def test_the_real_server_is_asked(postgres: PostgresServer, pg_database: str) -> None:
    assert check_cdc_source(pg_database) == []  # the session server: logical, superuser
    role = f"norepl_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(postgres.dsn())
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(f'CREATE ROLE "{role}" LOGIN')
        as_role = pg_database.replace(f"//{postgres.user}@", f"//{role}@")
        [problem] = check_cdc_source(as_role)
        assert f"role '{role}' may not replicate" in problem
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP ROLE "{role}"')
        admin.close()
    [down] = check_cdc_source(f"postgresql://postgres@127.0.0.1:{free_port()}/shop")
    assert down.startswith("cannot connect:")
