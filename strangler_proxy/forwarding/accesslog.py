"""JSON access log lines to stdout, buffered and flushed about once a second."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import IO, Any

import orjson
from starlette.types import Scope


class AccessLog:
    def __init__(self, stream: IO[bytes] | None = None, flush_every_s: float = 1.0) -> None:
        self.stream = stream if stream is not None else sys.stdout.buffer
        self.flush_every_s = flush_every_s
        self._pending: list[bytes] = []
        self._task: asyncio.Task[None] | None = None

    def write(
        self, scope: Scope, service: str, target: str, status: int, seconds: float,
        request_id: bytes, error: str | None,
    ) -> None:
        client = scope.get("client")
        self.record(scope["method"], scope.get("raw_path") or b"", client[0] if client else None,
                    service, target, status, seconds, request_id, error)

    def record(
        self, method: str, path: bytes, client: str | None, service: str, target: str,
        status: int, seconds: float, request_id: bytes, error: str | None,
    ) -> None:
        """One request (the fast path has no ASGI scope; :meth:`write` takes one)."""
        entry: dict[str, Any] = {
            "ts": time.time(),
            "component": "proxy",
            "msg": "access",
            "method": method,
            "path": path.decode("latin-1"),
            "status": status,
            "service": service,
            "target": target,
            "duration_ms": round(seconds * 1000, 3),
            "request_id": request_id.decode(),
            "client": client,
        }
        if error is not None:
            entry["error"] = error
        self._pending.append(orjson.dumps(entry) + b"\n")
        if len(self._pending) >= 256:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            try:
                self.stream.write(data)
                self.stream.flush()
            except (OSError, ValueError):
                pass

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._flusher())

    async def _flusher(self) -> None:
        while True:
            await asyncio.sleep(self.flush_every_s)
            self.flush()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self.flush()
