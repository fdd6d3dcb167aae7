"""Where a source remembers how far it got: a small store of JSON offsets by name.

The PostgreSQL source keeps its stream position in the replication slot; its offset
records what the slot cannot (snapshot completed, which slot, last acknowledged LSN).
Other sources (the SQLite relay) keep their whole position here. Backends:
``file`` (one JSON file, atomic replace), ``sql`` (a table via SQLAlchemy), ``memory``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from cdc.errors import ConfigError
from cdc.offsets.file import FileOffsetStore
from cdc.offsets.memory import MemoryOffsetStore

__all__ = ["FileOffsetStore", "MemoryOffsetStore", "OffsetStore", "open_store"]


@runtime_checkable
class OffsetStore(Protocol):
    def load(self, name: str) -> dict[str, Any] | None: ...

    def save(self, name: str, offset: Mapping[str, Any]) -> None: ...

    def delete(self, name: str) -> None: ...


def open_store(spec: Mapping[str, Any] | None, *, default_dir: Path) -> OffsetStore:
    """``open_store({"backend": "file", "path": "var/cdc/offsets.json"}, default_dir=...)``."""
    spec = dict(spec or {})
    backend = spec.pop("backend", "file")
    if backend == "file":
        path = Path(spec.pop("path", default_dir / "offsets.json"))
        store: OffsetStore = FileOffsetStore(path)
    elif backend == "memory":
        store = MemoryOffsetStore()
    elif backend == "sql":
        from cdc.offsets.sql import SqlOffsetStore

        if "url" not in spec:
            raise ConfigError("cdc.offsets: backend sql needs url")
        store = SqlOffsetStore(str(spec.pop("url")), table=str(spec.pop("table", "cdc_offsets")))
    else:
        raise ConfigError(f"cdc.offsets.backend: unknown backend {backend!r} (file, sql, memory)")
    if spec:
        raise ConfigError(f"cdc.offsets: unknown keys {sorted(spec)}")
    return store
