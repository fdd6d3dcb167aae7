"""The publication lists exactly the captured tables; uncapturable tables are refused
before anything is changed, so the monolith's writes keep working."""

from __future__ import annotations

from pathlib import Path

import pytest

from cdc.errors import TableNotCapturable
from cdc.runner import PgCapture
from cdc.sources.postgres import catalog
from cdc.sources.postgres.publication import sync_publication
from tests.cdc.pg_support import execute, make_config, query


def test_publication_lists_exactly_the_captured_tables(pg_database: str) -> None:
    execute(pg_database, *(f"CREATE TABLE {t} (id int PRIMARY KEY)" for t in "abc"))
    conn = catalog.connect(pg_database)
    try:
        sync_publication(conn, "pub", ["public.a", "public.b"])
        sync_publication(conn, "pub", ["public.b", "public.c"])
    finally:
        conn.close()
    rows = query(pg_database, "SELECT tablename FROM pg_publication_tables WHERE pubname = 'pub'")
    assert sorted(r[0] for r in rows) == ["b", "c"]


def test_table_without_primary_key_is_refused_and_writes_keep_working(
    pg_database: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    execute(pg_database, "CREATE TABLE ok (id int PRIMARY KEY)", "CREATE TABLE log (msg text)",
            "CREATE TABLE quiet (id int PRIMARY KEY)", "ALTER TABLE quiet REPLICA IDENTITY NOTHING",
            "INSERT INTO log VALUES ('x')")
    cfg = make_config(pg_database, kafka_bootstrap,
                      ("public.ok", "public.log", "public.quiet", "public.ghost"), tmp_path)
    with pytest.raises(TableNotCapturable) as err:
        PgCapture(cfg, serve_http=False).run()
    message = str(err.value)
    assert "public.log: has no primary key" in message
    assert "add a PRIMARY KEY or remove it from the plan" in message
    assert "public.quiet: REPLICA IDENTITY NOTHING" in message
    assert "public.ghost: no such table" in message
    assert query(pg_database, "SELECT count(*) FROM pg_publication")[0][0] == 0
    assert query(pg_database, "SELECT count(*) FROM pg_replication_slots "
                              f"WHERE slot_name = '{cfg.slot}'")[0][0] == 0
    execute(pg_database, "UPDATE log SET msg = 'y'", "DELETE FROM log", "DELETE FROM quiet")
