"""The service's CDC sink: the monolith's tables into this service's database."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from cdc.sinks.mapping import sink_mapping
from cdc.sinks.sqlalchemy_applier import SqlAlchemyApplier
from extracted.notifications.models import DEFAULT_TABLES, Base

SINK_NAME = "notifications"


def notifications_applier(engine: sa.Engine, tables: Mapping[str, Any] | None = None
                          ) -> SqlAlchemyApplier:
    """The applier for the plan's ``data.tables`` (default: :data:`DEFAULT_TABLES`)."""
    return SqlAlchemyApplier(engine, sink_mapping(tables or DEFAULT_TABLES), Base.metadata,
                             sink=SINK_NAME)
