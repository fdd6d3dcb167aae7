"""Writes carrying the proxy's dry-run header answer normally and leave no trace."""

from __future__ import annotations

import httpx

from strangler_proxy.shadow.observation import DRY_RUN_HEADER
from tests.monolith.conftest import make_customer, make_product, stock_of
from tests.support.monolith_server import MonolithServer

DRY = {DRY_RUN_HEADER: "1"}


def outbox_size(server: MonolithServer) -> int:
    path = server.outbox_path
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_dry_run_order_is_answered_then_rolled_back(api: httpx.Client,
                                                    monolith: MonolithServer) -> None:
    customer = make_customer(api)
    product = make_product(api, price="2.00", stock=3)
    sent_before = outbox_size(monolith)
    response = api.post("/api/orders", headers=DRY, json={
        "customer_id": customer["id"], "lines": [{"product_id": product["id"], "quantity": 2}]})
    assert response.status_code == 201
    assert response.json()["total"] == "4.00" and response.json()["status"] == "placed"
    assert api.get(f"/api/orders/{response.json()['id']}").status_code == 404
    assert stock_of(api, product["id"]) == 3
    assert api.get("/api/orders", params={"customer_id": customer["id"]}).json()["count"] == 0
    assert api.get("/api/notifications",
                   params={"customer_id": customer["id"]}).json()["count"] == 0
    assert outbox_size(monolith) == sent_before

    real = api.post("/api/orders", json={
        "customer_id": customer["id"], "lines": [{"product_id": product["id"], "quantity": 2}]})
    assert real.status_code == 201 and stock_of(api, product["id"]) == 1


def test_dry_run_notification_and_errors(api: httpx.Client, monolith: MonolithServer) -> None:
    customer = make_customer(api)
    sent_before = outbox_size(monolith)
    created = api.post("/api/notifications", headers=DRY, json={
        "customer_id": customer["id"], "channel": "email", "subject": "s", "body": "b"})
    assert created.status_code == 201 and created.json()["status"] == "sent"
    assert api.get(f"/api/notifications/{created.json()['id']}").status_code == 404
    assert outbox_size(monolith) == sent_before
    dup = api.post("/api/customers", headers=DRY, json={"email": customer["email"], "name": "x"})
    assert dup.status_code == 409
    off = api.post("/api/customers", headers={DRY_RUN_HEADER: "0"},
                   json={"email": f"off-{customer['email']}", "name": "x"})
    assert off.status_code == 201
    assert api.get(f"/api/customers/{off.json()['id']}").status_code == 200
