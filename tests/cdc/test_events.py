from __future__ import annotations

import pytest

from cdc.events import (
    Change,
    Column,
    Op,
    RecordKind,
    Table,
    heartbeat_record,
    heartbeat_topic,
    records_for,
    topic_name,
)
from cdc.positions import SourcePosition
from cdc.types import pg_column_type
from tests.cdc.debezium_docs import CONNECTOR, CUSTOMERS

POS = SourcePosition(24023119, 24023128)
ROW = {"id": 1, "first_name": "Anne", "last_name": "Kretchmar", "email": "annek@noanswer.org"}


def change(op: Op, before: dict[str, object] | None, after: dict[str, object] | None) -> Change:
    return Change(op, CUSTOMERS, before, after, POS, ts_us=1559033904863123, tx_id=555,
                  lsn=24023128)


def test_topic_names() -> None:
    assert topic_name("shop", "public", "orders_order") == "shop.public.orders_order"
    assert heartbeat_topic("shop") == "__debezium-heartbeat.shop"


def test_create_record_is_keyed_by_primary_key() -> None:
    [rec] = records_for(CONNECTOR, change(Op.CREATE, None, ROW), now_ns=1_559_033_904_863_841_257)
    assert rec.topic == "PostgreSQL_server.public.customers"
    assert rec.key == {"id": 1}
    assert rec.value is not None
    assert rec.value["op"] == "c"
    assert rec.value["after"] == ROW and rec.value["before"] is None
    assert (rec.value["ts_ms"], rec.value["ts_us"], rec.value["ts_ns"]) == (
        1559033904863, 1559033904863841, 1559033904863841257)
    source = rec.value["source"]
    assert source["ts_ms"] == 1559033904863 and source["ts_ns"] == 1559033904863123000
    assert source["sequence"] == '["24023119","24023128"]'
    assert source["snapshot"] == "false"
    assert (source["txId"], source["lsn"], source["xmin"]) == (555, 24023128, None)


def test_delete_is_followed_by_a_tombstone_with_the_same_key() -> None:
    recs = records_for(CONNECTOR, change(Op.DELETE, ROW, None), now_ns=0)
    assert [r.kind for r in recs] == [RecordKind.CHANGE, RecordKind.TOMBSTONE]
    assert recs[0].value is not None and recs[0].value["op"] == "d"
    assert recs[1].key == recs[0].key == {"id": 1}
    assert recs[1].value is None
    assert len(records_for(CONNECTOR, change(Op.DELETE, ROW, None), now_ns=0,
                           tombstones=False)) == 1


def test_primary_key_change_is_delete_tombstone_create() -> None:
    new = dict(ROW, id=2)
    recs = records_for(CONNECTOR, change(Op.UPDATE, ROW, new), now_ns=0)
    assert [(r.kind, r.key, r.value and r.value["op"]) for r in recs] == [
        (RecordKind.CHANGE, {"id": 1}, "d"),
        (RecordKind.TOMBSTONE, {"id": 1}, None),
        (RecordKind.CHANGE, {"id": 2}, "c"),
    ]
    assert recs[0].value is not None and recs[0].value["before"] == ROW
    assert recs[2].value is not None and recs[2].value["after"] == new
    assert recs[0].headers == (("__debezium.newkey", {"id": 2}),)
    assert recs[2].headers == (("__debezium.oldkey", {"id": 1}),)
    assert {r.position for r in recs} == {POS}


def test_update_keeping_the_key_is_one_record() -> None:
    [rec] = records_for(CONNECTOR, change(Op.UPDATE, None, dict(ROW, email="x")), now_ns=0)
    assert rec.value is not None and rec.value["op"] == "u" and rec.value["before"] is None


def test_truncate_has_no_key_and_no_row_images() -> None:
    [rec] = records_for(CONNECTOR, change(Op.TRUNCATE, None, None), now_ns=0)
    assert rec.key is None
    assert rec.value is not None
    assert (rec.value["op"], rec.value["before"], rec.value["after"]) == ("t", None, None)


def test_heartbeat_record() -> None:
    rec = heartbeat_record("shop", now_ms=5)
    assert (rec.topic, rec.key, rec.value) == (
        "__debezium-heartbeat.shop", {"serverName": "shop"}, {"ts_ms": 5})


def test_table_without_key_is_refused() -> None:
    with pytest.raises(ValueError, match="primary key"):
        Table("public", "t", (Column("a", pg_column_type(23)),), key=())
    with pytest.raises(ValueError, match="not columns"):
        Table("public", "t", (Column("a", pg_column_type(23)),), key=("b",))
