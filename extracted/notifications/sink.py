"""The service's CDC sink: the monolith's tables into this service's database."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from cdc.sinks.consumer import SinkConfig, SinkConsumer, serve_health
from cdc.sinks.mapping import sink_mapping
from cdc.sinks.origin import SqliteSinkOrigin, tag_postgres_sessions
from cdc.sinks.sqlalchemy_applier import SqlAlchemyApplier
from extracted.notifications.config import Settings
from extracted.notifications.db import make_engine
from extracted.notifications.models import DEFAULT_TABLES, Base

SINK_NAME = "notifications"
log = logging.getLogger("extracted.notifications.sink")


def notifications_applier(engine: sa.Engine, tables: Mapping[str, Any] | None = None
                          ) -> SqlAlchemyApplier:
    """The applier for the plan's ``data.tables`` (default: :data:`DEFAULT_TABLES`)."""
    mapping = sink_mapping(tables or DEFAULT_TABLES)
    # the service's own capture (the way back) must not relay what came from the monolith
    return SqlAlchemyApplier(engine, mapping, Base.metadata, sink=SINK_NAME,
                             hooks=SqliteSinkOrigin(mapping.models))


def topics_for(tables: Mapping[str, Any], prefix: str, schema: str = "public") -> tuple[str, ...]:
    """``<prefix>.<schema>.<table>`` for every mapped table (``schema.table`` keys win)."""
    out = []
    for source in tables:
        table_schema, _, table = source.rpartition(".")
        out.append(f"{prefix}.{table_schema or schema}.{table}")
    return tuple(out)


def plan_tables(plan_path: str | None) -> Mapping[str, Any]:
    if not plan_path:
        return DEFAULT_TABLES
    from strangler_proxy.plan.io import load_plan

    service = load_plan(plan_path).plan.services.get(SINK_NAME)
    if service is None or not service.data.tables:
        return DEFAULT_TABLES
    return dict(service.data.tables)


def plan_owned(plan_path: str | None) -> tuple[str, ...]:
    """``services.notifications.data.owned`` (the tables synced back to the monolith)."""
    if not plan_path:
        return ()
    from strangler_proxy.plan.io import load_plan

    service = load_plan(plan_path).plan.services.get(SINK_NAME)
    return service.data.owned if service is not None else ()


def run_sink(settings: Settings, *, bootstrap_servers: str, topic_prefix: str, schema: str,
             metrics_port: int = 0, plan_path: str | None = None, batch_size: int = 1000,
             group_id: str = "notifications-sink", from_beginning: bool = False) -> int:
    tables = plan_tables(plan_path)
    engine = make_engine(settings.database_url)
    if plan_owned(plan_path):  # two-way sync: the service's capture must not echo our rows
        tag_postgres_sessions(engine, SINK_NAME)
        with engine.connect():  # a session that cannot be tagged fails here, at start
            pass
    applier = notifications_applier(engine, tables)
    if from_beginning:
        applier.restart_offsets()
    config = SinkConfig(bootstrap_servers=bootstrap_servers, group_id=group_id,
                        topics=topics_for(tables, topic_prefix, schema),
                        heartbeat_topic=f"__debezium-heartbeat.{topic_prefix}",
                        batch_size=batch_size)
    sink = SinkConsumer(config, applier)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    server = serve_health(sink, metrics_port) if metrics_port else None
    log.info("sink started", extra={"topics": list(config.topics), "group": group_id})
    try:
        sink.run(stop)
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
        sink.close()
        engine.dispose()
        log.info("sink stopped", extra=sink.stats.as_dict())
    return 0
