from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from cdc.errors import OffsetStoreError


class SqlOffsetStore:
    """``SqlOffsetStore("postgresql://.../db", table="cdc_offsets")`` — offsets in a table
    (created on first use) of any SQLAlchemy database; one row per name."""

    def __init__(self, url: str, *, table: str = "cdc_offsets") -> None:
        if url.startswith(("postgresql://", "postgres://")):
            url = "postgresql+psycopg2://" + url.split("://", 1)[1]
        self._engine = sa.create_engine(url)
        meta = sa.MetaData()
        self._table = sa.Table(
            table,
            meta,
            sa.Column("name", sa.String(200), primary_key=True),
            sa.Column("offset_json", sa.Text, nullable=False),
        )
        try:
            meta.create_all(self._engine)
        except SQLAlchemyError as exc:
            raise OffsetStoreError(f"cannot create offsets table {table}: {exc}") from exc

    def load(self, name: str) -> dict[str, Any] | None:
        try:
            with self._engine.connect() as conn:
                row = conn.execute(
                    sa.select(self._table.c.offset_json).where(self._table.c.name == name)
                ).first()
        except SQLAlchemyError as exc:
            raise OffsetStoreError(f"cannot read offset {name}: {exc}") from exc
        return None if row is None else dict(json.loads(row[0]))

    def save(self, name: str, offset: Mapping[str, Any]) -> None:
        text = json.dumps(dict(offset), sort_keys=True)
        try:
            with self._engine.begin() as conn:
                updated = conn.execute(
                    self._table.update()
                    .where(self._table.c.name == name)
                    .values(offset_json=text)
                ).rowcount
                if not updated:
                    conn.execute(self._table.insert().values(name=name, offset_json=text))
        except SQLAlchemyError as exc:
            raise OffsetStoreError(f"cannot write offset {name}: {exc}") from exc

    def delete(self, name: str) -> None:
        try:
            with self._engine.begin() as conn:
                conn.execute(self._table.delete().where(self._table.c.name == name))
        except SQLAlchemyError as exc:
            raise OffsetStoreError(f"cannot delete offset {name}: {exc}") from exc

    def close(self) -> None:
        self._engine.dispose()
