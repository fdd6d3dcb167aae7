"""Broker gone mid-stream: the relay fails with a clear error, records nothing, and a
restarted relay publishes everything once the broker is back."""

from __future__ import annotations

from pathlib import Path

import pytest

from cdc.converter import JsonConverter
from cdc.embedded_broker import EmbeddedBroker
from cdc.errors import KafkaError
from cdc.kafka import Producer
from cdc.offsets import MemoryOffsetStore
from cdc.sources.sqlite.publish import KafkaPublisher
from cdc.sources.sqlite.source import SqliteSource, SqliteSourceConfig
from tests.cdc_sqlite.schema import changelog, connect, create
from tests.cdc_sqlite.shop import Events

pytestmark = pytest.mark.kafka


def _source(path: Path, bootstrap: str, offsets: MemoryOffsetStore) -> SqliteSource:
    publisher = KafkaPublisher(
        Producer(bootstrap, message_timeout_s=3), JsonConverter(connector="sqlite"),
        flush_timeout_s=10,
    )
    config = SqliteSourceConfig(database=path, topic_prefix="gone")
    return SqliteSource(config, publisher, offsets=offsets)


def test_relay_survives_the_broker_going_away(tmp_path: Path) -> None:
    path = tmp_path / "db"
    create(path)
    conn = connect(path)
    offsets = MemoryOffsetStore()
    broker = EmbeddedBroker()
    broker.start()
    try:
        src = _source(path, broker.bootstrap_servers, offsets)
        src.prepare()
        name = src.config.offset_name
        conn.execute("INSERT INTO shop_note VALUES (1, 'sent')")
        assert src.relay.step() == 1
        broker.stop()
        conn.execute("INSERT INTO shop_note VALUES (2, 'while the broker is gone')")
        with pytest.raises(KafkaError, match=r"not confirm"):
            src.relay.step()
        stored = offsets.load(name)
        assert stored is not None and stored["changelog_id"] == 1
        assert [r[0] for r in changelog(conn)] == [2]
        src.close()

        broker.start()  # same port, empty (memory-only)
        events = Events(broker.bootstrap_servers, ["gone.main.shop_note"])
        again = _source(path, broker.bootstrap_servers, offsets)
        assert again.prepare() == "resuming after changelog id 1"
        assert again.relay.step() == 1
        events.poll_until(lambda e: len(e.changes()) >= 1, what="the change made while down")
        assert [c["after"]["body"] for c in events.changes()] == ["while the broker is gone"]
        assert changelog(conn) == []
        again.close()
        events.close()
    finally:
        broker.stop()
