"""PostgreSQL → Kafka on the real server and the real embedded broker: every operation
with the right before/after images under both replica identities."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from cdc.positions import SourcePosition
from cdc.runner import PgCapture
from tests.cdc.pg_support import TopicReader, execute, loads, make_config, running

SCHEMA = """
CREATE TABLE items (
    id integer PRIMARY KEY,
    name text NOT NULL,
    note text,
    price numeric(10,2),
    created timestamptz NOT NULL DEFAULT '2024-01-02 03:04:05.5+00',
    tags text[]
)
"""


def _ops(records: list[Any]) -> list[tuple[str | None, Any]]:
    return [(v["op"] if v else None, k) for k, v, _ in records]


def _price(b64: str) -> int:
    return int.from_bytes(base64.b64decode(b64), "big", signed=True)


def test_default_identity_events(pg_database: str, kafka_bootstrap: str, tmp_path: Path) -> None:
    execute(pg_database, SCHEMA, "INSERT INTO items (id, name, price) VALUES (1, 'one', 1.50)")
    cfg = make_config(pg_database, kafka_bootstrap, ("public.items",), tmp_path)
    reader = TopicReader(kafka_bootstrap, f"{cfg.topic_prefix}.public.items")
    try:
        with running(PgCapture(cfg)):
            execute(
                pg_database,
                "INSERT INTO items (id, name, note, tags) VALUES (2, 'two', 'n', '{a,\"b c\"}')",
                "UPDATE items SET name = 'uno' WHERE id = 1",
                "UPDATE items SET id = 3 WHERE id = 2",
                "DELETE FROM items WHERE id = 1",
                "TRUNCATE items",
            )
            records = reader.read_until(lambda r: len(r) >= 9)
    finally:
        reader.close()
    assert _ops(records) == [
        ("r", {"id": 1}),
        ("c", {"id": 2}),
        ("u", {"id": 1}),
        ("d", {"id": 2}), (None, {"id": 2}), ("c", {"id": 3}),
        ("d", {"id": 1}), (None, {"id": 1}),
        ("t", None),
    ][: len(records)] and len(records) == 9
    snap, create, update, pk_delete, _, pk_create, delete, _, trunc = (v for _, v, _ in records)
    assert snap["source"]["snapshot"] == "last" and snap["before"] is None
    assert _price(snap["after"]["price"]) == 150
    assert snap["after"]["created"] == "2024-01-02T03:04:05.500000Z"
    assert create["after"]["tags"] == ["a", "b c"] and create["after"]["note"] == "n"
    assert create["source"]["snapshot"] == "false" and create["source"]["txId"] > 0
    # REPLICA IDENTITY DEFAULT: no old image for a plain update
    assert update["before"] is None and update["after"]["name"] == "uno"
    # key change: the old key only, required columns filled like Debezium
    assert pk_delete["before"]["id"] == 2 and pk_delete["before"]["name"] == ""
    assert pk_create["after"]["id"] == 3 and pk_create["after"]["name"] == "two"
    assert records[3][2]["__debezium.newkey"] == b'{"id":3}'
    assert records[5][2]["__debezium.oldkey"] == b'{"id":2}'
    assert delete["before"] == {"id": 1, "name": "", "note": None, "price": None,
                                "created": "1970-01-01T00:00:00.000000Z", "tags": None}
    assert trunc["before"] is None and trunc["after"] is None
    positions = [SourcePosition.from_sequence(v["source"]["sequence"]) for _, v, _ in records if v]
    assert positions == sorted(positions)
    assert positions[0] == SourcePosition(snap["source"]["lsn"], 0)


def test_full_identity_events(pg_database: str, kafka_bootstrap: str, tmp_path: Path) -> None:
    execute(pg_database, SCHEMA, "ALTER TABLE items REPLICA IDENTITY FULL")
    cfg = make_config(pg_database, kafka_bootstrap, ("public.items",), tmp_path,
                      snapshot_mode="no_data")
    reader = TopicReader(kafka_bootstrap, f"{cfg.topic_prefix}.public.items")
    try:
        with running(PgCapture(cfg)):
            execute(
                pg_database,
                "INSERT INTO items (id, name, note) VALUES (1, 'one', 'x')",
                "UPDATE items SET note = 'y' WHERE id = 1",
                "DELETE FROM items WHERE id = 1",
            )
            records = reader.read_until(lambda r: len(r) >= 4)
    finally:
        reader.close()
    assert _ops(records) == [("c", {"id": 1}), ("u", {"id": 1}), ("d", {"id": 1}),
                             (None, {"id": 1})]
    _, update, delete, _ = (v for _, v, _ in records)
    assert update["before"]["note"] == "x" and update["after"]["note"] == "y"
    assert update["before"]["name"] == "one"
    assert delete["before"]["note"] == "y" and delete["before"]["name"] == "one"


def test_schema_change_mid_stream_changes_the_event_schema(
    pg_database: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    execute(pg_database, "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)")
    cfg = make_config(pg_database, kafka_bootstrap, ("public.items",), tmp_path)
    reader = TopicReader(kafka_bootstrap, f"{cfg.topic_prefix}.public.items")
    try:
        with running(PgCapture(cfg)):
            execute(pg_database, "INSERT INTO items VALUES (1, 'a')",
                    "ALTER TABLE items ADD COLUMN qty int NOT NULL DEFAULT 7",
                    "INSERT INTO items VALUES (2, 'b')")
            reader.read_until(lambda r: len(r) >= 2)
    finally:
        reader.close()
    first, second = (loads(raw) for _, raw in reader.raw)
    fields = [[f["field"] for f in doc["schema"]["fields"][1]["fields"]] for doc in (first, second)]
    assert fields == [["id", "name"], ["id", "name", "qty"]]
    assert second["payload"]["after"] == {"id": 2, "name": "b", "qty": 7}
