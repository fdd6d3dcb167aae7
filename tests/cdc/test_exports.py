"""The public surface other packages (SQLite source, sinks) build on."""

from __future__ import annotations

import cdc.converter
import cdc.errors
import cdc.events
import cdc.kafka
import cdc.offsets
import cdc.positions


def test_public_names() -> None:
    assert set(cdc.errors.__all__) == {
        "BrokerUnavailable", "CdcError", "ConfigError", "DecodeError", "DeliveryFailed",
        "KafkaError", "OffsetStoreError", "SlotError", "SourceError", "TableNotCapturable",
    }
    assert {"Change", "Column", "Connector", "Op", "Record", "Table", "records_for",
            "topic_name", "heartbeat_topic"} <= set(cdc.events.__all__)
    assert {"JsonConverter", "unwrap"} <= set(cdc.converter.__all__)
    assert set(cdc.kafka.__all__) == {"Consumer", "Message", "Producer", "ensure_topics"}
    assert {"OffsetStore", "FileOffsetStore", "MemoryOffsetStore", "open_store"} <= set(
        cdc.offsets.__all__)
    assert set(cdc.positions.__all__) == {"SourcePosition", "format_lsn", "parse_lsn"}
    for module in (cdc.errors, cdc.events, cdc.converter, cdc.kafka, cdc.offsets,
                   cdc.positions):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"


def test_no_confluent_kafka_exception_escapes_the_boundary() -> None:
    for name in cdc.errors.__all__:
        assert issubclass(getattr(cdc.errors, name), cdc.errors.CdcError)
