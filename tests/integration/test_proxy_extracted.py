"""Shadow with the real pieces: the Django monolith answers, the real extracted
notifications service gets mirrored writes marked dry-run and rolls them back."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import httpx

from tests.support.monolith_server import Seed, start_monolith
from tests.support.proxy_env import wait_until
from tests.support.recording_sink import read
from tests.support.servers import free_port, start_process, start_proxy

PLAN = """
version: 1
monolith: {url: "MONOLITH"}
services:
  notifications:
    url: "SERVICE"
    routes:
      - {path: /api/notifications, methods: [GET, POST]}
      - {path: "/api/notifications/{id}", methods: [GET, PATCH]}
    stage: shadow
    shadow: {sample: 1.0, writes: dry-run}
"""


def test_mirrored_write_is_dry_run_on_the_real_service(tmp_path: Path) -> None:
    monolith = start_monolith(seed=Seed(customers=3, products=2, orders=1), workdir=tmp_path)
    port = free_port()
    service = start_process(
        [sys.executable, "-m", "extracted.notifications", "serve", "--port", str(port)],
        port,
        {
            "NOTIFICATIONS_DATABASE_URL": f"sqlite:///{tmp_path / 'svc.sqlite3'}",
            "NOTIFICATIONS_BACKEND": "outbox",
            "NOTIFICATIONS_OUTBOX": str(tmp_path / "svc-outbox.jsonl"),
        },
    )
    # what CDC would have copied over: the customer the write refers to
    with sqlite3.connect(tmp_path / "svc.sqlite3") as db:
        db.execute(
            "INSERT INTO customer (id, email, name, phone) VALUES (1, 'a@example.com', 'A', '')"
        )
    record = tmp_path / "exchanges.jsonl"
    plan = tmp_path / "migration_plan.yaml"
    plan.write_text(PLAN.replace("MONOLITH", monolith.url).replace("SERVICE", service.url))
    proxy = start_proxy(
        plan,
        {"STRANGLER_SINK": "tests.support.recording_sink:factory", "RECORD_PATH": str(record)},
    )
    try:
        before = httpx.get(f"{service.url}/api/notifications").json()
        created = httpx.post(
            f"{proxy.url}/api/notifications",
            json={"customer_id": 1, "channel": "email", "subject": "shadowed", "body": "hi"},
            headers={"X-Request-ID": "dry-1"},
        )
        assert created.status_code == 201, created.text  # the monolith's answer
        assert (
            httpx.get(f"{monolith.url}/api/notifications/{created.json()['id']}").status_code == 200
        )

        def recorded() -> list[dict[str, object]]:
            return [x for x in read(record) if x["request_id"] == "dry-1"]

        assert wait_until(lambda: bool(recorded()), timeout=10)
        exchange = recorded()[0]
        candidate = exchange["candidate"]
        assert isinstance(candidate, dict) and candidate["error"] is None
        assert candidate["status"] == 201, candidate["body"]
        assert json.loads(str(candidate["body"]))["subject"] == "shadowed"
        # rolled back: the service's data and outbox are unchanged
        assert httpx.get(f"{service.url}/api/notifications").json() == before
        outbox = tmp_path / "svc-outbox.jsonl"
        assert not outbox.exists() or outbox.read_text().strip() == ""
    finally:
        proxy.stop()
        service.stop()
        monolith.stop()
