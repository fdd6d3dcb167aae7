"""Where notifications go (``NOTIFICATIONS_BACKEND``), as in the monolith.

* ``console`` — one JSON log line per message (logger ``extracted.notifications``)
* ``outbox``  — one JSON line per message appended to ``NOTIFICATIONS_OUTBOX``
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

log = logging.getLogger("extracted.notifications")


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


def backend_named(name: str, outbox: str | Path) -> Backend:
    if name == "console":
        return ConsoleBackend()
    if name == "outbox":
        return OutboxBackend(outbox)
    raise ValueError(f"unknown NOTIFICATIONS_BACKEND {name!r}; use console or outbox")
