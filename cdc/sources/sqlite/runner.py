"""``strangle cdc run`` for a monolith on SQLite: the same process shape as the
PostgreSQL runner (:class:`cdc.runner.PgCapture`) — embedded broker when the plan says
so, ``/healthz`` ``/metrics`` ``/status`` on ``cdc.http``, ``status.json`` in
``cdc.state_dir``, JSON logs, graceful :meth:`SqliteCapture.stop` — around the relay.

Configuration is the plan's ``kafka:``/``cdc:`` sections as parsed by
:func:`cdc.config.parse_config`, with a ``sqlite:///`` database URL
(``STRANGLE_CDC_DATABASE_URL``, ``cdc.database_url`` or the monolith's ``DATABASE_URL``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from cdc.config import CdcConfig, parse_config
from cdc.converter import JsonConverter
from cdc.embedded_broker import EmbeddedBroker
from cdc.errors import CdcError, ConfigError, SourceError
from cdc.kafka import Producer
from cdc.liveness import events_per_second, is_healthy
from cdc.observability import Metrics, StatusServer
from cdc.offsets import OffsetStore, open_store
from cdc.sources.sqlite import triggers
from cdc.sources.sqlite.publish import KafkaPublisher
from cdc.sources.sqlite.snapshot import Progress
from cdc.sources.sqlite.source import (
    RelayLock,
    SqliteSource,
    SqliteSourceConfig,
    database_path,
)

__all__ = [
    "SqliteCapture",
    "capture_for_plan",
    "database_url",
    "is_sqlite_url",
    "read_plan",
    "reset_for_plan",
    "snapshot_table_for_plan",
    "sqlite_config",
    "status_for_plan",
]

log = logging.getLogger("cdc.sqlite.runner")

MONOLITH_DEFAULT_URL = "sqlite:///var/monolith.sqlite3"
STATUS_EVERY_S = 2.0


def is_sqlite_url(url: str) -> bool:
    return url.startswith("sqlite:")


def database_url(plan: Mapping[str, Any], env: Mapping[str, str]) -> str:
    """The source database the way ``cdc.config`` finds it; the monolith's default."""
    cdc = plan.get("cdc") or {}
    found = (
        env.get("STRANGLE_CDC_DATABASE_URL")
        or (cdc.get("database_url") if isinstance(cdc, Mapping) else None)
        or env.get("DATABASE_URL")
        or MONOLITH_DEFAULT_URL
    )
    return str(found)


def sqlite_config(
    plan: Mapping[str, Any], env: Mapping[str, str], *, base_dir: Path = Path(".")
) -> CdcConfig:
    """``parse_config`` for a SQLite source: same keys and validation, sqlite URL kept."""
    url = database_url(plan, env)
    if not is_sqlite_url(url):
        raise ConfigError(f"not a SQLite database URL: {url.split(':')[0]}:")
    database_path(url)
    cdc = dict(plan.get("cdc") or {})
    if cdc.pop("source", "sqlite") not in ("sqlite", "auto"):
        raise ConfigError("cdc.source: the database is SQLite; use source sqlite or auto")
    stand_in = {**env, "STRANGLE_CDC_DATABASE_URL": "postgresql://sqlite-source/"}
    parsed = parse_config({**plan, "cdc": cdc}, stand_in, base_dir=base_dir)
    return dataclasses.replace(parsed, database_url=url)


def read_plan(path: Path) -> Mapping[str, Any]:
    try:
        plan = yaml.safe_load(path.read_text("utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"plan file {path} not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"plan file {path} is not valid YAML: {exc}") from exc
    if not isinstance(plan, Mapping):
        raise ConfigError(f"plan file {path}: expected a mapping at the top level")
    return plan


def capture_for_plan(
    path: Path, env: Mapping[str, str] | None = None, **kwargs: Any
) -> SqliteCapture | None:
    """The SQLite runner when the plan's source database is SQLite; None otherwise (the
    caller then runs the PostgreSQL capture)."""
    env = os.environ if env is None else env
    plan = read_plan(path)
    if not is_sqlite_url(database_url(plan, env)):
        return None
    return SqliteCapture(sqlite_config(plan, env, base_dir=path.parent), **kwargs)


def _source_config(config: CdcConfig) -> SqliteSourceConfig:
    return SqliteSourceConfig(
        database=database_path(config.database_url),
        topic_prefix=config.topic_prefix,
        snapshot_mode=config.snapshot_mode,
        heartbeat_interval_s=config.heartbeat_interval_s,
        tombstones=config.tombstones_on_delete,
        offsets=config.offsets,
    )


class SqliteCapture:
    """``SqliteCapture(config).run()`` — blocks until :meth:`stop` or an error."""

    def __init__(
        self,
        config: CdcConfig,
        *,
        offsets: OffsetStore | None = None,
        metrics: Metrics | None = None,
        serve_http: bool = True,
    ) -> None:
        self.config = config
        self.source_config = _source_config(config)
        self.metrics = metrics or Metrics()
        self.offsets = offsets or open_store(config.offsets, default_dir=config.state_dir)
        self.serve_http = serve_http
        self.http_port: int | None = None
        self._stop = threading.Event()
        self._state = "starting"
        self._error: str | None = None
        self._source: SqliteSource | None = None
        self._snapshot: dict[str, Any] | None = None
        self._snapshot_rows: dict[str, int] = {}
        self._last_loop = time.monotonic()
        self._rate: list[tuple[float, int]] = []

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        server = None
        broker = None
        try:
            if self.serve_http:
                server = StatusServer(
                    self.config.http_host, self.config.http_port, self.metrics, self.status,
                    self.healthy,
                )
                self.http_port = server.start()
            bootstrap = self.config.bootstrap_servers
            if self.config.embedded_kafka:
                broker = EmbeddedBroker()
                broker.start()
                bootstrap = broker.bootstrap_servers
                log.info("embedded Kafka broker started", extra={"bootstrap": bootstrap})
            self._run(bootstrap)
        except CdcError as exc:
            self._error, self._state = str(exc), "failed"
            raise
        finally:
            if self._state != "failed":
                self._state = "stopped"
            self.metrics.streaming.set(0)
            self._write_status()
            if self._source is not None:
                self._source.close()
                self._source = None
            if broker is not None:
                broker.stop()
            if server is not None:
                server.stop()

    def _check_tables(self, source: SqliteSource) -> None:
        installed = triggers.installed_tables(source.conn)
        missing = [t for t in (n.split(".")[-1] for n in self.config.tables) if t not in installed]
        if missing:
            raise SourceError(
                f"capture is not installed for {', '.join(missing)} in {source.config.database};"
                " run `python -m monolith manage capture install`"
            )

    def _run(self, bootstrap: str) -> None:
        cfg = self.config
        producer = Producer(
            bootstrap, message_timeout_s=cfg.message_timeout_s, config=cfg.producer,
            topic_partitions=cfg.topic_partitions,
        )
        producer.check()
        publisher = KafkaPublisher(
            producer,
            JsonConverter(schemas_enable=cfg.schemas_enable, connector="sqlite"),
            flush_timeout_s=cfg.message_timeout_s,
            metrics=self.metrics,
        )
        source = self._source = SqliteSource(
            self.source_config, publisher, offsets=self.offsets, progress=self._on_progress
        )
        self._check_tables(source)
        self._state = "snapshot"
        log.info("starting capture", extra={"plan": source.prepare(), "connector": "sqlite"})
        self._state = "streaming"
        self.metrics.streaming.set(1)
        relay = source.relay
        next_status = 0.0
        while not self._stop.is_set():
            relayed = relay.step()
            now = time.monotonic()
            self._last_loop = now
            if now >= next_status:
                next_status = now + STATUS_EVERY_S
                self._periodic(now, publisher.delivered)
            if relayed < relay.batch_size:
                self._stop.wait(self.source_config.poll_interval_s)
        log.info("stopped", extra={"offset": source.status()["offset"]})

    def _on_progress(self, p: Progress) -> None:
        self._snapshot = {
            "table": p.table, "rows": p.rows, "total_estimate": p.total,
            "rows_per_s": round(p.rows_per_s, 1), "eta_s": p.eta_s,
        }
        seen = self._snapshot_rows.get(p.table, 0)
        self.metrics.snapshot_rows.labels(p.table).inc(max(0, p.rows - seen))
        self._snapshot_rows[p.table] = p.rows
        self.metrics.snapshot_rate.set(p.rows_per_s)
        self.metrics.snapshot_eta.set(p.eta_s or 0)
        self._last_loop = time.monotonic()
        self._write_status()

    def _periodic(self, now: float, delivered: int) -> None:
        self._rate = [*self._rate[-9:], (now, delivered)]
        status = self._source.status() if self._source else {}
        self.metrics.lag_seconds.set(status.get("lag_s") or 0.0)
        last = status.get("last_event_ms")
        if last:
            self.metrics.behind_source_ms.set(max(0, int(time.time() * 1000) - int(last)))
        self._write_status()

    def healthy(self) -> bool:
        age = time.monotonic() - self._last_loop
        return is_healthy(self._state, age, self.config.heartbeat_interval_s)

    def events_per_second(self) -> float:
        return events_per_second(self._rate)

    def status(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "state": self._state,
            "error": self._error,
            "pid": os.getpid(),
            "connector": "sqlite",
            "database": str(self.source_config.database),
            "events_per_s": self.events_per_second(),
            "snapshot": self._snapshot,
            "http_port": self.http_port,
            "updated_at": time.time(),
        }
        if self._source is not None:
            try:
                doc.update(self._source.status())
            except Exception as exc:  # status must answer even when SQLite does not
                doc["status_error"] = str(exc)
            doc["lag_seconds"] = doc.get("lag_s")
        return doc

    def _write_status(self) -> None:
        path = Path(self.config.state_dir) / "status.json"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.status(), default=str))
            tmp.replace(path)
        except OSError as exc:
            log.warning("cannot write status file", extra={"path": str(path), "error": str(exc)})


class _NoPublishing:
    def publish(self, records: Any) -> None:
        raise SourceError("status does not publish")


def status_for_plan(path: Path, env: Mapping[str, str] | None = None) -> dict[str, Any] | None:
    """``strangle cdc status`` for a SQLite source (None when the source is not SQLite):
    offset, changelog position and lag from the database, plus the runner's last
    ``status.json``."""
    capture = capture_for_plan(path, env, serve_http=False)
    if capture is None:
        return None
    source = SqliteSource(capture.source_config, _NoPublishing(), offsets=capture.offsets)
    try:
        doc: dict[str, Any] = {"connector": "sqlite", **source.status()}
    finally:
        source.close()
    status_file = Path(capture.config.state_dir) / "status.json"
    if status_file.exists():
        try:
            runner = json.loads(status_file.read_text())
        except ValueError:
            runner = {}
        doc["runner_state"] = runner.get("state")
        doc["runner_status_age_s"] = round(time.time() - float(runner.get("updated_at", 0)), 1)
        doc["events_per_s"] = runner.get("events_per_s")
        doc["error"] = runner.get("error")
    else:
        doc["runner_state"] = "unknown (no status file)"
    return doc


def snapshot_table_for_plan(
    path: Path,
    table: str,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    env: Mapping[str, str] | None = None,
) -> int | None:
    """``strangle cdc snapshot --table T`` for a SQLite source (None when the source is
    not SQLite): every row of T again as ``r`` events, alongside a running relay. The
    rows carry the changelog position they are consistent with, so sinks order them
    against the streamed changes of the same rows. Returns the rows sent."""
    capture = capture_for_plan(path, env, serve_http=False)
    if capture is None:
        return None
    cfg = capture.config
    if cfg.embedded_kafka:
        raise ConfigError(
            "kafka.bootstrap_servers is 'embedded': the broker lives inside `strangle cdc run`;"
            " set KAFKA_BOOTSTRAP_SERVERS to its address to re-snapshot"
        )
    name = table.split(".")[-1]
    producer = Producer(
        cfg.bootstrap_servers, message_timeout_s=cfg.message_timeout_s, config=cfg.producer,
        topic_partitions=cfg.topic_partitions,
    )
    producer.check()
    publisher = KafkaPublisher(
        producer, JsonConverter(schemas_enable=cfg.schemas_enable, connector="sqlite"),
        flush_timeout_s=cfg.message_timeout_s,
    )
    sent: dict[str, int] = {}

    def progress(p: Progress) -> None:
        sent[p.table] = p.rows
        if on_progress is not None:
            on_progress(p)

    source = SqliteSource(capture.source_config, publisher, offsets=capture.offsets,
                          progress=progress)
    try:
        if name not in triggers.installed_tables(source.conn):
            raise ConfigError(f"{name} is not a captured table of {source.config.database}")
        source.snapshot([name])
    finally:
        source.close()
    return sent.get(name, 0)


def reset_for_plan(path: Path, env: Mapping[str, str] | None = None) -> str | None:
    """``strangle cdc reset`` for a SQLite source (None when not SQLite): forget the
    offset so the next run snapshots again. Refused while a relay runs."""
    capture = capture_for_plan(path, env, serve_http=False)
    if capture is None:
        return None
    lock = RelayLock(capture.source_config.database)
    lock.acquire()
    try:
        capture.offsets.delete(capture.source_config.offset_name)
    finally:
        lock.release()
    return f"offset of {capture.source_config.database} cleared; the next run snapshots again"
