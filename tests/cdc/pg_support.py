"""Helpers for the PostgreSQL → Kafka integration tests: a capture running in a thread
and a reader that collects a topic from the start (partition assignment, no group)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import psycopg2
import yaml
from confluent_kafka import Consumer, TopicPartition

from cdc.config import CdcConfig, pg_dsn
from cdc.converter import unwrap
from cdc.runner import PgCapture


def make_config(url: str, bootstrap: str, tables: tuple[str, ...], state_dir: Path,
                **overrides: Any) -> CdcConfig:
    prefix = overrides.pop("topic_prefix", f"p{uuid.uuid4().hex[:8]}")
    return CdcConfig(
        database_url=url, bootstrap_servers=bootstrap, topic_prefix=prefix, tables=tables,
        state_dir=state_dir, offsets={"backend": "file", "path": str(state_dir / "offsets.json")},
        heartbeat_interval_s=overrides.pop("heartbeat_interval_s", 0.5),
        http_port=0, **overrides,
    )


def execute(url: str, *statements: str) -> None:
    conn = psycopg2.connect(pg_dsn(url))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for stmt in statements:
                cur.execute(stmt)
    finally:
        conn.close()


def query(url: str, statement: str) -> list[tuple[Any, ...]]:
    conn = psycopg2.connect(pg_dsn(url))
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
            return list(cur.fetchall())
    finally:
        conn.close()


@contextmanager
def running(capture: PgCapture) -> Iterator[PgCapture]:
    errors: list[BaseException] = []

    def target() -> None:
        try:
            capture.run()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while capture.status()["state"] not in ("streaming", "failed", "stopped"):
            if time.monotonic() > deadline or not thread.is_alive():
                break
            time.sleep(0.05)
        if errors:
            raise errors[0]
        yield capture
    finally:
        capture.stop()
        thread.join(30)
    if errors:
        raise errors[0]


class TopicReader:
    """Reads one topic's partition 0 from offset 0, accumulating (key, value, headers)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self.records: list[tuple[Any, Any, dict[str, bytes]]] = []
        self.raw: list[tuple[bytes | None, bytes | None]] = []
        self._consumer = Consumer({
            "bootstrap.servers": bootstrap, "group.id": f"r{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False, "session.timeout.ms": 6000,
        })
        self._assigned = False

    def _assign(self) -> bool:
        topics = self._consumer.list_topics(timeout=5).topics
        if self.topic not in topics:
            return False
        self._consumer.assign([TopicPartition(self.topic, 0, 0)])
        self._assigned = True
        return True

    def read_until(self, done: Callable[[list[Any]], bool], timeout_s: float = 30.0) -> list[Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not done(self.records):
            if not self._assigned and not self._assign():
                time.sleep(0.2)
                continue
            for msg in self._consumer.consume(1000, 0.2):
                if msg.error():
                    continue
                self.raw.append((msg.key(), msg.value()))
                self.records.append((unwrap(msg.key()), unwrap(msg.value()),
                                     dict(msg.headers() or [])))
        return self.records

    def close(self) -> None:
        self._consumer.close()


def values(records: list[Any]) -> list[Any]:
    return [v for _, v, _ in records]


def loads(raw: bytes | None) -> Any:
    return None if raw is None else orjson.loads(raw)


def reconstruct(records: list[Any]) -> dict[Any, dict[str, Any]]:
    """Apply change events in topic order to an empty table: what a sink would hold."""
    table: dict[Any, dict[str, Any]] = {}
    for key, value, _ in records:
        if value is None:
            continue
        op = value["op"]
        if op == "t":
            table.clear()
        elif op == "d":
            table.pop(_key(key), None)
        else:
            table[_key(key)] = value["after"]
    return table


def _key(key: dict[str, Any]) -> Any:
    return next(iter(key.values())) if len(key) == 1 else tuple(key.values())


def slots_here(url: str) -> int:
    """Replication slots of this test's database (slots are cluster-wide)."""
    return int(query(url, "SELECT count(*) FROM pg_replication_slots "
                          "WHERE database = current_database()")[0][0])


def write_plan(path: Path, url: str, bootstrap: str, prefix: str, **cdc: Any) -> Path:
    plan = {
        "version": 1,
        "kafka": {"bootstrap_servers": bootstrap, "topic_prefix": prefix},
        "cdc": {"database_url": url, "state_dir": str(path.parent / "state"),
                "heartbeat_interval_s": 0.5, "message_timeout_s": 10,
                "http": {"host": "127.0.0.1", "port": 0}, **cdc},
        "services": {"ledger": {"data": {"owner": "monolith", "tables": {"ledger": "entry"}}}},
    }
    path.write_text(yaml.safe_dump(plan))
    return path
