"""Targets that must serve the notifications API contract (monolith/API.md).

``notifications_api`` is parametrized over implementations. Each target gives an HTTP
client at its base URL and ``new_customer()`` — a customer id the implementation knows
(how it learns about customers is its own business: the monolith creates one through
/api/customers; an extracted service may get them by CDC or its own fixture).
To add an implementation, add a param and a branch in ``notifications_api``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.support.monolith_server import MonolithServer, start_monolith

IMPLEMENTATIONS = ["monolith"]


@dataclass
class NotificationsTarget:
    name: str
    client: httpx.Client
    new_customer: Callable[[], int]


@pytest.fixture(scope="session")
def contract_monolith() -> Iterator[MonolithServer]:
    with start_monolith() as server:
        yield server


def _monolith_customer(client: httpx.Client) -> Callable[[], int]:
    def create() -> int:
        response = client.post("/api/customers", json={
            "email": f"contract-{uuid.uuid4().hex[:12]}@example.com", "name": "Contract",
            "phone": "+49 170 5550000"})
        response.raise_for_status()
        return int(response.json()["id"])
    return create


@pytest.fixture(params=IMPLEMENTATIONS)
def notifications_api(request: pytest.FixtureRequest) -> Iterator[NotificationsTarget]:
    if request.param == "monolith":
        server: MonolithServer = request.getfixturevalue("contract_monolith")
        with httpx.Client(base_url=server.url, timeout=30) as client:
            yield NotificationsTarget("monolith", client, _monolith_customer(client))
    else:  # pragma: no cover - every param needs a branch
        raise AssertionError(f"no target for {request.param}")
