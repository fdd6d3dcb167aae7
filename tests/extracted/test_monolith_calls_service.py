"""Once the plan moves notifications to ``service``, the monolith's order flow sends
through the extracted service — and a service outage neither fails an order nor loses
a notification. Real monolith, real service, a plan file edited like an operator would."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import httpx

from extracted.notifications.migrate import upgrade
from monolith.notifications.remote import CircuitBreaker, Route, route_from_plan
from tests.extracted import seed
from tests.extracted.service_server import notifications_service
from tests.support.monolith_server import MonolithServer, Seed, run_monolith, start_monolith
from tests.support.servers import free_port

PLAN = """\
version: 1
monolith: {{url: http://127.0.0.1:8000}}
services:
  notifications:
    url: http://127.0.0.1:{port}
    routes: [{{path: /api/notifications, methods: [GET, POST]}}]
    stage: {stage}
"""


def test_route_from_plan_and_breaker() -> None:
    assert route_from_plan({}) == Route("monolith", None)
    plan = {"services": {"notifications": {"stage": "service", "url": "http://s"}}}
    assert route_from_plan(plan).remote
    plan["services"]["notifications"]["stage"] = "canary"
    assert not route_from_plan(plan).remote
    now = [0.0]
    breaker = CircuitBreaker(threshold=2, reset_s=5, clock=lambda: now[0])
    breaker.record(False)
    assert breaker.allow()
    breaker.record(False)
    assert not breaker.allow()
    now[0] = 5.0
    assert breaker.allow()  # half-open trial
    breaker.record(True)
    assert breaker.allow() and breaker.failures == 0


def _monolith_rows(server: MonolithServer, sql: str) -> list[tuple[Any, ...]]:
    path = server.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


def _order(server: MonolithServer, customer_id: int) -> None:
    [[product_id]] = _monolith_rows(
        server, "SELECT id FROM catalog_product WHERE active AND stock > 5 ORDER BY id LIMIT 1")
    response = httpx.post(f"{server.url}/api/orders", json={
        "customer_id": customer_id, "lines": [{"product_id": product_id, "quantity": 1}]})
    assert response.status_code == 201, response.text


def _service_notes(service_url: str, customer_id: int) -> list[dict[str, Any]]:
    return list(httpx.get(f"{service_url}/api/notifications",
                          params={"customer_id": customer_id}).json()["results"])


def test_order_flow_switches_to_the_service_by_plan_and_survives_an_outage(
    tmp_path: Path,
) -> None:
    port = free_port()
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN.format(port=port, stage="shadow"))
    (tmp_path / "m").mkdir()
    monolith = start_monolith(seed=Seed(customers=3, products=10, orders=0),
                              env={"STRANGLE_PLAN": str(plan)}, workdir=tmp_path / "m")
    service_db = f"sqlite:///{tmp_path / 'service.sqlite3'}"
    upgrade(service_db)
    # what CDC would have brought over: customers, templates (preferences: defaults)
    customers = _monolith_rows(monolith, "SELECT id, email FROM accounts_customer")
    templates = _monolith_rows(
        monolith, "SELECT id, key, channel, subject, body FROM notifications_notificationtemplate")
    seed.apply_events(service_db, [seed.customer(i, email=e) for i, e in customers]
                      + [seed.template(*t) for t in templates])
    customer = customers[0][0]
    local_count = "SELECT count(*) FROM notifications_notification"
    try:
        workdir = tmp_path / "svc"
        workdir.mkdir()
        service_ctx = notifications_service(service_db, workdir, port=port)
        service = service_ctx.__enter__()
        try:
            _order(monolith, customer)  # stage shadow: the monolith sends itself
            [[before]] = _monolith_rows(monolith, local_count)
            assert before == 1 and _service_notes(service.url, customer) == []

            plan.write_text(PLAN.format(port=port, stage="service"))
            _order(monolith, customer)
            [note] = _service_notes(service.url, customer)
            assert note["template"] == "order_placed" and note["status"] == "sent"
            assert _monolith_rows(monolith, local_count) == [(before,)]
        finally:
            service_ctx.__exit__(None, None, None)

        _order(monolith, customer)  # the service is down: the order still succeeds
        queued = _monolith_rows(monolith, "SELECT key, attempts FROM notifications_pendingsend")
        assert len(queued) == 1

        with notifications_service(service_db, workdir, port=port) as service:
            out = run_monolith(["notifications-retry", "--now"], monolith.env,
                               cwd=monolith.workdir)
            assert '"sent": 1, "queued": 0' in out.stdout
            run_monolith(["notifications-retry", "--now"], monolith.env, cwd=monolith.workdir)
            notes = _service_notes(service.url, customer)
            assert len(notes) == 2  # delivered once, not twice
            assert len(service.outbox.read_text().splitlines()) == 2
    finally:
        monolith.stop()
