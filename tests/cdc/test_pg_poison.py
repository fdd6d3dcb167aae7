"""A value the Debezium mapping cannot represent stops the capture with a message naming
table, column, value and LSN — and the slot is not acknowledged past it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cdc.errors import DecodeError
from cdc.runner import PgCapture
from cdc.sources.postgres.tables import PgColumn, build_codec
from tests.cdc.pg_support import TopicReader, execute, make_config, query, running


def test_unconvertible_value_is_named() -> None:
    codec = build_codec("public", "t", [PgColumn("id", 23, -1, True),
                                        PgColumn("price", 1700, (10 << 16 | 2) + 4, False)],
                        ("id",))
    with pytest.raises(DecodeError, match=r"public\.t\.price: cannot convert 'NaN'"):
        codec.row(["1", "NaN"])
    with pytest.raises(DecodeError, match="row has 1 columns, the relation has 2"):
        codec.row(["1"])


def test_poison_row_stops_capture_without_acknowledging_it(
    pg_database: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    execute(pg_database, "CREATE TABLE t (id int PRIMARY KEY, price numeric(10,2))")
    cfg = make_config(pg_database, kafka_bootstrap, ("public.t",), tmp_path,
                      snapshot_mode="no_data")
    reader = TopicReader(kafka_bootstrap, f"{cfg.topic_prefix}.public.t")
    capture = PgCapture(cfg, serve_http=False)
    after = 0
    with pytest.raises(DecodeError) as err, running(capture):
        execute(pg_database, "INSERT INTO t VALUES (1, 1.25)")
        reader.read_until(lambda r: len(r) >= 1)
        execute(pg_database, "INSERT INTO t VALUES (2, 'NaN')")
        after = int(query(pg_database, "SELECT pg_current_wal_insert_lsn() - '0/0'")[0][0])
        for _ in range(100):
            if capture.status()["state"] == "failed":
                break
            time.sleep(0.1)
    reader.close()
    message = str(err.value)
    assert "poison change at LSN" in message and "public.t.price" in message and "NaN" in message
    assert capture.status()["state"] == "failed"
    flush = query(pg_database, "SELECT confirmed_flush_lsn - '0/0' FROM pg_replication_slots "
                               f"WHERE slot_name = '{cfg.slot}'")[0][0]
    assert int(flush) < after  # the poison transaction's commit was never acknowledged
