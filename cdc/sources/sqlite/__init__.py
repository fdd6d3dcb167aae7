"""The SQLite source: triggers write a changelog, a relay publishes it as Debezium events.

triggers.py   changelog schema + trigger SQL (pure), install/uninstall/verify
txids.py      one transaction id per transaction (counter bumped by the connection wrapper)
render.py     changelog values → the values PostgreSQL holds for the same Django field
tables.py     captured tables → :class:`cdc.events.Table` with PostgreSQL's column types
relay.py      changelog → Kafka in id order: publish, then record offset, then prune
snapshot.py   initial snapshot consistent with the changelog position streaming starts at
source.py     both behind one object; :func:`open_source` builds it from configuration
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cdc.sources.sqlite.source import SqliteSource, SqliteSourceConfig

__all__ = ["SqliteSource", "SqliteSourceConfig", "open_source"]


def open_source(
    config: SqliteSourceConfig | Mapping[str, Any],
    *,
    bootstrap_servers: str | None = None,
    publisher: Any = None,
    schemas_enable: bool = True,
) -> SqliteSource:
    """``open_source({"database_url": "sqlite:///var/monolith.sqlite3", "topic_prefix":
    "shop"}, bootstrap_servers="127.0.0.1:9092")`` — a ready source publishing through
    the shared idempotent producer and JSON converter (or through ``publisher``)."""
    if not isinstance(config, SqliteSourceConfig):
        config = SqliteSourceConfig.from_mapping(config)
    if publisher is None:
        from cdc.converter import JsonConverter
        from cdc.errors import ConfigError
        from cdc.kafka import Producer
        from cdc.sources.sqlite.publish import KafkaPublisher

        if not bootstrap_servers:
            raise ConfigError("the SQLite source needs kafka.bootstrap_servers")
        publisher = KafkaPublisher(
            Producer(bootstrap_servers),
            JsonConverter(schemas_enable=schemas_enable, connector="sqlite"),
        )
    return SqliteSource(config, publisher)
