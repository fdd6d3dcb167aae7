"""Small builders of exchanges and observations for shadow tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
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


RawHeaders = tuple[tuple[bytes, bytes], ...]
JSON_RAW: RawHeaders = ((b"content-type", b"application/json"),)


@dataclass
class RawPair:
    """A :class:`~strangler_proxy.shadow.observation.RawExchange` as the mirror hands it
    over; counts how often it had to be decoded."""

    primary_body: bytes
    candidate_body: bytes
    primary_status: int = 200
    candidate_status: int | None = 200
    primary_headers: RawHeaders = JSON_RAW
    candidate_headers: RawHeaders = JSON_RAW
    candidate_error: str | None = None
    secondary: Observation | None = None
    service: str = "svc"
    route: str = "/api/things/{id}"
    method: str = "GET"
    ts: float = 1_700_000_000.0
    request_id: str = "r1"
    decoded: int = 0

    def exchange(self) -> Exchange:
        self.decoded += 1

        def text(headers: RawHeaders) -> tuple[tuple[str, str], ...]:
            return tuple((n.decode("latin-1"), v.decode("latin-1")) for n, v in headers)

        primary = Observation(
            "monolith", self.primary_status, text(self.primary_headers), self.primary_body, 0.01
        )
        candidate = Observation(
            "candidate", self.candidate_status, text(self.candidate_headers),
            self.candidate_body, 0.01, self.candidate_error,
        )
        req = request(
            service=self.service, route=self.route, method=self.method, ts=self.ts,
            request_id=self.request_id,
        )
        return Exchange(req, primary, candidate, self.secondary)
