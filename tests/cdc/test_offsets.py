from __future__ import annotations

from pathlib import Path

import pytest

from cdc.errors import ConfigError, OffsetStoreError
from cdc.offsets import FileOffsetStore, MemoryOffsetStore, OffsetStore, open_store
from cdc.offsets.sql import SqlOffsetStore


def _exercise(store: OffsetStore) -> None:
    assert store.load("pg") is None
    store.save("pg", {"lsn": 10, "snapshot_completed": True})
    store.save("other", {"id": 1})
    assert store.load("pg") == {"lsn": 10, "snapshot_completed": True}
    store.save("pg", {"lsn": 11})
    assert store.load("pg") == {"lsn": 11}
    store.delete("pg")
    assert store.load("pg") is None
    assert store.load("other") == {"id": 1}


def test_file_store(tmp_path: Path) -> None:
    store = FileOffsetStore(tmp_path / "sub" / "offsets.json")
    _exercise(store)
    assert FileOffsetStore(tmp_path / "sub" / "offsets.json").load("other") == {"id": 1}
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["offsets.json"]


def test_corrupt_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "offsets.json"
    path.write_text("{not json")
    with pytest.raises(OffsetStoreError, match="not JSON"):
        FileOffsetStore(path).load("pg")


def test_memory_store() -> None:
    _exercise(MemoryOffsetStore())


def test_sql_store_on_sqlite(tmp_path: Path) -> None:
    store = SqlOffsetStore(f"sqlite:///{tmp_path / 'o.db'}")
    try:
        _exercise(store)
    finally:
        store.close()


def test_sql_store_on_postgres(pg_database: str) -> None:
    store = SqlOffsetStore(pg_database)
    try:
        _exercise(store)
    finally:
        store.close()


def test_open_store_from_config(tmp_path: Path) -> None:
    assert isinstance(open_store(None, default_dir=tmp_path), FileOffsetStore)
    assert isinstance(open_store({"backend": "memory"}, default_dir=tmp_path), MemoryOffsetStore)
    with pytest.raises(ConfigError, match="unknown backend"):
        open_store({"backend": "zk"}, default_dir=tmp_path)
    with pytest.raises(ConfigError, match="unknown keys"):
        open_store({"backend": "file", "pth": "x"}, default_dir=tmp_path)
