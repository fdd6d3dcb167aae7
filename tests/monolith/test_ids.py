"""monolith/notifications/ids.py: on SQLite the monolith keeps its new notification and
preference ids below the service's range even when the service's rows (ids from 10⁹,
applied by the reverse sink) sit in the same table — SQLite alone would hand out
max(rowid) + 1."""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from extracted.notifications.config import DEFAULT_ID_BASE as BASE
from tests.monolith.conftest import make_customer
from tests.support.monolith_server import MonolithServer, start_monolith


@pytest.fixture
def monolith() -> Iterator[MonolithServer]:
    server = start_monolith(workdir=Path(tempfile.mkdtemp(prefix="strangler-ids-")))
    try:
        yield server
    finally:
        server.stop()


def _db(server: MonolithServer) -> sqlite3.Connection:
    return sqlite3.connect(str(server.workdir / "monolith.sqlite3"), isolation_level=None,
                           timeout=20)


def test_new_rows_stay_below_the_service_range(monolith: MonolithServer) -> None:
    api = httpx.Client(base_url=monolith.url, timeout=10)
    customer = make_customer(api)["id"]
    first = api.post("/api/notifications", json={"customer_id": customer, "channel": "email",
                                                 "subject": "s", "body": "b"}).json()["id"]
    db = _db(monolith)
    # what the reverse sink does: the service's rows, with the counters put back
    counters = db.execute("SELECT name, seq FROM sqlite_sequence").fetchall()
    db.execute("INSERT INTO notifications_notification (id, customer_id, channel, template, "
               "subject, body, status, created_at) VALUES (?, ?, 'email', '', 's', 'b', 'sent',"
               " '2026-01-01 00:00:00')", (BASE + 5, customer))
    db.execute("INSERT INTO notifications_notificationpreference (id, customer_id, channel, "
               "enabled, updated_at) VALUES (?, ?, 'email', 1, '2026-01-01 00:00:00')",
               (BASE + 3, customer))
    marks = ", ".join("?" for _ in counters)
    db.execute(f"DELETE FROM sqlite_sequence WHERE name NOT IN ({marks})",
               [name for name, _ in counters])
    db.executemany("UPDATE sqlite_sequence SET seq = ? WHERE name = ?",
                   [(seq, name) for name, seq in counters])
    with ThreadPoolExecutor(4) as pool:  # concurrent writers still get distinct ids
        created = list(pool.map(lambda _i: api.post("/api/notifications", json={
            "customer_id": customer, "channel": "email", "subject": "s", "body": "b"}),
            range(8)))
    ids = sorted(r.json()["id"] for r in created)
    assert [r.status_code for r in created] == [201] * 8
    assert ids == list(range(first + 1, first + 9))
    prefs = api.put(f"/api/notifications/preferences/{customer}",
                    json={"channels": {"sms": True}})
    assert prefs.status_code == 200, prefs.text
    (sms_id,) = db.execute("SELECT id FROM notifications_notificationpreference WHERE "
                           "customer_id = ? AND channel = 'sms'", (customer,)).fetchone()
    assert sms_id < BASE
    db.close()
    api.close()
