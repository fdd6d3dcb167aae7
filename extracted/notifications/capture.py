"""The service's own changes to the tables it owns, as Debezium events (the way back).

``python -m extracted.notifications capture --plan migration_plan.yaml
--bootstrap-servers 127.0.0.1:9092 --http-port 9466`` installs SQLite change capture
(the same triggers as the monolith's, :mod:`cdc.sources.sqlite.triggers`) on the
service tables that ``services.notifications.data.owned`` maps, then relays their
changes to ``<kafka.topic_prefix>.notifications.main.<table>`` until SIGTERM. On
PostgreSQL it runs the pgoutput capture (:class:`cdc.runner.PgCapture`, slot and
publication ``strangler_<prefix>_notifications``, topics ``....public.<table>``) — with
``/healthz``, ``/metrics`` and ``/status`` on ``--http-port`` like ``strangle cdc run``.
:mod:`cdc.sinks.reverse` applies them into the monolith.

Rows the forward sink applies (the monolith's changes) carry the sink's transaction id
(SQLite) or replication origin (PostgreSQL) and are never relayed back
(:mod:`cdc.sinks.origin`). Capture starts at the changelog's
current end (``no_data``): everything older reached the monolith by the forward path or
was captured by an earlier run, whose offset is resumed.
"""

from __future__ import annotations

import logging
import signal
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cdc.config import CdcConfig
from cdc.sinks.reverse import back_prefix, owned_tables, reverse_tables
from cdc.sources.sqlite import triggers
from cdc.sources.sqlite.source import database_path

SERVICE = "notifications"
log = logging.getLogger("extracted.notifications.capture")


def owned_service_tables(plan: Mapping[str, Any]) -> tuple[str, ...]:
    """The service tables whose changes go back to the monolith (pure)."""
    return tuple(reverse_tables(owned_tables(plan, SERVICE)))


def install_capture(database_url: str, tables: tuple[str, ...]) -> None:
    """(Re)install the capture triggers on ``tables`` of the service's SQLite database."""
    conn = sqlite3.connect(str(database_path(database_url)), isolation_level=None, timeout=30)
    try:
        captured = [triggers.introspect(conn, t) for t in tables]
        triggers.install(conn, captured)
    finally:
        conn.close()


def capture_config(plan: Mapping[str, Any], *, database_url: str, bootstrap_servers: str,
                   http_port: int, state_dir: Path) -> CdcConfig:
    """The CDC settings of the way back (pure): the plan's prefix and heartbeat, the
    service's database and owned tables, never a snapshot."""
    kafka = plan.get("kafka") or {}
    cdc = plan.get("cdc") or {}
    prefix = back_prefix(str(kafka.get("topic_prefix") or "shop"), SERVICE)
    schema = "main" if database_url.startswith("sqlite") else "public"
    return CdcConfig(
        database_url=database_url, bootstrap_servers=bootstrap_servers, topic_prefix=prefix,
        tables=tuple(f"{schema}.{t}" for t in owned_service_tables(plan)),
        snapshot_mode="no_data",
        heartbeat_interval_s=float(cdc.get("heartbeat_interval_s", 10.0)),
        http_host="127.0.0.1", http_port=http_port, state_dir=state_dir,
        offsets={"backend": "file", "path": str(state_dir / "offsets.json")},
    )


def forget_foreign_offset(config: CdcConfig) -> bool:
    """Drop a stored offset beyond the database's changelog: it belongs to an earlier
    database at the same path (say the service's file was deleted and migrated anew), and
    resuming after it would skip this one's first changes. Returns whether it did."""
    from cdc.offsets import open_store
    from cdc.sources.sqlite.relay import read_offset
    from cdc.sources.sqlite.source import SqliteSourceConfig

    source = SqliteSourceConfig(database=database_path(config.database_url),
                                topic_prefix=config.topic_prefix)
    store = open_store(config.offsets, default_dir=config.state_dir)
    offset = read_offset(store, source.offset_name)
    if offset is None:
        return False
    conn = sqlite3.connect(str(source.database), timeout=30)
    try:
        position = triggers.changelog_position(conn)
    finally:
        conn.close()
    if offset <= position:
        return False
    log.warning("offset beyond the changelog: another database was here; starting afresh",
                extra={"offset": offset, "changelog_position": position})
    store.delete(source.offset_name)
    return True


def run_capture(plan_path: str, *, database_url: str, bootstrap_servers: str, http_port: int,
                state_dir: Path) -> int:
    import yaml

    from cdc.runner import PgCapture
    from cdc.sources.sqlite.runner import SqliteCapture

    plan = yaml.safe_load(Path(plan_path).read_text("utf-8")) or {}
    config = capture_config(plan, database_url=database_url,
                            bootstrap_servers=bootstrap_servers, http_port=http_port,
                            state_dir=state_dir)
    if not config.tables:
        raise SystemExit(f"services.{SERVICE}.data.owned lists no table: nothing to capture")
    capture: SqliteCapture | PgCapture
    if database_url.startswith("sqlite"):
        install_capture(database_url, tuple(t.split(".")[-1] for t in config.tables))
        forget_foreign_offset(config)
        capture = SqliteCapture(config)
    else:  # logical decoding: publication + slot strangler_<prefix>, created on first run
        capture = PgCapture(config)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: capture.stop())
    capture.run()
    return 0
