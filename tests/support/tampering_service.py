"""The real notifications service with one regression: every notification's
``subject`` comes back upper-cased. Its data, source position header and everything
else are the real service's (``NOTIFICATIONS_DATABASE_URL`` etc. from the environment),
so it is "caught up but wrong" — what the shadow engine must report as a mismatch
however far behind or ahead the CDC sink is."""

from __future__ import annotations

import json
from typing import Any

from extracted.notifications.app import create_app

service = create_app()


def _tamper(doc: Any) -> Any:
    if isinstance(doc, dict):
        if isinstance(doc.get("subject"), str):
            doc["subject"] = doc["subject"].upper() + "!"
        for value in doc.values():
            _tamper(value)
    elif isinstance(doc, list):
        for item in doc:
            _tamper(item)
    return doc


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        await service(scope, receive, send)
        return
    start: dict[str, Any] = {}
    body = bytearray()

    async def capture(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
            return
        body.extend(message.get("body", b""))
        if message.get("more_body"):
            return
        data = bytes(body)
        headers = [(n, v) for n, v in start.get("headers", []) if n.lower() != b"content-length"]
        if any(n.lower() == b"content-type" and v.startswith(b"application/json")
               for n, v in headers):
            data = json.dumps(_tamper(json.loads(data))).encode()
        headers.append((b"content-length", str(len(data)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": data})

    await service(scope, receive, capture)
