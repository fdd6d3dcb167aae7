"""A candidate service for shadow tests: forwards to ``UPSTREAM_URL`` (the monolith) and
changes exactly one top-level JSON field (``TAMPER_FIELD`` set to the JSON value
``TAMPER_VALUE``) in every JSON object it answers."""

from __future__ import annotations

import json
import os
from typing import Any

import httpx

UPSTREAM = os.environ.get("UPSTREAM_URL", "http://127.0.0.1:8000")
FIELD = os.environ.get("TAMPER_FIELD", "")
VALUE = json.loads(os.environ.get("TAMPER_VALUE", "null"))


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = b""
    while True:
        msg = await receive()
        body += msg.get("body", b"")
        if not msg.get("more_body"):
            break
    url = (
        UPSTREAM
        + scope["path"]
        + ("?" + scope["query_string"].decode() if scope["query_string"] else "")
    )
    async with httpx.AsyncClient() as client:
        upstream = await client.request(scope["method"], url, content=body)
    data = upstream.content
    ctype = upstream.headers.get("content-type", "application/octet-stream")
    if FIELD and ctype.startswith("application/json"):
        doc = json.loads(data)
        if isinstance(doc, dict) and FIELD in doc:
            doc[FIELD] = VALUE
            data = json.dumps(doc).encode()
    headers = [(b"content-type", ctype.encode()), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": upstream.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": data})
