"""JSON access log lines to stdout, buffered and flushed about once a second."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import IO

import orjson
from starlette.types import Scope

_LINE = (
    b'{"ts":%.6f,"component":"proxy","msg":"access","method":%s,"path":%s,"status":%d,'
    b'"service":%s,"target":%s,"duration_ms":%.3f,"request_id":%s,"client":%s%s}\n'
)


class AccessLog:
    def __init__(self, stream: IO[bytes] | None = None, flush_every_s: float = 1.0) -> None:
        self.stream = stream if stream is not None else sys.stdout.buffer
        self.flush_every_s = flush_every_s
        self._pending: list[bytes] = []
        self._names: dict[str, bytes] = {}
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
        """One request (the fast path has no ASGI scope; :meth:`write` takes one).

        The line is formatted from a template, with only the free-form strings going
        through the JSON encoder (a dict + ``orjson.dumps`` per request cost twice as much).
        """
        dumps = orjson.dumps
        names = self._names
        svc = names.get(service)
        if svc is None:
            svc = names[service] = dumps(service)
        tgt = names.get(target)
        if tgt is None:
            tgt = names[target] = dumps(target)
        line = _LINE % (
            time.time(), dumps(method), dumps(path.decode("latin-1")), status, svc, tgt,
            seconds * 1000, dumps(request_id.decode("latin-1")),
            dumps(client) if client is not None else b"null",
            b',"error":' + dumps(error) if error is not None else b"",
        )
        pending = self._pending
        pending.append(line)
        if len(pending) >= 256:
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
