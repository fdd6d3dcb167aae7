"""Small builders of exchanges and observations for shadow tests."""

from __future__ import annotations

import json
from typing import Any

from strangler_proxy.shadow.observation import Exchange, Observation, ObservedRequest

JSON = (("content-type", "application/json"),)


def obs(
    body: Any = None,
    *,
    status: int | None = 200,
    target: str = "monolith",
    headers: tuple[tuple[str, str], ...] = JSON,
    raw: bytes | None = None,
    error: str | None = None,
    position: str | None = None,
) -> Observation:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
    return Observation(target, status, headers, data, 0.01, error, position)


def request(
    *,
    service: str = "svc",
    route: str = "/api/things/{id}",
    method: str = "GET",
    ts: float = 1_700_000_000.0,
    request_id: str = "r1",
    headers: tuple[tuple[str, str], ...] = (),
) -> ObservedRequest:
    return ObservedRequest(
        service, route, method, "/api/things/1", "", headers, b"", request_id, ts
    )


def exchange(
    primary: Observation,
    candidate: Observation,
    secondary: Observation | None = None,
    **req: Any,
) -> Exchange:
    return Exchange(request(**req), primary, candidate, secondary)
