"""JSON access log lines to stdout, buffered and flushed about once a second."""

from __future__ import annotations

import asyncio
import sys
from time import time_ns
from typing import IO

from orjson import dumps
from starlette.types import Scope

_LINE = (
    b'{"ts":%s.%06d,"component":"proxy","msg":"access","method":%s,"path":%s,"status":%d,'
    b'"service":%s,"target":%s,"duration_ms":%.3f,"request_id":%s,"client":%s%s}\n'
)


KNOWN_MAX = 4096
"""JSON encodings of recent methods, paths, names and client addresses kept (they repeat)."""


class AccessLog:
    def __init__(self, stream: IO[bytes] | None = None, flush_every_s: float = 1.0) -> None:
        self.stream = stream if stream is not None else sys.stdout.buffer
        self.flush_every_s = flush_every_s
        self._pending: list[bytes] = []
        self._known: dict[str | bytes, bytes] = {}
        self._second = -1  # the Unix time second of the last line, and its digits
        self._second_text = b""
        self._task: asyncio.Task[None] | None = None

    def write(
        self, scope: Scope, service: str, target: str, status: int, seconds: float,
        request_id: bytes, error: str | None,
    ) -> None:
        client = scope.get("client")
        self.record(scope["method"], scope.get("raw_path") or b"", client[0] if client else None,
                    service, target, status, seconds, request_id, error)

    def _json(self, value: str | bytes) -> bytes:
        """``value`` as a JSON string (bytes read as Latin-1), remembered for next time."""
        encoded = dumps(value.decode("latin-1") if isinstance(value, bytes) else value)
        known = self._known
        if len(known) >= KNOWN_MAX:
            known.clear()
        known[value] = encoded
        return encoded

    def record(
        self, method: str, path: bytes, client: str | None, service: str, target: str,
        status: int, seconds: float, request_id: bytes, error: str | None,
    ) -> None:
        """One request (the fast path has no ASGI scope; :meth:`write` takes one).

        The line is formatted from a template; only values not seen recently go through
        the JSON encoder (a dict + ``orjson.dumps`` per request cost twice as much).
        """
        known = self._known
        # "%.6f" of the Unix time costs ~0.35 µs; the second's digits change once a second
        second, micros = divmod(time_ns() // 1000, 1_000_000)
        if second != self._second:
            self._second, self._second_text = second, b"%d" % second
        line = _LINE % (
            self._second_text, micros, known.get(method) or self._json(method),
            known.get(path) or self._json(path), status,
            known.get(service) or self._json(service), known.get(target) or self._json(target),
            seconds * 1000,
            b'"%s"' % request_id if request_id.isalnum()  # generated ids are hex
            else dumps(request_id.decode("latin-1")),
            b"null" if client is None else known.get(client) or self._json(client),
            b"" if error is None else b',"error":' + dumps(error),
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
