"""Settings from the environment (12-factor)."""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_DATABASE_URL = "sqlite:///var/notifications.sqlite3"


@dataclass(frozen=True, kw_only=True)
class Settings:
    """``Settings(database_url="sqlite:///var/n.sqlite3", backend="outbox")``"""

    database_url: str = DEFAULT_DATABASE_URL
    backend: str = "console"
    outbox: str = "var/notifications-outbox.jsonl"
    max_body_bytes: int = 2_621_440  # Django's DATA_UPLOAD_MAX_MEMORY_SIZE

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        return cls(
            database_url=env.get("NOTIFICATIONS_DATABASE_URL") or DEFAULT_DATABASE_URL,
            backend=env.get("NOTIFICATIONS_BACKEND", "console"),
            outbox=env.get("NOTIFICATIONS_OUTBOX") or "var/notifications-outbox.jsonl",
        )
