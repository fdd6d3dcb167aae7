"""The sink loop against the real embedded broker and a real database."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from confluent_kafka import Consumer as KafkaConsumer

from cdc.events import Op
from cdc.sinks.consumer import SinkConfig, SinkConsumer, serve_health
from cdc.sinks.sqlalchemy_applier import SqlAlchemyApplier, engine_url
from extracted.notifications.models import Base
from extracted.notifications.sink import notifications_applier
from tests.sinks.encode import NOTIFICATION, Encoder, notification_row, publish
from tests.support.servers import free_port

pytestmark = pytest.mark.kafka


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:8]}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def applier(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlAlchemyApplier]:
    url = (f"sqlite:///{tmp_path / 'svc.sqlite3'}" if request.param == "sqlite"
           else request.getfixturevalue("pg_database"))
    engine = sa.create_engine(engine_url(url))
    Base.metadata.create_all(engine)
    yield notifications_applier(engine)
    engine.dispose()


def _topic(prefix: str) -> str:
    return f"{prefix}.public.{NOTIFICATION.name}"


def _sink(bootstrap: str, prefix: str, applier: SqlAlchemyApplier, group: str = "g1",
          batch_size: int = 100) -> SinkConsumer:
    config = SinkConfig(bootstrap_servers=bootstrap, group_id=f"{prefix}-{group}",
                        topics=(_topic(prefix),), batch_size=batch_size, poll_timeout_s=0.2)
    return SinkConsumer(config, applier)


def _drain(sink: SinkConsumer, expected: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while sink.stats.consumed < expected:
        assert time.monotonic() < deadline, f"consumed {sink.stats.consumed} of {expected}"
        sink.step()


def _rows(applier: SqlAlchemyApplier) -> dict[int, str]:
    with applier.engine.connect() as conn:
        return dict(conn.execute(sa.text("SELECT id, subject FROM notification")).all())


def test_stream_applies_and_resumes_from_stored_offsets(
    kafka_bootstrap: str, prefix: str, applier: SqlAlchemyApplier
) -> None:
    enc = Encoder(prefix)
    records = []
    for i in range(1, 21):
        records += enc.change(Op.CREATE, None, notification_row(i, f"s{i}"))
    records += enc.change(Op.UPDATE, notification_row(3), notification_row(3, "changed"))
    records += enc.change(Op.DELETE, notification_row(4), None)  # + tombstone
    publish(kafka_bootstrap, records)
    assert len(records) == 23

    sink = _sink(kafka_bootstrap, prefix, applier, batch_size=7)
    _drain(sink, 23)
    rows = _rows(applier)
    assert len(rows) == 19 and rows[3] == "changed" and 4 not in rows
    assert sink.stats.dead_lettered.total() == 0
    sink.close()

    # a consumer in a NEW group (no Kafka offsets) resumes from the database's offsets
    publish(kafka_bootstrap, enc.change(Op.CREATE, None, notification_row(99, "late")))
    again = _sink(kafka_bootstrap, prefix, applier, group="g2")
    _drain(again, 1)
    again.close()
    assert again.stats.consumed == 1 and again.stats.applied == 1
    assert _rows(applier)[99] == "late"


def test_schemaless_events_apply_too(kafka_bootstrap: str, prefix: str,
                                     applier: SqlAlchemyApplier) -> None:
    enc = Encoder(prefix, schemas=False)
    publish(kafka_bootstrap, enc.change(Op.CREATE, None, notification_row(5, "bare")))
    sink = _sink(kafka_bootstrap, prefix, applier)
    _drain(sink, 1)
    sink.close()
    with applier.engine.connect() as conn:
        created = conn.execute(sa.text("SELECT created_at FROM notification")).scalar_one()
    assert _rows(applier) == {5: "bare"}
    assert str(created).startswith("2024-03-01 12:00:00.5")


def _dlq(bootstrap: str, topic: str, expected: int) -> list[Any]:
    consumer = KafkaConsumer({"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex,
                              "auto.offset.reset": "earliest", "session.timeout.ms": 6000})
    consumer.subscribe([topic])
    found: list[Any] = []
    deadline = time.monotonic() + 30
    try:
        while len(found) < expected and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                found.append(msg)
    finally:
        consumer.close()
    return found


def test_poison_events_go_to_the_dead_letter_topic_and_the_sink_keeps_going(
    kafka_bootstrap: str, prefix: str, applier: SqlAlchemyApplier
) -> None:
    enc = Encoder(prefix)
    topic = _topic(prefix)
    [(_, good_key, good_value)] = enc.change(Op.CREATE, None, notification_row(1, "first"))
    unknown = json.loads(enc.change(Op.CREATE, None, notification_row(2))[0][2] or b"")
    unknown["payload"]["after"]["colour"] = "red"
    not_null = json.loads(enc.change(Op.CREATE, None, notification_row(3))[0][2] or b"")
    not_null["schema"] = {}
    not_null["payload"]["after"]["subject"] = None  # NOT NULL in the service database
    records = [
        (topic, good_key, good_value),
        (topic, b'{"id": 9}', b"\x00not json at all"),
        (topic, b'{"id": 2}', json.dumps(unknown).encode()),
        (topic, b'{"id": 3}', json.dumps(not_null).encode()),
        *enc.change(Op.CREATE, None, notification_row(4, "after the poison")),
    ]
    publish(kafka_bootstrap, records)
    sink = _sink(kafka_bootstrap, prefix, applier)
    _drain(sink, 5)
    assert _rows(applier) == {1: "first", 4: "after the poison"}
    assert sink.stats.dead_lettered == {"undecodable": 1, "unknown_column": 1, "constraint": 1}
    [state] = applier.offsets()
    assert state.next_offset == 5  # the poison offsets are recorded: never re-read
    dead = _dlq(kafka_bootstrap, f"{topic}.dlq", 3)
    reasons = {}
    for msg in dead:
        headers = {k: v.decode() for k, v in msg.headers()}
        reasons[headers["strangler.error.reason"]] = (headers["strangler.original.offset"],
                                                      headers["strangler.error.message"])
    assert reasons["undecodable"][0] == "1" and "not JSON" in reasons["undecodable"][1]
    assert reasons["unknown_column"][0] == "2" and "colour" in reasons["unknown_column"][1]
    assert reasons["constraint"][0] == "3"
    assert re.search(r"not.null", reasons["constraint"][1], re.IGNORECASE)
    originals = {m.value() for m in dead}
    assert b"\x00not json at all" in originals  # the original bytes travel unchanged

    port = free_port()
    server = serve_health(sink, port)
    try:
        health = httpx.get(f"http://127.0.0.1:{port}/healthz").json()
        assert health["dead_lettered"] == 3 and health["status"] == "ok"
        assert health["lag_s"] > 0  # the events' source timestamps are in the past
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        assert ('strangler_sink_dead_letters_total{reason="constraint",sink="notifications"} '
                '1.0') in metrics
    finally:
        server.shutdown()
        server.server_close()
        sink.close()


@pytest.mark.parametrize("pipelined", [False, True], ids=["serial", "pipelined"])
def test_database_outage_rewinds_and_loses_nothing(
    kafka_bootstrap: str, prefix: str, applier: SqlAlchemyApplier, pipelined: bool
) -> None:
    """Also with the batch applied on the pipeline's thread while the next is planned (the
    default on PostgreSQL): the failed batch and the one planned behind it are re-read."""
    engine = applier.engine
    enc = Encoder(prefix)
    publish(kafka_bootstrap, [r for i in range(1, 6)
                              for r in enc.change(Op.CREATE, None, notification_row(i))])
    config = SinkConfig(bootstrap_servers=kafka_bootstrap, group_id=f"{prefix}-g1",
                        topics=(_topic(prefix),), batch_size=2, poll_timeout_s=0.2,
                        retry_pause_s=0.2, pipelined=pipelined)
    sink = SinkConsumer(config, applier)
    sink.assigned.clear()
    with engine.begin() as conn:  # the table vanishes: every write fails as a database error
        conn.execute(sa.text("ALTER TABLE notification RENAME TO notification_away"))
    stop = threading.Event()
    runner = threading.Thread(target=sink.run, args=(stop,))
    runner.start()
    deadline = time.monotonic() + 20
    while sink.stats.last_error is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sink.stats.last_error is not None and sink.stats.applied == 0
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE notification_away RENAME TO notification"))
    while sink.stats.applied < 5 and time.monotonic() < deadline:
        time.sleep(0.1)
    stop.set()
    runner.join()
    sink.close()
    assert sorted(_rows(applier)) == [1, 2, 3, 4, 5]
    assert sink.stats.dead_lettered.total() == 0
    [state] = applier.offsets()
    assert state.next_offset == 5


@pytest.mark.parametrize("pipelined", [False, True], ids=["serial", "pipelined"])
def test_run_applies_a_stream_in_order_pipelined_or_not(
    kafka_bootstrap: str, prefix: str, applier: SqlAlchemyApplier, pipelined: bool
) -> None:
    """Updates and deletes of rows created in earlier batches: with batches overlapping,
    each still commits after the one before it, so the final rows are the source's."""
    enc = Encoder(prefix)
    records = []
    for i in range(1, 41):
        records += enc.change(Op.CREATE, None, notification_row(i, f"v1-{i}"))
        if i % 4 == 0:
            records += enc.change(Op.UPDATE, notification_row(i - 2),
                                  notification_row(i - 2, f"v2-{i - 2}"))
        if i % 10 == 0:
            records += enc.change(Op.DELETE, notification_row(i - 5), None)
    publish(kafka_bootstrap, records)
    config = SinkConfig(bootstrap_servers=kafka_bootstrap, group_id=f"{prefix}-g1",
                        topics=(_topic(prefix),), batch_size=3, poll_timeout_s=0.2,
                        pipelined=pipelined)
    sink = SinkConsumer(config, applier)
    stop = threading.Event()
    runner = threading.Thread(target=sink.run, args=(stop,))
    runner.start()
    deadline = time.monotonic() + 30
    while sink.stats.consumed < len(records) and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    runner.join(30)
    sink.close()
    expected = {i: f"v1-{i}" for i in range(1, 41)}
    expected.update({i - 2: f"v2-{i - 2}" for i in range(4, 41, 4)})
    for i in range(10, 41, 10):
        del expected[i - 5]
    assert sink.stats.consumed == len(records)
    assert _rows(applier) == expected
    [state] = applier.offsets()
    assert state.next_offset == len(records)


def test_broker_gone_the_sink_waits_and_reports_instead_of_dying(
    prefix: str, tmp_path: Path
) -> None:
    from cdc.embedded_broker import EmbeddedBroker

    engine = sa.create_engine(engine_url(f"sqlite:///{tmp_path / 'svc.sqlite3'}"))
    Base.metadata.create_all(engine)
    applier = notifications_applier(engine)
    broker = EmbeddedBroker()
    broker.start()
    try:
        enc = Encoder(prefix)
        publish(broker.bootstrap_servers, enc.change(Op.CREATE, None, notification_row(1)))
        config = SinkConfig(bootstrap_servers=broker.bootstrap_servers,
                            group_id=f"{prefix}-g", topics=(_topic(prefix),),
                            poll_timeout_s=0.2, retry_pause_s=0.2)
        sink = SinkConsumer(config, applier)
        stop = threading.Event()
        runner = threading.Thread(target=sink.run, args=(stop,))
        runner.start()
        deadline = time.monotonic() + 30
        while sink.stats.applied < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _rows(applier) == {1: "Hello"}
        broker.stop()
        deadline = time.monotonic() + 30
        while sink.stats.last_error is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert runner.is_alive()  # still there, waiting for Kafka to come back
        assert sink.stats.last_error is not None
        stop.set()
        runner.join(30)
        assert not runner.is_alive()
    finally:
        broker.stop()
        engine.dispose()
