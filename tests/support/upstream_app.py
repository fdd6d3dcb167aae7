"""A small ASGI upstream used behind the proxy in integration tests.

Its name (``UPSTREAM_NAME`` env) is in every response's ``x-upstream`` header, so tests
see where a request went. ``/echo...`` answers with what it received, other paths
exercise one forwarding behaviour each.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import os
from typing import Any
from urllib.parse import parse_qs

NAME = os.environ.get("UPSTREAM_NAME", "upstream").encode()
DELAY = float(os.environ.get("UPSTREAM_DELAY", "0"))  # seconds added to every request
Scope = dict[str, Any]


async def _body(receive: Any) -> bytes:
    parts = []
    while True:
        msg = await receive()
        parts.append(msg.get("body", b""))
        if not msg.get("more_body"):
            return b"".join(parts)


async def _respond(
    send: Any,
    status: int,
    body: bytes = b"",
    headers: list[tuple[bytes, bytes]] | None = None,
    content_type: bytes = b"application/json",
) -> None:
    hdrs = [(b"content-type", content_type), (b"x-upstream", NAME), *(headers or [])]
    if not any(n == b"content-length" for n, _ in hdrs):
        hdrs.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": body})


async def app(scope: Scope, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if DELAY:
        await asyncio.sleep(DELAY)
    path: str = scope["path"]
    q = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
    if path.startswith("/upload"):
        digest = hashlib.sha256()
        size = 0
        while True:
            msg = await receive()
            chunk = msg.get("body", b"")
            digest.update(chunk)
            size += len(chunk)
            if not msg.get("more_body"):
                break
        await _respond(send, 200, json.dumps({"size": size, "sha256": digest.hexdigest()}).encode())
        return
    if path.startswith("/download"):
        # n chunks of `size` bytes; with `length=1` a Content-Length, else chunked
        n, size = int(q.get("n", "10")), int(q.get("size", "65536"))
        delay = float(q.get("delay", "0"))
        headers = [(b"content-type", b"application/octet-stream"), (b"x-upstream", NAME)]
        if q.get("length") == "1":
            headers.append((b"content-length", str(n * size).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        block = b"x" * size
        for i in range(n):
            await send({"type": "http.response.body", "body": block, "more_body": i < n - 1})
            if delay:
                await asyncio.sleep(delay)
        if n == 0:
            await send({"type": "http.response.body", "body": b""})
        return
    if path.startswith("/status/"):
        status = int(path.rsplit("/", 1)[1])
        body = (
            b"" if status in (204, 304) or scope["method"] == "HEAD" else b'{"status": %d}' % status
        )
        headers = [(b"etag", b'"v1"')]
        if status in (204, 304):
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [(b"x-upstream", NAME), *headers],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        await _respond(send, status, body, headers)
        return
    if path == "/truncated":  # promises 1000 bytes, sends 10, then dies
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", b"1000"), (b"x-upstream", NAME)],
            }
        )
        await send({"type": "http.response.body", "body": b"x" * 10, "more_body": True})
        await asyncio.sleep(0.05)
        raise RuntimeError("upstream died mid-body (on purpose)")
    if path == "/cookies":
        await _respond(
            send,
            200,
            b"{}",
            [
                (b"set-cookie", b"a=1; Path=/"),
                (b"set-cookie", b"b=2; HttpOnly"),
                (b"set-cookie", b"c=3; Max-Age=60"),
            ],
        )
        return
    if path == "/gzip":
        raw = gzip.compress(b'{"compressed": true}' * 50, mtime=0)
        await _respond(
            send, 200, raw, [(b"content-encoding", b"gzip"), (b"vary", b"accept-encoding")]
        )
        return
    if path == "/redirect":
        await _respond(send, 302, b"", [(b"location", b"/echo/redirected")])
        return
    if path == "/hop":
        await _respond(
            send,
            200,
            b"{}",
            [
                (b"connection", b"x-internal"),
                (b"x-internal", b"secret"),
                (b"keep-alive", b"timeout=5"),
                (b"x-kept", b"yes"),
            ],
        )
        return
    if path.startswith("/slow"):
        await asyncio.sleep(float(q.get("s", "5")))
        await _respond(send, 200, b'{"slow": true}')
        return
    if path == "/json1k":
        await _respond(send, 200, json.dumps({"items": ["x" * 90] * 10}).encode())
        return
    body = await _body(receive)
    info = {
        "upstream": NAME.decode(),
        "method": scope["method"],
        "raw_path": (scope.get("raw_path") or b"").decode("latin-1"),
        "query_string": scope["query_string"].decode("latin-1"),
        "headers": [[n.decode("latin-1"), v.decode("latin-1")] for n, v in scope["headers"]],
        "body": body.decode("latin-1"),
    }
    status = int(q.get("status", "200"))
    await _respond(send, status, json.dumps(info).encode())
