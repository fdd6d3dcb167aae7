"""Targets that must serve the notifications API contract (monolith/API.md).

``notifications_api`` is parametrized over implementations. Each target gives an HTTP
client at its base URL and ``new_customer()`` — a customer id the implementation knows
(how it learns about customers is its own business: the monolith creates one through
/api/customers; an extracted service may get them by CDC or its own fixture).
To add an implementation, add a param and a branch in ``notifications_api``.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.support.monolith_server import MonolithServer, start_monolith

IMPLEMENTATIONS = ["monolith", "service"]


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


@pytest.fixture(scope="session")
def contract_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from tests.extracted.service_server import notifications_service

    workdir = tmp_path_factory.mktemp("notifications-service")
    with notifications_service(f"sqlite:///{workdir / 'n.sqlite3'}", workdir) as server:
        yield server


_SERVICE_CUSTOMER_IDS = itertools.count(1_000_000)


def _service_customer(database_url: str) -> Callable[[], int]:
    """Customers reach the service as the monolith's CDC events, applied by its sink."""
    from tests.extracted import seed

    def create() -> int:
        customer_id = next(_SERVICE_CUSTOMER_IDS)
        seed.apply_events(database_url, [seed.customer(customer_id, phone="+49 170 5550000")])
        return customer_id
    return create


@pytest.fixture(params=IMPLEMENTATIONS)
def notifications_api(request: pytest.FixtureRequest) -> Iterator[NotificationsTarget]:
    if request.param == "monolith":
        server: MonolithServer = request.getfixturevalue("contract_monolith")
        with httpx.Client(base_url=server.url, timeout=30) as client:
            yield NotificationsTarget("monolith", client, _monolith_customer(client))
    elif request.param == "service":
        service = request.getfixturevalue("contract_service")
        with httpx.Client(base_url=service.url, timeout=30) as client:
            yield NotificationsTarget("service", client, _service_customer(service.database_url))
    else:  # pragma: no cover - every param needs a branch
        raise AssertionError(f"no target for {request.param}")
