"""provide_transaction_metadata: BEGIN/END records and per-event transaction blocks shaped
like Debezium's documented examples."""

from __future__ import annotations

from pathlib import Path

from cdc.runner import PgCapture
from tests.cdc.debezium_docs import load
from tests.cdc.pg_support import TopicReader, execute, make_config, running


def test_transaction_metadata(pg_database: str, kafka_bootstrap: str, tmp_path: Path) -> None:
    execute(pg_database, *(f"CREATE TABLE {t} (id int PRIMARY KEY)" for t in "ab"))
    cfg = make_config(pg_database, kafka_bootstrap, ("public.a", "public.b"), tmp_path,
                      snapshot_mode="no_data", provide_transaction_metadata=True)
    tx_topic = TopicReader(kafka_bootstrap, f"{cfg.topic_prefix}.transaction")
    a_topic = TopicReader(kafka_bootstrap, f"{cfg.topic_prefix}.public.a")
    try:
        with running(PgCapture(cfg, serve_http=False)):
            execute(pg_database, "BEGIN; INSERT INTO a VALUES (1), (2); INSERT INTO b VALUES (1);"
                                 " COMMIT")
            markers = tx_topic.read_until(lambda r: len(r) >= 2)
            events = a_topic.read_until(lambda r: len(r) >= 2)
    finally:
        tx_topic.close()
        a_topic.close()
    (begin_key, begin, _), (_, end, _) = markers
    assert set(begin) == set(load("pg-tx-begin.value.json"))
    assert set(end) == set(load("pg-tx-end.value.json"))
    assert begin["status"] == "BEGIN" and begin["event_count"] is None
    assert begin_key == {"id": begin["id"]} and end["id"] == begin["id"]
    xid, lsn = begin["id"].split(":")
    assert int(xid) == events[0][1]["source"]["txId"] and int(lsn) > 0
    assert end["event_count"] == 3
    assert end["data_collections"] == [{"data_collection": "public.a", "event_count": 2},
                                       {"data_collection": "public.b", "event_count": 1}]
    blocks = [v["transaction"] for _, v, _ in events]
    assert blocks == [
        {"id": begin["id"], "total_order": 1, "data_collection_order": 1},
        {"id": begin["id"], "total_order": 2, "data_collection_order": 2},
    ]
