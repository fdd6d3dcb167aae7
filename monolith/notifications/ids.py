"""Ids of new notifications and preferences stay in the monolith's own range on SQLite.

With two-way sync (``services.notifications.data.owned``) the service's rows — ids from
``NOTIFICATIONS_ID_BASE`` (10⁹) up — are applied into these tables. SQLite hands out
``max(rowid) + 1`` for a new row, which would then be above the service's ids and soon
collide with the service's next one. So on SQLite the id is taken explicitly from the
table's ``sqlite_sequence`` counter, in one statement (atomic, whoever else writes); the
reverse sink never moves that counter (:mod:`cdc.sinks.origin`). PostgreSQL needs
nothing: explicit ids do not touch a sequence.
"""

from __future__ import annotations

import os
from typing import Any

from django.db import connections
from django.db.models.signals import pre_save

DEFAULT_ID_BASE = 1_000_000_000  # same default as extracted.notifications.config


def id_base() -> int:
    raw = os.environ.get("NOTIFICATIONS_ID_BASE")
    return int(raw) if raw and raw.isdigit() and int(raw) > 0 else DEFAULT_ID_BASE


def next_id(using: str, table: str) -> int:
    """The next id of ``table`` below the service range, from ``sqlite_sequence``."""
    connection = connections[using]
    quoted = connection.ops.quote_name(table)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE sqlite_sequence SET seq = seq + 1 WHERE name = %s RETURNING seq",
                       [table])
        row = cursor.fetchone()
        if row is None:  # the table never had an id handed out by SQLite
            cursor.execute(
                "INSERT INTO sqlite_sequence (name, seq) SELECT %s, coalesce(max(id), 0) + 1 "
                f"FROM {quoted} WHERE id < %s RETURNING seq", [table, id_base()])
            row = cursor.fetchone()
    return int(row[0])


def _allocate(sender: Any, instance: Any, raw: bool = False, using: str = "default",
              **_kw: Any) -> None:
    if raw or instance.pk is not None or connections[using].vendor != "sqlite":
        return
    instance.pk = next_id(using, sender._meta.db_table)


def connect() -> None:
    from monolith.notifications.models import Notification, NotificationPreference

    for model in (Notification, NotificationPreference):
        pre_save.connect(_allocate, sender=model, dispatch_uid=f"strangler-ids-{model.__name__}")
