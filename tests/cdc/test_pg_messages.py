"""pg_logical_emit_message() → ``<prefix>.message`` in Debezium's format, on the real
server and broker; transactional messages travel with their transaction, others are
acknowledged at their own position once Kafka confirmed them."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import orjson

from cdc.converter import JsonConverter, message_value_schema
from cdc.events import Connector, RecordKind, message_record
from cdc.positions import SourcePosition
from cdc.runner import PgCapture
from tests.cdc.pg_support import TopicReader, execute, make_config, running


def test_message_record_layout() -> None:
    rec = message_record(
        Connector("postgresql", name="shop", db="shop"), prefix="outbox", content=b"\x00hi",
        position=SourcePosition(100, 120), ts_us=1_700_000_000_000_001, tx_id=7, lsn=120,
        now_ns=1_700_000_001_000_000_000,
    )
    assert rec.kind is RecordKind.MESSAGE and rec.topic == "shop.message"
    key, value = JsonConverter().serialize(rec)
    key_doc, value_doc = orjson.loads(key or b""), orjson.loads(value or b"")
    assert key_doc == {"schema": {"type": "struct", "fields": [
        {"type": "string", "optional": True, "field": "prefix"}], "optional": False,
        "name": "io.debezium.connector.postgresql.MessageKey", "version": 1},
        "payload": {"prefix": "outbox"}}
    payload = value_doc["payload"]
    assert list(payload) == ["op", "ts_ms", "source", "transaction", "message"]
    assert payload["op"] == "m" and payload["ts_ms"] == 1_700_000_001_000
    content = base64.b64encode(b"\x00hi").decode()
    assert payload["message"] == {"prefix": "outbox", "content": content}
    assert payload["source"]["sequence"] == '["100","120"]'
    assert (payload["source"]["schema"], payload["source"]["table"]) == ("", "")
    assert value_doc["schema"] == message_value_schema("postgresql")
    assert [f["field"] for f in value_doc["schema"]["fields"]] == list(payload)
    bare_key, bare_value = JsonConverter(schemas_enable=False).serialize(rec)
    assert orjson.loads(bare_key or b"") == {"prefix": "outbox"}
    assert orjson.loads(bare_value or b"") == payload


def test_logical_decoding_messages_are_published(
    pg_database: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    execute(pg_database, "CREATE TABLE notes (id int PRIMARY KEY, body text)")
    cfg = make_config(pg_database, kafka_bootstrap, ("public.notes",), tmp_path,
                      snapshot_mode="no_data")
    messages = TopicReader(kafka_bootstrap, f"{cfg.topic_prefix}.message")
    rows = TopicReader(kafka_bootstrap, f"{cfg.topic_prefix}.public.notes")
    try:
        with running(PgCapture(cfg)) as capture:
            execute(
                pg_database,
                "BEGIN; INSERT INTO notes VALUES (1, 'a');"
                " SELECT pg_logical_emit_message(true, 'outbox', 'hello'); COMMIT",
                "SELECT pg_logical_emit_message(false, 'audit', '\\x00ff'::bytea)",
                "SELECT pg_logical_emit_message(true, 'single', 'x')",
                "BEGIN; SELECT pg_logical_emit_message(true, 'gone', 'x'); ROLLBACK",
                "SELECT pg_logical_emit_message(true, 'after', 'x')",
            )
            got = messages.read_until(lambda r: len(r) >= 4)
            rows.read_until(lambda r: len(r) >= 1)
            last_lsn = max(v["source"]["lsn"] for _, v, _ in got)
            deadline = time.monotonic() + 10
            while capture.status()["acked_lsn"] is None or (
                capture._stream is not None and capture._stream.acked_lsn < last_lsn
            ):
                assert time.monotonic() < deadline, "message positions never acknowledged"
                time.sleep(0.05)
    finally:
        messages.close()
        rows.close()
    assert [k["prefix"] for k, _, _ in got] == ["outbox", "audit", "single", "after"]
    outbox, audit, _, _ = (v for _, v, _ in got)
    assert outbox["op"] == "m" and base64.b64decode(outbox["message"]["content"]) == b"hello"
    assert base64.b64decode(audit["message"]["content"]) == b"\x00\xff"
    ((_, row, _),) = rows.records
    assert outbox["source"]["txId"] == row["source"]["txId"] is not None
    assert SourcePosition.from_sequence(outbox["source"]["sequence"]).commit == \
        SourcePosition.from_sequence(row["source"]["sequence"]).commit
    assert audit["source"]["txId"] is None and audit["source"]["table"] == ""
