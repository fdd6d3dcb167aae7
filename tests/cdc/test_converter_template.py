"""The publisher's template path writes exactly the JSON of the generic path."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from cdc.converter import JsonConverter
from cdc.events import Change, Column, Connector, Op, Table, records_for, topic_name
from cdc.positions import SourcePosition
from cdc.types import pg_column_type

ODD = Table("we%ird", 'ta"ble%s', (Column("id", pg_column_type(23), optional=False),
                                    Column("n%d", pg_column_type(25))), key=("id",))


@pytest.mark.parametrize("schemas", [True, False])
@pytest.mark.parametrize(
    ("op", "before", "after", "extra"),
    [
        (Op.CREATE, None, {"id": 1, "n%d": "x%s\"y"}, {}),
        (Op.UPDATE, None, {"id": 1, "n%d": None}, {"tx_id": None, "lsn": None}),
        (Op.UPDATE, {"id": 1, "n%d": "a"}, {"id": 1, "n%d": "b"},
         {"transaction": {"id": "5:9", "total_order": 1, "data_collection_order": 1}}),
        (Op.READ, None, {"id": 2, "n%d": "r"}, {"snapshot": "last"}),
    ],
)
def test_template_equals_generic(schemas: bool, op: Op, before: Any, after: Any,
                                 extra: dict[str, Any]) -> None:
    connector = Connector("postgresql", name="sh%op", db='d"b')
    kw: dict[str, Any] = {"tx_id": 77, "lsn": 1234, **extra}
    change = Change(op, ODD, before, after, SourcePosition(1000, 1234), ts_us=1_700_000_000_123_456,
                    **kw)
    conv = JsonConverter(schemas_enable=schemas)
    [rec] = records_for(connector, change, now_ns=1_700_000_001_000_000_007)
    key, value = conv.serialize(rec)
    fast = conv.change_value(connector, change, before, after, op.value, 1_700_000_001_000_000_007)
    assert orjson.loads(fast) == orjson.loads(value or b"")
    topic = topic_name(connector.name, ODD.schema, ODD.name)
    assert conv.key_bytes(topic, ODD, {"id": after["id"]}) == key
