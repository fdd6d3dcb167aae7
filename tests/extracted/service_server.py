"""Start the real notifications service (``python -m extracted.notifications serve``)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.servers import Server, free_port, start_process


@dataclass
class ServiceServer:
    server: Server
    database_url: str
    outbox: Path

    @property
    def url(self) -> str:
        return self.server.url

    def stop(self) -> None:
        self.server.stop()


@contextmanager
def notifications_service(database_url: str, workdir: Path, *, port: int | None = None
                          ) -> Iterator[ServiceServer]:
    port = port or free_port()
    outbox = workdir / "outbox.jsonl"
    env = {
        "NOTIFICATIONS_DATABASE_URL": database_url,
        "NOTIFICATIONS_BACKEND": "outbox",
        "NOTIFICATIONS_OUTBOX": str(outbox),
    }
    server = start_process(
        [sys.executable, "-m", "extracted.notifications", "serve", "--port", str(port)], port, env
    )
    try:
        httpx.get(f"{server.url}/healthz", timeout=10).raise_for_status()
        yield ServiceServer(server, database_url, outbox)
    finally:
        server.stop()
