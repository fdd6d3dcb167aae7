"""The streaming hot path writes the same records as the general path, on the real
server and broker: the same workload captured twice (``fast_path`` on and off) gives
byte-identical keys and values apart from the processing time (``ts_ms/us/ns``)."""

from __future__ import annotations

from pathlib import Path

from cdc.runner import PgCapture
from tests.cdc.pg_support import TopicReader, execute, make_config, running

SCHEMA = """
CREATE TABLE kinds (
    id bigint, sub smallint, name text NOT NULL, note varchar(40), flag boolean,
    price numeric(12,3), ratio numeric, seen timestamptz(3), at timestamp, day date,
    doc jsonb, uid uuid, raw bytea, nums int[], big text,
    PRIMARY KEY (id, sub)
)
"""

WRITES = [
    "INSERT INTO kinds VALUES (1, 1, 'plain', 'n', true, 12.5, 1.25, '2024-05-06 07:08:09.1+02',"
    " '2024-05-06 07:08:09.123456', '2024-05-06', '{\"a\": [1, 2]}',"
    " 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\\x00ff', '{1,NULL,3}', NULL)",
    "INSERT INTO kinds (id, sub, name, note) VALUES (2, 1, 'quote \" back \\ slash', 'é ü 😀')",
    "INSERT INTO kinds (id, sub, name, big) SELECT 3, 1, 'toasted', string_agg(md5(i::text), '')"
    " FROM generate_series(1, 400) i",
    "UPDATE kinds SET note = 'changed' WHERE id = 3",  # big is an unchanged TOAST value
    "UPDATE kinds SET flag = false, price = -0.001 WHERE id = 1",
    "UPDATE kinds SET sub = 2 WHERE id = 2",  # key change: delete + tombstone + create
    "DELETE FROM kinds WHERE id = 1",
    "BEGIN; INSERT INTO kinds (id, sub, name) SELECT i, 0, 'bulk ' || i"
    " FROM generate_series(10, 60) i; UPDATE kinds SET name = 'x' WHERE id = 10; COMMIT",
]
RECORDS = 2 + 1 + 1 + 1 + 3 + 2 + 51 + 1


def _key(raw: bytes | None, prefix: str) -> bytes | None:
    return None if raw is None else raw.replace(prefix.encode(), b"PREFIX")


def _value(raw: bytes | None, prefix: str) -> bytes | None:
    """Everything but the processing time, which ends the envelope."""
    if raw is None:
        return None
    head, sep, tail = raw.replace(prefix.encode(), b"PREFIX").rpartition(b',"op":"')
    assert sep, raw
    return head + sep + tail[:2]


def test_fast_path_writes_what_the_general_path_writes(
    pg_database: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    execute(pg_database, SCHEMA)
    fast = make_config(pg_database, kafka_bootstrap, ("public.kinds",), tmp_path / "fast",
                       snapshot_mode="no_data")
    slow = make_config(pg_database, kafka_bootstrap, ("public.kinds",), tmp_path / "slow",
                       snapshot_mode="no_data")
    readers = [TopicReader(kafka_bootstrap, f"{c.topic_prefix}.public.kinds") for c in (fast, slow)]
    try:
        with running(PgCapture(fast)) as fast_capture, running(PgCapture(slow, fast_path=False)):
            execute(pg_database, *WRITES)
            got = [r.read_until(lambda recs: len(recs) >= RECORDS) for r in readers]
            assert fast_capture._fast is not None and fast_capture._fast.sent["c"] >= 50
    finally:
        for r in readers:
            r.close()
    assert [len(g) for g in got] == [RECORDS, RECORDS]
    fast_raw = [(_key(k, fast.topic_prefix), _value(v, fast.topic_prefix))
                for k, v in readers[0].raw]
    slow_raw = [(_key(k, slow.topic_prefix), _value(v, slow.topic_prefix))
                for k, v in readers[1].raw]
    assert fast_raw == slow_raw
