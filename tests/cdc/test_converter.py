"""The JSON converter, checked against Debezium's documented example events."""

from __future__ import annotations

from typing import Any

import orjson

from cdc.converter import JsonConverter, unwrap
from cdc.events import Change, Op, Record, heartbeat_record, records_for
from cdc.positions import SourcePosition
from tests.cdc.debezium_docs import CONNECTOR, CUSTOMERS, json_kind, load

POS = SourcePosition(24023119, 24023128)
ROW = {"id": 1, "first_name": "Anne", "last_name": "Kretchmar", "email": "annek@noanswer.org"}


def one(op: Op, before: Any, after: Any, **kw: Any) -> list[Record]:
    change = Change(op, CUSTOMERS, before, after, POS, ts_us=1559033904863123, tx_id=555,
                    lsn=24023128, **kw)
    return records_for(CONNECTOR, change, now_ns=1559033904863841257)


def serialize(rec: Record, schemas: bool = True) -> tuple[Any, Any]:
    key, value = JsonConverter(schemas_enable=schemas).serialize(rec)
    return (
        None if key is None else orjson.loads(key),
        None if value is None else orjson.loads(value),
    )


def strip_field_shape(fields: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(f["field"], f["type"], f["optional"]) for f in fields]


def test_create_event_matches_the_documented_schema_and_payload() -> None:
    doc = load("pg-create.value.json")
    [rec] = one(Op.CREATE, None, ROW)
    key, value = serialize(rec)
    schema, payload = value["schema"], value["payload"]
    doc_fields = {f["field"]: f for f in doc["schema"]["fields"]}
    ours = {f["field"]: f for f in schema["fields"]}
    # same envelope fields in the same order; real output adds the optional `transaction`
    assert [f for f in ours if f != "transaction"] == list(doc_fields)
    for row in ("before", "after"):
        assert strip_field_shape(ours[row]["fields"]) == strip_field_shape(
            doc_fields[row]["fields"])
        assert ours[row]["optional"] is True
        # documented deviation: the docs name it ...inventory.customers; the connector
        # uses <prefix>.<schema>.<table>
        assert ours[row]["name"] == "PostgreSQL_server.public.customers.Value"
    assert schema["name"] == "PostgreSQL_server.public.customers.Envelope"
    source_doc = {f["field"]: f for f in doc_fields["source"]["fields"]}
    source_ours = {f["field"]: f for f in ours["source"]["fields"]}
    assert source_ours["snapshot"]["name"] == "io.debezium.data.Enum"  # not the docs' boolean
    assert set(source_ours) == set(source_doc) | {"sequence"}
    for name, field in source_doc.items():
        if name not in ("snapshot", "ts_us", "ts_ns"):  # known deviations, _known_deviations.json
            assert (field["type"], field["optional"]) == (
                source_ours[name]["type"], source_ours[name]["optional"]), name
    assert ours["source"]["name"] == "io.debezium.connector.postgresql.Source"
    for top in ("op", "ts_ms", "ts_us", "ts_ns"):
        assert ours[top] == doc_fields[top]
    # payload: same keys and JSON types as the docs, the documented values where they
    # are the row's, and the string snapshot enum instead of the docs' boolean
    doc_payload = doc["payload"]
    assert set(payload) == set(doc_payload) | {"transaction"}
    assert payload["after"] == doc_payload["after"]
    assert set(payload["source"]) == set(doc_payload["source"])
    for name, value_ in doc_payload["source"].items():
        if name != "snapshot":
            assert json_kind(payload["source"][name]) == json_kind(value_), name
    assert payload["source"]["snapshot"] == "false"
    assert payload["source"]["sequence"] == doc_payload["source"]["sequence"]
    # the key: JsonConverter's shape (the docs' key example is not; see EDITS.md)
    assert key == {
        "schema": {
            "type": "struct",
            "fields": [{"type": "int32", "optional": False, "field": "id"}],
            "optional": False,
            "name": "PostgreSQL_server.public.customers.Key",
        },
        "payload": {"id": 1},
    }
    assert load("pg-create.key.json")["schema"]["name"] == key["schema"]["name"]


def _payload_matches(ours: dict[str, Any], doc: dict[str, Any]) -> None:
    assert set(ours) - {"transaction"} == set(doc)
    assert set(ours["source"]) == set(doc["source"]) | {"sequence"}
    for name, value_ in doc["source"].items():
        if name != "snapshot":
            assert json_kind(ours["source"][name]) == json_kind(value_), name
    for name in ("op", "ts_ms", "ts_us", "ts_ns"):
        assert json_kind(ours[name]) == json_kind(doc[name])


def test_update_delete_truncate_payloads_have_the_documented_shape() -> None:
    doc_update = load("pg-update.value.json")["payload"]
    [upd] = one(Op.UPDATE, None, dict(ROW, first_name="Anne Marie"))
    _, value = serialize(upd)
    _payload_matches(value["payload"], doc_update)
    assert value["payload"]["after"] == doc_update["after"]
    assert value["payload"]["op"] == "u"

    doc_delete = load("pg-delete.value.json")["payload"]
    delete, tombstone = one(Op.DELETE, ROW, None)
    _, value = serialize(delete)
    _payload_matches(value["payload"], doc_delete)
    assert value["payload"]["before"]["id"] == doc_delete["before"]["id"]
    key, tomb = serialize(tombstone)
    assert tomb is None and load("pg-tombstone.value.json") is None
    assert key["payload"] == {"id": 1}

    [trunc] = one(Op.TRUNCATE, None, None)
    _, value = serialize(trunc)
    doc_trunc = load("pg-truncate.value.json")["payload"]
    assert set(value["payload"]) - {"before", "after", "transaction"} == set(doc_trunc)
    assert value["payload"]["op"] == "t"


def test_transaction_block_has_the_documented_fields() -> None:
    doc = load("pg-tx-enriched.value.json")
    block = {"id": "571:53195832", "total_order": 1, "data_collection_order": 1}
    [rec] = one(Op.CREATE, None, ROW, transaction=block)
    _, value = serialize(rec, schemas=False)
    assert set(value["transaction"]) == set(doc["transaction"])
    assert set(value) == set(doc)


def test_without_schemas_the_payload_is_bare_like_debeziums_serde_example() -> None:
    [rec] = one(Op.CREATE, None, ROW)
    key, value = serialize(rec, schemas=False)
    assert key == {"id": 1}
    doc = load("serde-without-schema.json")
    assert {"op", "ts_ms", "before", "after", "source"} <= set(value)
    assert set(load("serde-with-schema.json")) == {"schema", "payload"}
    assert value["after"].keys() == doc["after"].keys()


def test_unwrap_reads_both_forms() -> None:
    [rec] = one(Op.CREATE, None, ROW)
    with_schema = JsonConverter(schemas_enable=True).serialize(rec)[1]
    bare = JsonConverter(schemas_enable=False).serialize(rec)[1]
    assert unwrap(with_schema) == unwrap(bare)
    assert unwrap(None) is None


def test_heartbeat_serialization() -> None:
    key, value = serialize(heartbeat_record("shop", now_ms=7))
    assert key["payload"] == {"serverName": "shop"}
    assert key["schema"]["name"] == "io.debezium.connector.common.ServerNameKey"
    assert value["payload"] == {"ts_ms": 7}


def test_key_change_headers_are_json() -> None:
    recs = one(Op.UPDATE, ROW, dict(ROW, id=2))
    conv = JsonConverter()
    assert conv.headers(recs[0]) == [("__debezium.newkey", b'{"id":2}')]
