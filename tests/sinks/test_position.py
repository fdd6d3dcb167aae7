import pytest

from cdc.sinks.position import Position, PositionError, position_of
from tests.sinks.debezium_fixtures import load


def test_documented_events_order_create_update_delete() -> None:
    create = position_of(load("pg-create.value.json")["payload"]["source"])
    update = position_of(load("pg-update.value.json")["payload"]["source"])
    delete = position_of(load("pg-delete.value.json")["payload"]["source"])
    assert create == Position(24023119, 24023128)  # from source.sequence
    assert update == Position(24023128, 24023128)  # no sequence: lsn
    assert create < update < delete


def test_round_trip_and_errors() -> None:
    assert Position.parse(str(Position(5, 9))) == Position(5, 9)
    with pytest.raises(PositionError, match="COMMIT:CHANGE"):
        Position.parse("oops")
    with pytest.raises(PositionError, match="no source position"):
        position_of({"table": "t"})
    with pytest.raises(PositionError, match="pair"):
        position_of({"sequence": '["1"]'})
    assert position_of({"sequence": '[null, "42"]'}) == Position(42, 42)
