"""Alembic from zero on SQLite and the real PostgreSQL, and back down."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from cdc.sinks.sqlalchemy_applier import engine_url
from extracted.notifications.migrate import downgrade, upgrade
from extracted.notifications.models import Base


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'n.sqlite3'}"
    url: str = request.getfixturevalue("pg_database")
    return url


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(engine_url(url))
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_head_from_zero_creates_every_model(database_url: str) -> None:
    upgrade(database_url)
    assert _tables(database_url) == set(Base.metadata.tables) | {"alembic_version"}
    downgrade(database_url, "base")
    assert _tables(database_url) == {"alembic_version"}
    upgrade(database_url)
    assert "notification" in _tables(database_url)


def test_models_match_the_migrations(database_url: str) -> None:
    """Autogenerate finds nothing to do after ``upgrade head``: no forgotten migration."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    upgrade(database_url)
    engine = sa.create_engine(engine_url(database_url))
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()
    assert diff == []
