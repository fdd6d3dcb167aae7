"""Kafka unreachable: a clear error, and the slot is never acknowledged past what Kafka
confirmed — so after the broker is back nothing is lost."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from cdc.embedded_broker import EmbeddedBroker, free_port
from cdc.errors import BrokerUnavailable, DeliveryFailed
from cdc.runner import PgCapture
from tests.cdc.pg_support import TopicReader, execute, make_config, query, running, slots_here


def _slot_flush(url: str, slot: str) -> int:
    rows = query(url, "SELECT confirmed_flush_lsn - '0/0'::pg_lsn FROM pg_replication_slots "
                      f"WHERE slot_name = '{slot}'")
    return int(rows[0][0])


def test_unreachable_broker_at_start_fails_before_touching_the_database(
    pg_database: str, tmp_path: Path
) -> None:
    execute(pg_database, "CREATE TABLE t (id int PRIMARY KEY)")
    dead = f"127.0.0.1:{free_port()}"
    cfg = make_config(pg_database, dead, ("public.t",), tmp_path, message_timeout_s=2)
    with pytest.raises(BrokerUnavailable, match=f"Kafka at {dead} did not answer"):
        PgCapture(cfg, serve_http=False).run()
    assert slots_here(pg_database) == 0


def test_broker_gone_mid_stream_nothing_acked_and_nothing_lost(
    pg_database: str, tmp_path: Path
) -> None:
    execute(pg_database, "CREATE TABLE t (id int PRIMARY KEY, v text)")
    first = EmbeddedBroker()
    first.start()
    cfg = make_config(pg_database, first.bootstrap_servers, ("public.t",), tmp_path,
                      message_timeout_s=2, heartbeat_interval_s=60)
    topic = f"{cfg.topic_prefix}.public.t"
    capture = PgCapture(cfg, serve_http=False)
    failure: list[BaseException] = []
    thread = threading.Thread(target=lambda: _run(capture, failure), daemon=True)
    try:
        thread.start()
        execute(pg_database, "INSERT INTO t VALUES (1, 'confirmed')")
        reader = TopicReader(first.bootstrap_servers, topic)
        assert reader.read_until(lambda r: len(r) >= 1)[0][0] == {"id": 1}
        reader.close()
        first.stop()
        execute(pg_database, "INSERT INTO t VALUES (2, 'in flight')")
        insert_lsn = "SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn"
        after_b = int(query(pg_database, insert_lsn)[0][0])
        thread.join(60)
    finally:
        capture.stop()
        first.stop()
    assert not thread.is_alive()
    assert len(failure) == 1 and isinstance(failure[0], DeliveryFailed)
    assert "did not confirm a record" in str(failure[0])
    # the slot was not acknowledged up to B's commit end, which Kafka never confirmed
    # (and the restart below gets B again, which it could not if B had been acked)
    assert _slot_flush(pg_database, cfg.slot) < after_b
    with EmbeddedBroker() as second:
        again = make_config(pg_database, second.bootstrap_servers, ("public.t",), tmp_path,
                            topic_prefix=cfg.topic_prefix)
        reader = TopicReader(second.bootstrap_servers, topic)
        try:
            with running(PgCapture(again, serve_http=False)):
                records = reader.read_until(lambda r: any(k == {"id": 2} for k, _, _ in r))
        finally:
            reader.close()
    assert [(k, v["after"]["v"]) for k, v, _ in records] == [({"id": 2}, "in flight")]


def _run(capture: PgCapture, failure: list[BaseException]) -> None:
    try:
        capture.run()
    except BaseException as exc:
        failure.append(exc)
