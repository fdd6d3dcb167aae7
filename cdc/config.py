"""CDC settings from the plan's ``kafka:`` and ``cdc:`` sections and the environment.

::

    kafka: {bootstrap_servers: embedded, topic_prefix: shop}
    cdc:
      database_url: postgresql://app@127.0.0.1:5432/shop   # else $DATABASE_URL
      snapshot_mode: initial        # initial | no_data | when_needed
      slot: strangler_shop          # default strangler_<prefix>
      publication: strangler_shop   # default strangler_<prefix>
      schemas: true                 # JsonConverter schemas.enable
      tombstones_on_delete: true
      heartbeat_interval_s: 10
      message_timeout_s: 30         # Kafka delivery timeout; then the runner stops unacked
      offsets: {backend: file, path: var/cdc/offsets.json}
      http: {host: 127.0.0.1, port: 9465}
      state_dir: var/cdc
      topic_partitions: 1
      producer: {}                  # extra librdkafka settings
      provide_transaction_metadata: false   # BEGIN/END on <prefix>.transaction + blocks

Captured tables are the keys of every ``services.<name>.data.tables`` whose
``data.owner`` is the monolith (the default); with ``data.owner: service``, only those
not listed in ``data.owned`` (none when ``owned`` is absent); ``schema.table`` or bare
``table`` (schema ``public``). Parsing is pure (:func:`parse_config`); :func:`load_config` reads
the file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cdc.errors import ConfigError

__all__ = ["SNAPSHOT_MODES", "CdcConfig", "load_config", "parse_config", "pg_dsn"]

SNAPSHOT_MODES = ("initial", "no_data", "when_needed")
EMBEDDED = "embedded"

_KNOWN_KEYS = {
    "database_url",
    "provide_transaction_metadata",
    "snapshot_mode",
    "slot",
    "publication",
    "schemas",
    "tombstones_on_delete",
    "heartbeat_interval_s",
    "message_timeout_s",
    "offsets",
    "http",
    "state_dir",
    "topic_partitions",
    "producer",
    "source",
}


@dataclass(frozen=True)
class CdcConfig:
    """``CdcConfig(database_url=..., bootstrap_servers="embedded", topic_prefix="shop",
    tables=("public.notifications_notification",))``."""

    database_url: str
    bootstrap_servers: str
    topic_prefix: str
    tables: tuple[str, ...]
    slot: str = ""
    publication: str = ""
    snapshot_mode: str = "initial"
    schemas_enable: bool = True
    tombstones_on_delete: bool = True
    heartbeat_interval_s: float = 10.0
    message_timeout_s: float = 30.0
    offsets: Mapping[str, Any] = field(default_factory=dict)
    http_host: str = "127.0.0.1"
    http_port: int = 9465
    state_dir: Path = Path("var/cdc")
    topic_partitions: int = 1
    producer: Mapping[str, Any] = field(default_factory=dict)
    provide_transaction_metadata: bool = False

    def __post_init__(self) -> None:
        default = "strangler_" + re.sub(r"[^a-z0-9_]", "_", self.topic_prefix.lower())
        if not self.slot:
            object.__setattr__(self, "slot", default)
        if not self.publication:
            object.__setattr__(self, "publication", default)

    @property
    def embedded_kafka(self) -> bool:
        return self.bootstrap_servers == EMBEDDED

    @property
    def offset_name(self) -> str:
        return f"postgres:{self.topic_prefix}:{self.slot}"


def pg_dsn(url: str) -> str:
    """A libpq connection string from a SQLAlchemy/Django style URL."""
    match = re.match(r"^postgres(?:ql)?(?:\+\w+)?://", url)
    if match:
        return "postgresql://" + url[match.end() :]
    return url


def _qualified(name: str) -> str:
    parts = name.split(".")
    if len(parts) == 1:
        return f"public.{name}"
    if len(parts) == 2 and all(parts):
        return name
    raise ConfigError(f"table name {name!r}: expected table or schema.table")


def _captured_tables(plan: Mapping[str, Any]) -> tuple[str, ...]:
    services = plan.get("services") or {}
    if not isinstance(services, Mapping):
        raise ConfigError("services: expected a mapping")
    tables: list[str] = []
    for svc_name, svc in services.items():
        data = (svc or {}).get("data") if isinstance(svc, Mapping) else None
        if not data:
            continue
        if not isinstance(data, Mapping):
            raise ConfigError(f"services.{svc_name}.data: expected a mapping")
        spec = data.get("tables") or {}
        if not isinstance(spec, Mapping):
            raise ConfigError(f"services.{svc_name}.data.tables: expected a mapping")
        if data.get("owner", "monolith") != "monolith":
            owned = data.get("owned")
            if not owned:
                continue  # the service owns all of it
            # the service owns these; the monolith still feeds it the tables it only reads
            spec = {t: v for t, v in spec.items() if t not in set(map(str, owned))}
        tables.extend(_qualified(str(t)) for t in spec)
    return tuple(dict.fromkeys(tables))


def _number(cdc: Mapping[str, Any], key: str, default: float, minimum: float) -> float:
    value = cdc.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise ConfigError(f"cdc.{key}: expected a number >= {minimum}, got {value!r}")
    return float(value)


def parse_config(
    plan: Mapping[str, Any], env: Mapping[str, str], *, base_dir: Path = Path(".")
) -> CdcConfig:
    kafka = plan.get("kafka") or {}
    cdc = plan.get("cdc") or {}
    if not isinstance(kafka, Mapping):
        raise ConfigError("kafka: expected a mapping")
    if not isinstance(cdc, Mapping):
        raise ConfigError("cdc: expected a mapping")
    unknown = sorted(set(cdc) - _KNOWN_KEYS)
    if unknown:
        raise ConfigError(f"cdc: unknown keys {unknown} (known: {sorted(_KNOWN_KEYS)})")
    if cdc.get("source", "postgres") != "postgres":
        raise ConfigError(f"cdc.source: this runner captures postgres, not {cdc['source']!r}")
    url = env.get("STRANGLE_CDC_DATABASE_URL") or cdc.get("database_url") or env.get("DATABASE_URL")
    if not url:
        raise ConfigError("no source database: set cdc.database_url in the plan or DATABASE_URL")
    if not re.match(r"^postgres(ql)?(\+\w+)?://", str(url)):
        raise ConfigError(f"cdc needs a PostgreSQL database URL, got {str(url).split(':')[0]}:")
    bootstrap = env.get("KAFKA_BOOTSTRAP_SERVERS") or kafka.get("bootstrap_servers") or EMBEDDED
    prefix = str(kafka.get("topic_prefix") or "")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", prefix):
        raise ConfigError(f"kafka.topic_prefix: expected letters, digits, _ . -, got {prefix!r}")
    mode = str(cdc.get("snapshot_mode", "initial"))
    if mode not in SNAPSHOT_MODES:
        raise ConfigError(f"cdc.snapshot_mode: {mode!r} is not one of {', '.join(SNAPSHOT_MODES)}")
    http = cdc.get("http") or {}
    if not isinstance(http, Mapping):
        raise ConfigError("cdc.http: expected {host, port}")
    offsets = cdc.get("offsets") or {}
    producer = cdc.get("producer") or {}
    if not isinstance(offsets, Mapping) or not isinstance(producer, Mapping):
        raise ConfigError("cdc.offsets and cdc.producer must be mappings")
    state_dir = Path(str(cdc.get("state_dir", "var/cdc")))
    tables = _captured_tables(plan)
    return CdcConfig(
        database_url=str(url),
        bootstrap_servers=str(bootstrap),
        topic_prefix=prefix,
        tables=tables,
        slot=str(cdc.get("slot", "")),
        publication=str(cdc.get("publication", "")),
        snapshot_mode=mode,
        schemas_enable=bool(cdc.get("schemas", True)),
        tombstones_on_delete=bool(cdc.get("tombstones_on_delete", True)),
        heartbeat_interval_s=_number(cdc, "heartbeat_interval_s", 10.0, 0.1),
        message_timeout_s=_number(cdc, "message_timeout_s", 30.0, 1.0),
        offsets=dict(offsets),
        http_host=str(http.get("host", "127.0.0.1")),
        http_port=int(_number(http, "port", 9465, 0)),
        state_dir=state_dir if state_dir.is_absolute() else base_dir / state_dir,
        topic_partitions=int(_number(cdc, "topic_partitions", 1, 1)),
        producer=dict(producer),
        provide_transaction_metadata=bool(cdc.get("provide_transaction_metadata", False)),
    )


def load_config(path: Path, env: Mapping[str, str] | None = None) -> CdcConfig:
    try:
        plan = yaml.safe_load(path.read_text("utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"plan file {path} not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"plan file {path} is not valid YAML: {exc}") from exc
    if not isinstance(plan, Mapping):
        raise ConfigError(f"plan file {path}: expected a mapping at the top level")
    return parse_config(plan, os.environ if env is None else env, base_dir=path.parent)
