import base64
import json

import pytest

from cdc.sinks.mapping import sink_mapping
from cdc.sinks.planner import (
    Delete,
    PoisonEvent,
    Skip,
    Truncate,
    Upsert,
    collapse,
    plan_event,
)
from cdc.sinks.position import Position
from tests.sinks.debezium_fixtures import load, raw

CUSTOMERS = sink_mapping({"customers": "customer"}).bind(
    {"customer": {"id": "int", "first_name": "str", "last_name": "str", "email": "str"}}
)
TOPIC = "PostgreSQL_server.public.customers"


def test_documented_create_with_schema_wrapper_upserts() -> None:
    write = plan_event(CUSTOMERS, raw("pg-create.value.json"), topic=TOPIC)
    assert write == Upsert(
        "customer",
        (1,),
        {"id": 1, "first_name": "Anne", "last_name": "Kretchmar", "email": "annek@noanswer.org"},
        Position(24023119, 24023128),
        1559033904863,
    )


def test_documented_update_delete_truncate() -> None:
    update = plan_event(CUSTOMERS, raw("pg-update.value.json"))
    assert isinstance(update, Upsert) and update.row["first_name"] == "Anne Marie"
    delete = plan_event(CUSTOMERS, raw("pg-delete.value.json"))
    assert delete == Delete("customer", (1,), Position(46523128, 46523128), 1559033904863)
    truncate = plan_event(CUSTOMERS, raw("pg-truncate.value.json"))
    assert truncate == Truncate("customer", Position(46523128, 46523128), 1559033904863)


def test_documented_tombstone_deletes_by_key_from_topic() -> None:
    key = {"schema": {"type": "struct", "fields": [{"type": "int32", "field": "id"}]},
           "payload": {"id": 1}}
    write = plan_event(CUSTOMERS, raw("pg-tombstone.value.json"), key=json.dumps(key),
                       topic=TOPIC)
    assert write == Delete("customer", (1,), None)
    # the documented key example quotes the int32 id as a string; coercion repairs it
    write = plan_event(CUSTOMERS, None, key=raw("pg-create.key.json"), topic=TOPIC)
    assert write == Delete("customer", (1,), None)


def test_markers_messages_and_other_tables_are_skipped() -> None:
    assert plan_event(CUSTOMERS, raw("pg-tx-begin.value.json")) == Skip("transaction marker")
    assert plan_event(CUSTOMERS, raw("pg-tx-end.value.json")) == Skip("transaction marker")
    assert plan_event(CUSTOMERS, raw("pg-message.value.json")) == Skip("logical message")
    assert plan_event(CUSTOMERS, b"{\"ts_ms\": 1}") == Skip("heartbeat", 1)
    other = sink_mapping({"orders": "order"})
    assert plan_event(other, raw("pg-create.value.json")) == Skip("unmapped table customers")


def test_schemaless_serde_examples() -> None:
    mapping = sink_mapping({"customers": "customer"})  # unbound: values pass as they are
    create = plan_event(mapping, raw("serde-without-schema.json"))
    assert isinstance(create, Upsert) and create.key == (1004,)
    with_schema = plan_event(mapping, raw("serde-with-schema.json"))
    assert isinstance(with_schema, Upsert) and with_schema.row == create.row
    update = plan_event(mapping, load("serde-update.json"))  # MySQL: binlog coordinates
    assert isinstance(update, Upsert) and update.position == create.position


def test_snapshot_read_upserts_and_renames_transforms_apply() -> None:
    mapping = sink_mapping(
        {"customers": {"model": "customer", "rename": {"first_name": "given"},
                       "transform": {"email": "upper"}, "ignore": ["last_name"]}}
    ).bind({"customer": {"id": "int", "given": "str", "email": "str"}})
    event = load("pg-create.value.json")
    event["payload"]["op"] = "r"
    write = plan_event(mapping, event)
    assert isinstance(write, Upsert)
    assert write.row == {"id": 1, "given": "Anne", "email": "ANNEK@NOANSWER.ORG"}


def _decimal_event(encoded: object) -> dict[str, object]:
    return {
        "schema": {"type": "struct", "fields": [
            {"type": "struct", "field": "after", "fields": [
                {"type": "int32", "field": "id"},
                {"type": "bytes", "field": "price", "name": "org.apache.kafka.connect.data.Decimal",
                 "parameters": {"scale": "2"}},
            ]},
        ]},
        "payload": {"op": "c", "before": None, "after": {"id": 7, "price": encoded},
                    "source": {"table": "products", "schema": "public", "lsn": 10}},
    }


def test_decimals_decode_from_schema() -> None:
    mapping = sink_mapping({"products": "product"}).bind({"product": {"id": "int",
                                                                     "price": "decimal"}})
    price = base64.b64encode((1999).to_bytes(2, "big", signed=True)).decode()
    write = plan_event(mapping, _decimal_event(price))
    assert isinstance(write, Upsert) and str(write.row["price"]) == "19.99"


@pytest.mark.parametrize(
    ("value", "reason", "message"),
    [
        (b"{nope", "undecodable", "not JSON"),
        (b"[1, 2]", "undecodable", "not an object"),
        (b'{"op": "c", "after": {"id": 1}}', "undecodable", "no source.table"),
        (b'{"op": "x", "source": {"table": "customers", "lsn": 1}}', "undecodable",
         "unknown op 'x'"),
        (b'{"op": "c", "after": {"id": 1, "shoe_size": 4}, "source": {"table": "customers",'
         b' "lsn": 1}}', "unknown_column", "shoe_size"),
        (b'{"op": "c", "after": {"first_name": "x"}, "source": {"table": "customers",'
         b' "lsn": 1}}', "missing_key", "key column 'id'"),
        (b'{"op": "c", "after": {"id": "one"}, "source": {"table": "customers", "lsn": 1}}',
         "undecodable", "integer"),
        (b'{"before": null}', "undecodable", "no 'op'"),
    ],
)
def test_poison_events_say_why(value: bytes, reason: str, message: str) -> None:
    with pytest.raises(PoisonEvent, match=message) as caught:
        plan_event(CUSTOMERS, value)
    assert caught.value.reason == reason


def test_poison_decimal() -> None:
    mapping = sink_mapping({"products": "product"}).bind({"product": {"id": "int",
                                                                     "price": "decimal"}})
    with pytest.raises(PoisonEvent, match="base64"):
        plan_event(mapping, _decimal_event("%%%"))


def test_collapse_keeps_newest_per_row_and_splits_at_truncate() -> None:
    p = Position
    a1 = Upsert("m", (1,), {"v": 1}, p(1, 1))
    a2 = Upsert("m", (1,), {"v": 2}, p(2, 2))
    dup = Upsert("m", (1,), {"v": 1}, p(1, 1))  # a replayed older event
    b = Upsert("m", (2,), {"v": 9}, p(3, 3))
    t = Truncate("m", p(4, 4))
    a3 = Delete("m", (1,), p(5, 5))
    tomb = Delete("m", (1,), None)
    assert collapse([a1, a2, dup, b, t, a3, tomb]) == [[a2, b], [t], [tomb]]


def test_unchanged_toast_columns_are_left_out() -> None:
    event = {"op": "u", "after": {"id": 1, "first_name": "A", "last_name": "K",
                                  "email": "__debezium_unavailable_value"},
             "source": {"table": "customers", "lsn": 5}}
    write = plan_event(CUSTOMERS, event)
    assert isinstance(write, Upsert) and "email" not in write.row


def test_compact_and_pretty_documents_plan_the_same() -> None:
    import sqlalchemy as sa

    from cdc.events import Op
    from extracted.notifications.models import DEFAULT_TABLES
    from extracted.notifications.sink import notifications_applier
    from tests.sinks.encode import Encoder, notification_row

    engine = sa.create_engine("sqlite://")
    mapping = notifications_applier(engine, DEFAULT_TABLES).mapping
    [(_topic, _key, compact)] = Encoder("p").change(Op.CREATE, None, notification_row(3))
    assert compact is not None and compact.startswith(b'{"schema":')  # the cached fast path
    pretty = json.dumps(json.loads(compact), indent=2).encode()
    assert plan_event(mapping, compact) == plan_event(mapping, pretty)
    # a different schema under the same table is decoded with its own schema, not the cache
    changed = json.loads(compact)
    for field in changed["schema"]["fields"][1]["fields"]:
        if field["field"] == "created_at":
            field.update({"type": "int64", "name": "io.debezium.time.MicroTimestamp"})
    changed["payload"]["after"]["created_at"] = 1_700_000_000_000_000
    write = plan_event(mapping, json.dumps(changed, separators=(",", ":")).encode())
    assert isinstance(write, Upsert)
    assert str(write.row["created_at"]) == "2023-11-14 22:13:20"
    engine.dispose()
