"""Settings from the environment (12-factor)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_DATABASE_URL = "sqlite:///var/notifications.sqlite3"
DEFAULT_ID_BASE = 1_000_000_000
"""Rows the service creates get ids from here up; the monolith's stay below (its
BigAutoField counts from 1), so the two sides never hand out the same id, whatever the
stage and timing — rollback and re-promotion need no drain."""


def id_base(env: Mapping[str, str] | None = None) -> int:
    """``$NOTIFICATIONS_ID_BASE`` (a positive integer), else :data:`DEFAULT_ID_BASE`."""
    raw = (os.environ if env is None else env).get("NOTIFICATIONS_ID_BASE")
    if not raw:
        return DEFAULT_ID_BASE
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"NOTIFICATIONS_ID_BASE must be a positive integer, got {raw!r}")
    return value


@dataclass(frozen=True, kw_only=True)
class Settings:
    """``Settings(database_url="sqlite:///var/n.sqlite3", backend="outbox")``"""

    database_url: str = DEFAULT_DATABASE_URL
    backend: str = "console"
    outbox: str = "var/notifications-outbox.jsonl"
    max_body_bytes: int = 2_621_440  # Django's DATA_UPLOAD_MAX_MEMORY_SIZE
    id_base: int = DEFAULT_ID_BASE

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        return cls(
            database_url=env.get("NOTIFICATIONS_DATABASE_URL") or DEFAULT_DATABASE_URL,
            backend=env.get("NOTIFICATIONS_BACKEND", "console"),
            outbox=env.get("NOTIFICATIONS_OUTBOX") or "var/notifications-outbox.jsonl",
            id_base=id_base(env),
        )
