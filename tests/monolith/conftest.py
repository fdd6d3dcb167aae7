"""A real monolith server per database backend (SQLite file, session PostgreSQL).

Tests create their own uniquely named rows, so the session-wide servers can be shared.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.monolith_server import MonolithServer, Seed, start_monolith

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def monolith_servers(request: pytest.FixtureRequest) -> Iterator[dict[str, MonolithServer]]:
    """backend -> running server, started on first use and shared by the session."""
    servers: dict[str, MonolithServer] = {}

    class Lazy(dict[str, MonolithServer]):
        def __missing__(self, backend: str) -> MonolithServer:
            database_url = None
            if backend == "postgres":
                database_url = request.getfixturevalue("postgres").create_database("monolith_api")
            servers[backend] = self[backend] = start_monolith(database_url, seed=Seed())
            return servers[backend]

    yield Lazy()
    for server in servers.values():
        server.stop()


@pytest.fixture(scope="session", params=BACKENDS)
def monolith(request: pytest.FixtureRequest,
             monolith_servers: dict[str, MonolithServer]) -> MonolithServer:
    return monolith_servers[request.param]


@pytest.fixture(scope="session")
def pg_monolith(postgres: object, monolith_servers: dict[str, MonolithServer]) -> MonolithServer:
    return monolith_servers["postgres"]


@pytest.fixture
def api(monolith: MonolithServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=monolith.url, timeout=30.0) as client:
        yield client


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def make_customer(api: httpx.Client, **fields: Any) -> dict[str, Any]:
    body = {"email": f"{unique('c')}@example.com", "name": "Test Customer", **fields}
    response = api.post("/api/customers", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def make_product(api: httpx.Client, **fields: Any) -> dict[str, Any]:
    body = {"sku": unique("SKU"), "name": "Test Product", "price": "10.00", "stock": 10,
            **fields}
    response = api.post("/api/catalog/products", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def place_order(api: httpx.Client, customer_id: int, *lines: tuple[int, int]) -> httpx.Response:
    return api.post("/api/orders", json={
        "customer_id": customer_id,
        "lines": [{"product_id": pid, "quantity": qty} for pid, qty in lines],
    })


def stock_of(api: httpx.Client, product_id: int) -> int:
    return int(api.get(f"/api/catalog/products/{product_id}").json()["stock"])
