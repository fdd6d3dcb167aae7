"""Where notifications go: pluggable delivery backends (``NOTIFICATIONS_BACKEND``).

* ``console`` — one JSON log line per message on stdout (logger ``monolith.notifications``)
* ``outbox``  — appends one JSON line per message to ``NOTIFICATIONS_OUTBOX``
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from django.conf import settings

from monolith.common import dry_run

log = logging.getLogger("monolith.notifications")


@dataclass(frozen=True)
class OutgoingMessage:
    notification_id: int
    channel: str
    recipient: str
    subject: str
    body: str


class DeliveryError(Exception):
    pass


class Backend(Protocol):
    def deliver(self, message: OutgoingMessage) -> None: ...


class ConsoleBackend:
    def deliver(self, message: OutgoingMessage) -> None:
        log.info("notification delivered", extra={"notification": asdict(message)})


class OutboxBackend:
    _lock = threading.Lock()

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def deliver(self, message: OutgoingMessage) -> None:
        line = json.dumps(asdict(message), ensure_ascii=False) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._lock, self.path.open("a", encoding="utf-8") as fh:
                fh.write(line)
        except OSError as exc:
            raise DeliveryError(f"cannot write outbox {self.path}: {exc}") from exc


class NullBackend:
    """Delivers nothing: used for dry-run requests."""

    def deliver(self, message: OutgoingMessage) -> None:
        return None


def get_backend() -> Backend:
    if dry_run.active.get():
        return NullBackend()
    name = settings.NOTIFICATIONS_BACKEND
    if name == "console":
        return ConsoleBackend()
    if name == "outbox":
        return OutboxBackend(settings.NOTIFICATIONS_OUTBOX)
    raise DeliveryError(f"unknown NOTIFICATIONS_BACKEND {name!r}; use console or outbox")
