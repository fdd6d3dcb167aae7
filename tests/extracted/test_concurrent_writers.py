"""The service and its sink write the same SQLite file at once: neither fails."""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from extracted.notifications.migrate import upgrade
from tests.extracted import seed
from tests.extracted.service_server import notifications_service


def test_api_writes_and_sink_batches_interleave_without_errors(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'n.sqlite3'}"
    upgrade(url)
    base = dt.datetime(2024, 1, 1)
    seed.apply_events(url, [seed.customer(1), *[seed.notification(i, 1, created=base)
                                                for i in range(1, 31)]])
    errors: list[BaseException] = []

    def sink_batches() -> None:
        try:
            for round_ in range(40):
                seed.apply_events(url, [
                    seed.notification(i, 1, created=base, status="failed" if round_ % 2 else "sent")
                    for i in range(1, 31)])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    with notifications_service(url, tmp_path) as service:
        def post(n: int) -> int:
            return httpx.post(f"{service.url}/api/notifications", timeout=30, json={
                "customer_id": 1, "channel": "email", "subject": f"s{n}", "body": "b"}
            ).status_code

        writer = threading.Thread(target=sink_batches)
        writer.start()
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(post, range(120)))
        writer.join()
        listing = httpx.get(f"{service.url}/api/notifications").json()
    assert not errors, errors
    assert statuses == [201] * 120
    assert listing["count"] == 150
