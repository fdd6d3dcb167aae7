"""Session-wide real components: PostgreSQL server and the embedded Kafka broker.

Tests that need them take the ``postgres`` / ``kafka_bootstrap`` fixtures. When the
PostgreSQL binaries are missing a test that needs them fails (never skips) — `.ci/run`
installs them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.support.postgres import PostgresServer, PostgresUnavailable, start_server, stop_server


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    try:
        server = start_server()
    except PostgresUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        stop_server(server)


@pytest.fixture
def pg_database(postgres: PostgresServer) -> str:
    """A fresh, empty database on the session server; returns its URL."""
    return postgres.create_database(f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    from cdc.embedded_broker import EmbeddedBroker

    with EmbeddedBroker() as broker:
        yield broker.bootstrap_servers
