"""The monolith says which captured source position its answers reflect
(``x-strangler-source-position``), for the shadow engine's lag classification."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cdc.sinks.position import Position
from strangler_proxy.shadow.lag import LagVerdict, classify_lag
from strangler_proxy.shadow.observation import SOURCE_POSITION_HEADER
from tests.monolith.conftest import make_customer
from tests.support.monolith_server import MonolithServer, Seed, start_monolith


@pytest.fixture(scope="module")
def captured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MonolithServer]:
    server = start_monolith(seed=Seed(customers=3, products=2, orders=2),
                            workdir=tmp_path_factory.mktemp("captured-monolith"))
    try:
        server.manage("manage", "capture", "install", "--table", "notifications_notification",
                      "--table", "accounts_customer")
        yield server
    finally:
        server.stop()


def changelog_id(server: MonolithServer) -> int:
    path = server.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        row = conn.execute(
            "SELECT seq FROM sqlite_sequence WHERE name = 'strangler_changelog'").fetchone()
    return int(row[0]) if row else 0


def test_reads_carry_the_changelog_position_and_it_follows_captured_writes(
    captured: MonolithServer,
) -> None:
    with httpx.Client(base_url=captured.url, timeout=30) as api:
        before = api.get("/api/notifications")
        assert before.status_code == 200
        first = before.headers[SOURCE_POSITION_HEADER]
        assert first == Position(changelog_id(captured), changelog_id(captured)).header_value()

        customer = make_customer(api)  # a captured table changes
        created = api.post("/api/notifications", json={
            "customer_id": customer["id"], "channel": "email", "subject": "s", "body": "b"})
        assert created.status_code == 201, created.text
        # a write's answer reflects its own change, which no service can have yet
        assert SOURCE_POSITION_HEADER not in created.headers

        after = api.get(f"/api/notifications/{created.json()['id']}")
        second = after.headers[SOURCE_POSITION_HEADER]
        now = changelog_id(captured)
        assert second == f"seq:{now}.{now}"
        assert now >= int(first.split(".")[1]) + 2  # the customer row and the notification
        # A service that applied everything up to the first answer is behind the second.
        assert classify_lag(second, first) is LagVerdict.BEHIND
        assert classify_lag(second, second) is LagVerdict.CURRENT
        assert api.head("/api/notifications").headers[SOURCE_POSITION_HEADER] == second


def test_uncaptured_writes_do_not_move_the_position(captured: MonolithServer) -> None:
    with httpx.Client(base_url=captured.url, timeout=30) as api:
        first = api.get("/api/catalog/products").headers[SOURCE_POSITION_HEADER]
        created = api.post("/api/catalog/categories", json={"name": "Lamps", "slug": "lamps"})
        assert created.status_code == 201, created.text
        assert api.get("/api/catalog/products").headers[SOURCE_POSITION_HEADER] == first


def test_no_header_without_capture(tmp_path: Path) -> None:
    with start_monolith(workdir=tmp_path) as server:
        response = httpx.get(f"{server.url}/api/notifications", timeout=30)
        assert response.status_code == 200
        assert SOURCE_POSITION_HEADER not in response.headers


@pytest.mark.postgres
def test_no_header_on_postgresql(pg_monolith: MonolithServer) -> None:
    # No cheap exact "captured position" there: the shadow engine re-checks instead.
    response = httpx.get(f"{pg_monolith.url}/api/notifications", timeout=30)
    assert response.status_code == 200
    assert SOURCE_POSITION_HEADER not in response.headers
