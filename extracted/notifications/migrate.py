"""``alembic upgrade head`` for the service's database, from Python."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config

from cdc.sinks.sqlalchemy_applier import engine_url

HERE = Path(__file__).parent


def alembic_config(database_url: str) -> Config:
    config = Config(str(HERE / "alembic.ini"))
    config.set_main_option("script_location", str(HERE / "migrations"))
    config.set_main_option("sqlalchemy.url", engine_url(database_url).replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)
