"""The hot path counts every record on its transaction: the position is released only
when Kafka confirmed all of them, and a failed record stops everything after it."""

from __future__ import annotations

from typing import Any

import pytest

from cdc.converter import JsonConverter, unwrap
from cdc.delivery import AckTracker
from cdc.errors import DeliveryFailed
from cdc.events import Connector
from cdc.kafka import Producer
from cdc.sources.postgres.capture import ChangeAssembler, TableFacts
from cdc.sources.postgres.decode import decode
from cdc.sources.postgres.fastpath import OneRecordPath
from tests.cdc.sources import pgoutput_bytes as w

TS = 1_700_000_000_000_000
COLS = [(True, "id", 23, -1), (False, "name", 25, -1)]


class _Client:
    """Stands in for confluent_kafka.Producer: keeps what was produced, confirms later."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes, Any]] = []

    def produce(self, topic: str, value: bytes, key: bytes, partition: int = -1,
                on_delivery: Any = None) -> None:
        self.sent.append((topic, value, key, on_delivery))

    def poll(self, timeout: float = 0) -> int:
        return 0


class _Error:
    def name(self) -> str:
        return "_MSG_TIMED_OUT"

    def str(self) -> str:
        return "Local: Message timed out"


class _Msg:
    def topic(self) -> str:
        return "shop.public.items"


def _setup() -> tuple[OneRecordPath, ChangeAssembler, _Client, Producer]:
    producer = Producer("127.0.0.1:1")
    client = _Client()
    producer._producer = client  # no broker: the test plays Kafka's confirmations
    producer._known_topics.add("shop.public.items")
    assembler = ChangeAssembler(lambda *_: TableFacts(("id",), frozenset({"id"})))
    assembler.feed(decode(w.relation(7, "public", "items", "d", COLS)), 0)
    path = OneRecordPath(assembler, producer, JsonConverter(),
                         Connector("postgresql", name="shop", db="shop"))
    return path, assembler, client, producer


def test_position_released_only_after_every_record_confirmed() -> None:
    path, assembler, client, producer = _setup()
    tracker: AckTracker[int] = AckTracker()
    assembler.feed(decode(w.begin(500, TS, 9)), 10)
    txn = tracker.begin()
    for i, lsn in ((1, 20), (2, 30), (3, 40)):
        assert path.handle(w.insert(7, str(i), "n"), lsn, txn)
    assert path.handle(w.update(7, ("1", "m")), 50, txn)  # no before image: one record
    tracker.commit(txn, 548)
    assert len(client.sent) == 4 and tracker.ready() is None
    assert [unwrap(key) for _, _, key, _ in client.sent] == [{"id": 1}, {"id": 2}, {"id": 3},
                                                           {"id": 1}]
    assert [unwrap(value)["op"] for _, value, _, _ in client.sent] == ["c", "c", "c", "u"]
    for _, _, _, confirm in client.sent[:3]:
        confirm(None, _Msg())
        assert tracker.ready() is None
    client.sent[3][3](None, _Msg())
    assert tracker.ready() == 548 and producer.confirmed == 4
    assert path.sent == {"c": 3, "u": 1}


def test_failed_record_keeps_the_transaction_and_stops_the_runner() -> None:
    path, assembler, client, producer = _setup()
    tracker: AckTracker[int] = AckTracker()
    assembler.feed(decode(w.begin(500, TS, 9)), 10)
    txn = tracker.begin()
    assert path.handle(w.insert(7, "1", "n"), 20, txn)
    assert path.handle(w.insert(7, "2", "n"), 30, txn)
    tracker.commit(txn, 548)
    client.sent[0][3](_Error(), _Msg())
    client.sent[1][3](None, _Msg())
    assert tracker.ready() is None
    with pytest.raises(DeliveryFailed, match="did not confirm a record"):
        producer.poll(0)


def test_messages_it_cannot_take_go_the_general_way() -> None:
    path, assembler, client, _ = _setup()
    tracker: AckTracker[int] = AckTracker()
    assembler.feed(decode(w.begin(500, TS, 9)), 10)
    txn = tracker.begin()
    assert not path.handle(w.update(7, ("1", "b"), old=("1", "a")), 20, txn)  # before image
    assert not path.handle(w.delete(7, ("1", None)), 20, txn)
    assert not path.handle(w.insert(8, "1", "x"), 20, txn)  # relation never announced
    assert not path.handle(w.update(7, ("1", b"u")), 20, txn)  # unchanged TOAST value
    assert client.sent == [] and txn.pending == 0
