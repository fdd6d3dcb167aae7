import pytest

from cdc.sinks.mapping import MappingError, sink_mapping


def test_short_and_long_forms() -> None:
    mapping = sink_mapping(
        {
            "notifications_notification": "notification",
            "public.customers": {
                "model": "customer",
                "key": "id",
                "rename": {"first_name": "given_name"},
                "transform": {"email": "lower"},
                "ignore": ["last_name"],
            },
        }
    )
    assert mapping.models == ("notification", "customer")
    customers = mapping.for_source("public", "customers")
    assert customers is not None and customers.target_column("first_name") == "given_name"
    assert mapping.for_source("other", "customers") is None
    assert mapping.for_source("public", "notifications_notification") is not None


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        ({}, "non-empty"),
        ({"t": 3}, "tables.t: expected a model name"),
        ({"t": {"model": "m", "colour": 1}}, "unknown key 'colour'"),
        ({"t": {"key": ["id"]}}, r"tables.t.model: required"),
        ({"t": {"model": "m", "transform": {"x": "rot13"}}}, "unknown transform 'rot13'"),
        ({"a": "m", "b": "m"}, "target of two tables"),
    ],
)
def test_invalid_mappings_name_the_bad_key(tables: object, message: str) -> None:
    with pytest.raises(MappingError, match=message):
        sink_mapping(tables)


def test_bind_refuses_missing_model_or_column() -> None:
    mapping = sink_mapping({"t": {"model": "m", "rename": {"a": "b"}}})
    with pytest.raises(MappingError, match="unknown model 'm'"):
        mapping.bind({})
    with pytest.raises(MappingError, match="no column 'b'"):
        mapping.bind({"m": {"id": "int"}})
    bound = mapping.bind({"m": {"id": "int", "b": "str"}})
    assert bound.tables[0].columns == {"id": "int", "b": "str"}
