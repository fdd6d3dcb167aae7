"""The way back: a service's changes to the tables it owns, applied into the monolith.

``services.<name>.data.owned`` lists the mapped monolith tables the service writes. The
service's database is captured like the monolith's (SQLite triggers, topic prefix
``<kafka.topic_prefix>.<service>``); this sink applies those events into the monolith's
tables with the plan's mapping turned around (service table → monolith table, renames
reversed), through the same planner and applier as every sink: ordered by the service's
source position, idempotent, rows and offsets in one transaction, poison events to a
DLQ. Inside each transaction :class:`~cdc.sinks.origin.SqliteSinkOrigin` keeps the
monolith's capture from publishing the applied rows again (no ping-pong) and its id
counters where they were (ids stay disjoint).

``python -m cdc.sinks.reverse --plan migration_plan.yaml --service notifications
--bootstrap-servers 127.0.0.1:9092 --metrics-port 9311`` (monolith database:
``$DATABASE_URL``; service schema: ``--schema main`` for a SQLite service database).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

from cdc.errors import KafkaError
from cdc.sinks.consumer import SinkConsumer
from cdc.sinks.mapping import MappingError, sink_mapping
from cdc.sinks.origin import OriginUnavailable, SqliteSinkOrigin, tag_postgres_sessions
from cdc.sinks.sqlalchemy_applier import ApplyError, SqlAlchemyApplier, engine_url

__all__ = [
    "back_prefix",
    "back_topics",
    "drain",
    "owned_tables",
    "reverse_tables",
    "run_reverse_sink",
]

log = logging.getLogger("cdc.sinks.reverse")


def back_prefix(topic_prefix: str, service: str) -> str:
    """``back_prefix("shop", "notifications") == "shop.notifications"`` — the topic
    prefix of the service's own capture."""
    return f"{topic_prefix}.{service}"


def owned_tables(plan: Mapping[str, Any], service: str) -> dict[str, Any]:
    """``{monolith table: mapping spec}`` for the tables the service owns (pure)."""
    services = plan.get("services") or {}
    svc = services.get(service) if isinstance(services, Mapping) else None
    if not isinstance(svc, Mapping):
        raise MappingError(f"services.{service}: not in the plan")
    data = svc.get("data") or {}
    tables = data.get("tables") or {} if isinstance(data, Mapping) else {}
    owned = data.get("owned") or [] if isinstance(data, Mapping) else []
    out: dict[str, Any] = {}
    for name in owned:
        if name not in tables:
            raise MappingError(f"services.{service}.data.owned: {name!r} is not in data.tables")
        out[str(name)] = tables[name]
    return out


def reverse_tables(owned: Mapping[str, Any]) -> dict[str, Any]:
    """The mapping for the way back (pure): ``{service table: {model: monolith table,
    rename: reversed, key: monolith key}}``. Value transforms cannot be inverted and are
    refused; ignored source columns simply do not exist in the service."""
    out: dict[str, Any] = {}
    for source, spec in owned.items():
        monolith_table = source.rpartition(".")[2]
        if isinstance(spec, str):
            out[spec] = monolith_table
            continue
        if not isinstance(spec, Mapping) or not isinstance(spec.get("model"), str):
            raise MappingError(f"tables.{source}: expected a model name or a mapping")
        if spec.get("transform"):
            raise MappingError(
                f"tables.{source}: an owned table cannot declare transforms (they cannot be "
                "reversed for the way back to the monolith); drop the transform or the "
                "table from data.owned")
        rename = dict(spec.get("rename") or {})
        back = {target: column for column, target in rename.items()}
        key = spec.get("key", ["id"])
        key = [key] if isinstance(key, str) else list(key)
        out[str(spec["model"])] = {"model": monolith_table, "rename": back,
                                   "key": [back.get(k, k) for k in key]}
    return out


def back_topics(reversed_tables: Iterable[str], prefix: str, schema: str) -> tuple[str, ...]:
    return tuple(f"{prefix}.{schema}.{table}" for table in reversed_tables)


# --- I/O edge --------------------------------------------------------------------------


def _sqlite_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (SAVEPOINTs work)


def _sqlite_begin(conn: sa.Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")  # a writer: take the lock up front


def monolith_engine(url: str) -> sa.Engine:
    url = engine_url(url)
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30})
        sa.event.listen(engine, "connect", _sqlite_connect)
        sa.event.listen(engine, "begin", _sqlite_begin)
        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def reverse_applier(engine: sa.Engine, reversed_tables: Mapping[str, Any], *,
                    sink: str) -> SqlAlchemyApplier:
    """The applier into the monolith's own tables (reflected), with the origin hooks."""
    targets = sorted({spec if isinstance(spec, str) else str(spec["model"])
                      for spec in reversed_tables.values()})
    tag_postgres_sessions(engine, sink)  # before the first connection
    metadata = sa.MetaData()
    metadata.reflect(engine, only=targets)
    applier = SqlAlchemyApplier(engine, sink_mapping(reversed_tables), metadata, sink=sink,
                                hooks=SqliteSinkOrigin(targets))
    applier.create_tables()
    return applier


def drain(consumer: SinkConsumer, *, quiet_s: float = 1.0, limit_s: float = 10.0,
          clock: Callable[[], float] = time.monotonic) -> int:
    """After a stop request: apply what is already on the broker, until nothing new came
    for ``quiet_s`` (at most ``limit_s``); returns the records consumed. ``strangle up``
    stops ``capture-back`` first, so with the memory-only embedded broker nothing the
    service wrote is left unapplied when the broker goes away."""
    consumed = 0
    start = quiet_since = clock()
    while clock() - quiet_since < quiet_s and clock() - start < limit_s:
        try:
            got = consumer.step()
        except (ApplyError, KafkaError) as exc:
            log.warning("drain stopped", extra={"error": str(exc)})
            break
        if got or not consumer.assigned.is_set():  # quiet counts once partitions are ours
            consumed += got
            quiet_since = clock()
    return consumed


def _read_plan(path: str) -> Mapping[str, Any]:
    plan = yaml.safe_load(Path(path).read_text("utf-8")) or {}
    if not isinstance(plan, Mapping):
        raise MappingError(f"plan file {path}: expected a mapping at the top level")
    return plan


def run_reverse_sink(*, plan_path: str, service: str, database_url: str, bootstrap_servers: str,
                     schema: str = "main", metrics_port: int = 0, batch_size: int = 1000,
                     from_beginning: bool = False) -> int:
    from cdc.sinks.consumer import SinkConfig, serve_health

    plan = _read_plan(plan_path)
    kafka = plan.get("kafka") or {}
    prefix = back_prefix(str(kafka.get("topic_prefix") or "shop"), service)
    tables = reverse_tables(owned_tables(plan, service))
    if not tables:
        raise MappingError(f"services.{service}.data.owned lists no table: nothing comes back")
    engine = monolith_engine(database_url)
    sink_name = f"{service}-back"
    applier = reverse_applier(engine, tables, sink=sink_name)
    if from_beginning:
        applier.restart_offsets()
    config = SinkConfig(bootstrap_servers=bootstrap_servers, group_id=f"{sink_name}-sink",
                        topics=back_topics(tables, prefix, schema),
                        heartbeat_topic=f"__debezium-heartbeat.{prefix}", batch_size=batch_size)
    consumer = SinkConsumer(config, applier)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    server = serve_health(consumer, metrics_port) if metrics_port else None
    log.info("reverse sink started", extra={"topics": list(config.topics),
                                            "into": sorted(applier.models)})
    try:
        consumer.run(stop)
        drained = drain(consumer)
        if drained:
            log.info("drained before stopping", extra={"records": drained})
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
        consumer.close()
        engine.dispose()
        log.info("reverse sink stopped", extra=consumer.stats.as_dict())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cdc.sinks.reverse",
                                     description="apply a service's owned tables back into "
                                                 "the monolith's database ($DATABASE_URL)")
    parser.add_argument("--plan", required=True)
    parser.add_argument("--service", required=True)
    parser.add_argument("--bootstrap-servers", required=True)
    parser.add_argument("--schema", default="main",
                        help="the service capture's schema: main (SQLite) or public")
    parser.add_argument("--metrics-port", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--from-beginning", action="store_true",
                        help="read the topics from their start (a fresh memory-only broker)")
    parser.add_argument("--database-url", default=None, help="default: $DATABASE_URL")
    args = parser.parse_args(argv)
    from strangler_proxy import jsonlog

    jsonlog.configure("sink-back")
    url = args.database_url or os.environ.get("DATABASE_URL")
    if not url:
        log.error("no monolith database: set DATABASE_URL or --database-url")
        return 2
    try:
        return run_reverse_sink(plan_path=args.plan, service=args.service, database_url=url,
                                bootstrap_servers=args.bootstrap_servers, schema=args.schema,
                                metrics_port=args.metrics_port, batch_size=args.batch_size,
                                from_beginning=args.from_beginning)
    except (MappingError, OriginUnavailable, OSError, yaml.YAMLError) as exc:
        log.error("reverse sink cannot start", extra={"error": str(exc)})
        return 2


if __name__ == "__main__":
    sys.exit(main())
