from __future__ import annotations

import base64
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest

from cdc.errors import DecodeError, DeliveryFailed, OffsetStoreError
from cdc.events import Connector, Record, RecordKind
from cdc.offsets import MemoryOffsetStore
from cdc.sources.sqlite import txids
from cdc.sources.sqlite.relay import Relay
from tests.cdc_sqlite.fakes import FakePublisher
from tests.cdc_sqlite.schema import changelog, connect, create

NAME = "sqlite:test"
CONNECTOR = Connector("sqlite", name="shop", db="shop")


@pytest.fixture
def db(tmp_path: Path) -> sqlite3.Connection:
    create(tmp_path / "shop.sqlite3")
    return connect(tmp_path / "shop.sqlite3")


def relay_for(
    db: sqlite3.Connection, publisher: FakePublisher, offsets: MemoryOffsetStore | None = None
) -> Relay:
    store = offsets or MemoryOffsetStore()
    if store.load(NAME) is None:
        store.save(NAME, {"changelog_id": 0})
    return Relay(db, CONNECTOR, publisher, store, name=NAME, batch_size=100)


def test_events_carry_images_positions_and_txids(db: sqlite3.Connection) -> None:
    with txids.capture_transaction(db) as tx:
        db.execute(
            "INSERT INTO shop_product (name, price, active, created_at, picture)"
            " VALUES ('mug', 19.99, 1, '2024-05-01 10:00:00', x'cafe')"
        )
        db.execute("UPDATE shop_product SET price = 10, active = 0")
    with txids.capture_transaction(db) as tx2:
        db.execute("DELETE FROM shop_product")
    publisher = FakePublisher()
    relay = relay_for(db, publisher)
    assert relay.step() == 3
    kinds = [(r.kind, r.value["op"] if r.value else None) for r in publisher.records]
    assert kinds == [
        (RecordKind.CHANGE, "c"), (RecordKind.CHANGE, "u"), (RecordKind.CHANGE, "d"),
        (RecordKind.TOMBSTONE, None),
    ]
    create_, update, delete = publisher.changes()
    assert create_["after"]["price"] == base64.b64encode((1999).to_bytes(2, "big")).decode()
    assert create_["after"]["active"] is True
    assert create_["after"]["created_at"] == "2024-05-01T10:00:00.000000Z"
    assert create_["after"]["picture"] == base64.b64encode(b"\xca\xfe").decode()
    assert update["before"]["active"] is True and update["after"]["active"] is False
    assert delete["before"]["id"] == 1 and delete["after"] is None
    assert [e["source"]["txId"] for e in (create_, update, delete)] == [tx, tx, tx2]
    assert [e["source"]["lsn"] for e in (create_, update, delete)] == [1, 2, 3]
    assert [e["source"]["sequence"] for e in (create_, update, delete)] == [
        '["1","1"]', '["2","2"]', '["3","3"]'
    ]
    assert create_["source"]["connector"] == "sqlite"
    assert create_["source"]["schema"] == "main" and create_["source"]["table"] == "shop_product"
    assert publisher.records[-1].key == {"id": 1}
    assert publisher.records[0].topic == "shop.main.shop_product"


def test_publish_then_record_offset_then_prune(db: sqlite3.Connection) -> None:
    db.execute("INSERT INTO shop_note VALUES (1, 'a')")
    db.execute("INSERT INTO shop_note VALUES (2, 'b')")
    offsets = MemoryOffsetStore()
    seen: list[tuple[object, int]] = []

    def at_publish(_records: Sequence[Record]) -> None:
        seen.append((offsets.load(NAME), len(changelog(db))))

    relay = relay_for(db, FakePublisher(at_publish), offsets)
    relay.step()
    assert seen == [({"changelog_id": 0}, 2)]  # offset not yet moved, nothing pruned
    assert offsets.load(NAME) is not None and offsets.load(NAME)["changelog_id"] == 2  # type: ignore[index]
    assert changelog(db) == []


def test_failed_delivery_records_nothing_and_resends(db: sqlite3.Connection) -> None:
    db.execute("INSERT INTO shop_note VALUES (1, 'a')")
    publisher = FakePublisher()
    offsets = MemoryOffsetStore()
    relay = relay_for(db, publisher, offsets)
    publisher.fail_next = True
    with pytest.raises(DeliveryFailed):
        relay.step()
    assert offsets.load(NAME) == {"changelog_id": 0}
    assert len(changelog(db)) == 1
    assert relay.step() == 1
    assert [e["source"]["lsn"] for e in publisher.changes()] == [1]


class CrashingOffsets(MemoryOffsetStore):
    crash = True

    def save(self, name: str, offset: object) -> None:  # type: ignore[override]
        if self.crash and offset != {"changelog_id": 0}:
            raise OffsetStoreError("disk full")
        super().save(name, offset)  # type: ignore[arg-type]


def test_crash_between_publish_and_offset_resends_with_same_positions(
    db: sqlite3.Connection,
) -> None:
    db.execute("INSERT INTO shop_note VALUES (1, 'a')")
    offsets = CrashingOffsets()
    publisher = FakePublisher()
    relay = relay_for(db, publisher, offsets)
    with pytest.raises(OffsetStoreError):
        relay.step()
    assert len(changelog(db)) == 1  # not pruned: not recorded
    offsets.crash = False
    db.execute("INSERT INTO shop_note VALUES (2, 'b')")
    relay.step()
    positions = [e["source"]["sequence"] for e in publisher.changes()]
    assert positions == ['["1","1"]', '["1","1"]', '["2","2"]']


def test_poison_row_stops_before_anything_after_it(db: sqlite3.Connection) -> None:
    db.execute("INSERT INTO shop_note VALUES (1, 'a')")
    db.execute(
        "INSERT INTO shop_product (name, price, active, created_at)"
        " VALUES ('x', 1, 1, 'not a date')"
    )
    db.execute("INSERT INTO shop_note VALUES (2, 'b')")
    publisher = FakePublisher()
    offsets = MemoryOffsetStore()
    relay = relay_for(db, publisher, offsets)
    with pytest.raises(DecodeError, match=r"changelog row 2 \(shop_product.*created_at"):
        relay.step()
    assert publisher.records == []
    assert offsets.load(NAME) == {"changelog_id": 0}
    assert len(changelog(db)) == 3


def test_primary_key_change_is_delete_tombstone_create(db: sqlite3.Connection) -> None:
    db.execute("INSERT INTO shop_note VALUES (1, 'a')")
    db.execute("UPDATE shop_note SET id = 5")
    publisher = FakePublisher()
    relay_for(db, publisher).step()
    ops = [(r.kind, r.key, r.value and r.value["op"]) for r in publisher.records]
    assert ops == [
        (RecordKind.CHANGE, {"id": 1}, "c"),
        (RecordKind.CHANGE, {"id": 1}, "d"),
        (RecordKind.TOMBSTONE, {"id": 1}, None),
        (RecordKind.CHANGE, {"id": 5}, "c"),
    ]


def test_batches_follow_id_order_and_never_skip(db: sqlite3.Connection) -> None:
    for i in range(250):
        db.execute("INSERT INTO shop_note VALUES (?, 'x')", (i,))
    publisher = FakePublisher()
    relay = relay_for(db, publisher)
    assert [relay.step() for _ in range(4)] == [100, 100, 50, 0]
    assert [e["source"]["lsn"] for e in publisher.changes()] == list(range(1, 251))


def test_missing_offset_is_a_clear_error(db: sqlite3.Connection) -> None:
    relay = Relay(db, CONNECTOR, FakePublisher(), MemoryOffsetStore(), name=NAME)
    with pytest.raises(Exception, match="no offset recorded"):
        relay.step()


def test_idle_relay_sends_heartbeats(db: sqlite3.Connection) -> None:
    now = [1000.0]
    publisher = FakePublisher()
    store = MemoryOffsetStore()
    store.save(NAME, {"changelog_id": 0})
    relay = Relay(
        db, CONNECTOR, publisher, store, name=NAME, heartbeat_interval_s=5,
        clock=lambda: now[0],
    )
    relay.step()
    assert publisher.records == []
    now[0] += 6
    relay.step()
    assert [r.topic for r in publisher.records] == ["__debezium-heartbeat.shop"]
