"""The SQLite source as one object: snapshot per mode, then relay; status for the CLI."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cdc.errors import ConfigError, SourceError
from cdc.events import Connector
from cdc.offsets import OffsetStore, open_store
from cdc.sources.sqlite import triggers
from cdc.sources.sqlite.publish import Publisher
from cdc.sources.sqlite.relay import Relay, read_offset
from cdc.sources.sqlite.snapshot import Progress, snapshot
from cdc.sources.sqlite.tables import DEFAULT_SCHEMA

__all__ = [
    "SNAPSHOT_MODES",
    "RelayLock",
    "SqliteSource",
    "SqliteSourceConfig",
    "database_path",
]

SNAPSHOT_MODES = ("initial", "no_data", "when_needed")


def database_path(url: str) -> Path:
    """``database_path("sqlite:///var/monolith.sqlite3") == Path("var/monolith.sqlite3")``;
    four slashes mean an absolute path."""
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        raise ConfigError(f"not a SQLite database URL (sqlite:///path): {url!r}")
    path = url[len(prefix) :].split("?", 1)[0]
    if not path or path == ":memory:":
        raise ConfigError("the SQLite source needs a database file, not an in-memory database")
    return Path(path)


@dataclass(frozen=True, kw_only=True)
class SqliteSourceConfig:
    """``SqliteSourceConfig(database=Path("var/monolith.sqlite3"), topic_prefix="shop")``."""

    database: Path
    topic_prefix: str
    schema: str = DEFAULT_SCHEMA
    snapshot_mode: str = "initial"
    batch_size: int = 2000
    poll_interval_s: float = 0.1
    heartbeat_interval_s: float = 0.0
    tombstones: bool = True
    offsets: Mapping[str, Any] = field(default_factory=dict)
    busy_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if self.snapshot_mode not in SNAPSHOT_MODES:
            raise ConfigError(
                f"cdc.snapshot_mode: {self.snapshot_mode!r} is not one of {SNAPSHOT_MODES}"
            )
        if self.batch_size < 1:
            raise ConfigError("cdc.batch_size must be at least 1")

    @property
    def offset_name(self) -> str:
        return f"sqlite:{self.topic_prefix}:{self.database.resolve()}"

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> SqliteSourceConfig:
        """From ``{"database_url": "sqlite:///...", "topic_prefix": "shop", ...}``."""
        known = {
            "database", "database_url", "topic_prefix", "schema", "snapshot_mode",
            "batch_size", "poll_interval_s", "heartbeat_interval_s", "offsets", "busy_timeout_s",
            "tombstones",
        }
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(f"sqlite source: unknown keys {unknown}")
        values = dict(raw)
        url = values.pop("database_url", None)
        if "database" not in values:
            if url is None:
                raise ConfigError("sqlite source: database_url (sqlite:///path) is required")
            values["database"] = database_path(str(url))
        values["database"] = Path(values["database"])
        if "topic_prefix" not in values:
            raise ConfigError("sqlite source: topic_prefix is required")
        return cls(**values)


def connect(path: Path, busy_timeout_s: float = 30.0) -> sqlite3.Connection:
    if not path.exists():
        raise SourceError(f"SQLite database {path} does not exist")
    try:
        conn = sqlite3.connect(
            str(path), isolation_level=None, timeout=busy_timeout_s, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise SourceError(f"cannot open SQLite database {path}: {exc}") from exc
    return conn


class RelayLock:
    """One relay per database: an exclusive ``flock`` on ``<database>-cdc.lock``. The OS
    releases it however the holder ends (kill -9 included). Two relays would prune rows
    the other has not published yet."""

    def __init__(self, database: Path) -> None:
        self.path = database.with_name(database.name + "-cdc.lock")
        self._file: Any = None

    def acquire(self) -> None:
        if self._file is not None:
            return
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise SourceError(
                f"another relay is running for this database (pid {holder}, lock {self.path});"
                " stop it first — two relays would prune each other's unpublished changes"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class SqliteSource:
    """Snapshot (per ``snapshot_mode``) then relay the changelog until stopped."""

    def __init__(
        self,
        config: SqliteSourceConfig,
        publisher: Publisher,
        *,
        offsets: OffsetStore | None = None,
        progress: Callable[[Progress], None] | None = None,
    ) -> None:
        self.config = config
        self.publisher = publisher
        self.offsets = offsets or open_store(
            config.offsets, default_dir=config.database.parent / "cdc"
        )
        self.progress = progress
        self.conn = connect(config.database, config.busy_timeout_s)
        self.lock = RelayLock(config.database)
        self.connector = Connector("sqlite", name=config.topic_prefix, db=config.database.stem)
        self.relay = Relay(
            self.conn,
            self.connector,
            publisher,
            self.offsets,
            name=config.offset_name,
            schema=config.schema,
            batch_size=config.batch_size,
            heartbeat_interval_s=config.heartbeat_interval_s,
            tombstones=config.tombstones,
        )

    def __repr__(self) -> str:
        return f"SqliteSource({str(self.config.database)!r}, prefix={self.config.topic_prefix!r})"

    def _require_capture(self) -> None:
        if not triggers.installed_tables(self.conn):
            raise SourceError(
                f"no capture installed in {self.config.database}; run "
                "`python -m monolith capture install` (or the Django post_migrate hook)"
            )

    def pruned_past_offset(self, offset: int) -> bool:
        """Whether changelog rows after ``offset`` are gone (offsets lost or reset)."""
        last = triggers.changelog_position(self.conn)
        if offset >= last:
            return False
        row = self.conn.execute(f"SELECT min(id) FROM {triggers.CHANGELOG}").fetchone()
        first = row[0] if row else None
        return first is None or int(first) > offset + 1

    def prepare(self) -> str:
        """Take the relay lock and bring the offset in place per snapshot mode; says what
        it did."""
        self._require_capture()
        self.lock.acquire()
        mode = self.config.snapshot_mode
        offset = read_offset(self.offsets, self.config.offset_name)
        if offset is not None and self.pruned_past_offset(offset):
            if mode != "when_needed":
                raise SourceError(
                    f"the changelog was pruned past the recorded offset {offset} (offsets lost"
                    " or another relay ran): changes would be missing. Re-run with"
                    " snapshot_mode when_needed, or reset the offset and snapshot."
                )
            offset = None
        if offset is not None:
            return f"resuming after changelog id {offset}"
        if mode == "no_data":
            position = triggers.changelog_position(self.conn)
            self.offsets.save(self.config.offset_name, {"changelog_id": position})
            return f"streaming from changelog id {position} without a snapshot"
        position = self.snapshot()
        return f"snapshot consistent with changelog id {position}"

    def snapshot(self, tables: Sequence[str] | None = None) -> int:
        return snapshot(
            self.conn,
            self.connector,
            self.publisher,
            self.offsets,
            name=self.config.offset_name,
            schema=self.config.schema,
            only=tables,
            progress=self.progress,
        )

    def run(self, stop: threading.Event) -> None:
        self.prepare()
        self.relay.run(stop, poll_interval_s=self.config.poll_interval_s)

    def status(self) -> dict[str, Any]:
        """Offset, changelog position and lag, read from the database: ``lag_s`` is the
        age of the oldest change not yet published, so it grows when the relay is down."""
        offset = read_offset(self.offsets, self.config.offset_name)
        try:
            tables = triggers.installed_tables(self.conn)
            last = triggers.changelog_position(self.conn)
            oldest = None
            if tables:
                oldest = self.conn.execute(
                    f"SELECT min(ts) FROM {triggers.CHANGELOG} WHERE id > ?", (offset or 0,)
                ).fetchone()[0]
        except sqlite3.Error as exc:
            where = self.config.database
            raise SourceError(f"cannot read capture status from {where}: {exc}") from exc
        lag_s = max(0.0, time.time() - oldest / 1000) if oldest else 0.0
        return {
            "connector": "sqlite",
            "database": str(self.config.database),
            "installed": bool(tables),
            "tables": sorted(tables),
            "offset": offset,
            "changelog_position": last,
            "lag_events": None if offset is None else max(0, last - offset),
            "lag_s": round(lag_s, 3),
            "published": self.relay.published,
            "last_event_ms": self.relay.last_event_ms,
        }

    def close(self) -> None:
        self.lock.release()
        self.conn.close()
