"""The Kafka boundary against the real embedded broker."""

from __future__ import annotations

import time
import uuid

import pytest

from cdc.embedded_broker import free_port
from cdc.errors import BrokerUnavailable, DeliveryFailed
from cdc.kafka import Consumer, Message, Producer, ensure_topics


def _drain(consumer: Consumer, count: int, timeout_s: float = 30.0) -> list[Message]:
    out: list[Message] = []
    deadline = time.monotonic() + timeout_s
    while len(out) < count and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None:
            out.append(msg)
    return out


def test_produce_confirms_and_consumer_reads_keys_values_headers(kafka_bootstrap: str) -> None:
    topic = f"t.{uuid.uuid4().hex[:8]}"
    producer = Producer(kafka_bootstrap)
    producer.check()
    producer.ensure_topic(topic)
    confirmed: list[int] = []
    for i in range(5):
        producer.produce(topic, f"k{i}".encode(), f"v{i}".encode(),
                         lambda i=i: confirmed.append(i), headers=[("h", b"x")])
    producer.produce(topic, b"k0", None, lambda: confirmed.append(-1))
    producer.flush(10)
    assert sorted(confirmed) == [-1, 0, 1, 2, 3, 4]
    consumer = Consumer(kafka_bootstrap, group_id=f"g{uuid.uuid4().hex[:6]}", topics=[topic])
    try:
        got = _drain(consumer, 6)
        consumer.commit(got[-1])
    finally:
        consumer.close()
    assert [(m.key, m.value) for m in got] == [
        *[(f"k{i}".encode(), f"v{i}".encode()) for i in range(5)], (b"k0", None)]
    assert got[0].headers == (("h", b"x"),)


def test_ensure_topics_is_idempotent(kafka_bootstrap: str) -> None:
    topic = f"t.{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka_bootstrap, [topic, topic])
    ensure_topics(kafka_bootstrap, [topic])


def test_unreachable_broker_is_a_clear_error() -> None:
    dead = f"127.0.0.1:{free_port()}"
    producer = Producer(dead, message_timeout_s=1.0)
    with pytest.raises(BrokerUnavailable, match=f"Kafka at {dead} did not answer"):
        producer.check(timeout_s=1.0)


def test_undelivered_record_fails_and_is_never_confirmed() -> None:
    producer = Producer(f"127.0.0.1:{free_port()}", message_timeout_s=1.0)
    confirmed: list[int] = []
    producer.produce("t", b"k", b"v", lambda: confirmed.append(1))
    with pytest.raises(DeliveryFailed, match="did not confirm a record for t"):
        producer.flush(10)
    assert confirmed == []
