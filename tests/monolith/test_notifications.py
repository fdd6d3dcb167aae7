"""Order events reach customers through notification_send, honouring their preferences."""

from __future__ import annotations

import json

import httpx

from tests.monolith.conftest import make_customer, make_product, place_order
from tests.support.monolith_server import MonolithServer


def notifications(api: httpx.Client, customer_id: int) -> list[dict[str, object]]:
    response = api.get("/api/notifications", params={"customer_id": customer_id,
                                                     "ordering": "id"})
    assert response.status_code == 200
    return list(response.json()["results"])


def outbox(server: MonolithServer) -> list[dict[str, object]]:
    if not server.outbox_path.exists():
        return []
    return [json.loads(line) for line in server.outbox_path.read_text().splitlines()]


def test_order_placement_sends_an_email_by_default(api: httpx.Client,
                                                   monolith: MonolithServer) -> None:
    customer = make_customer(api, name="Grace")
    product = make_product(api, price="12.50", stock=5)
    order = place_order(api, customer["id"], (product["id"], 2)).json()
    [note] = notifications(api, customer["id"])
    assert note["channel"] == "email"
    assert note["template"] == "order_placed"
    assert note["status"] == "sent"
    assert note["subject"] == f"Order #{order['id']} confirmed"
    assert "Hello Grace" in str(note["body"]) and "25.00 EUR" in str(note["body"])
    assert note["sent_at"] is not None and note["read"] is False
    delivered = [m for m in outbox(monolith) if m["notification_id"] == note["id"]]
    assert delivered == [{"notification_id": note["id"], "channel": "email",
                          "recipient": customer["email"], "subject": note["subject"],
                          "body": note["body"]}]


def test_preferences_decide_the_channels(api: httpx.Client, monolith: MonolithServer) -> None:
    customer = make_customer(api, phone="+49 170 1234567")
    product = make_product(api, stock=5)
    prefs = api.get(f"/api/notifications/preferences/{customer['id']}")
    assert prefs.json() == {"customer_id": customer["id"],
                            "channels": {"email": True, "sms": False}}
    updated = api.put(f"/api/notifications/preferences/{customer['id']}",
                      json={"channels": {"email": False, "sms": True}})
    assert updated.status_code == 200
    assert updated.json()["channels"] == {"email": False, "sms": True}

    place_order(api, customer["id"], (product["id"], 1)).raise_for_status()
    [note] = notifications(api, customer["id"])
    assert note["channel"] == "sms"
    sent = [m for m in outbox(monolith) if m["notification_id"] == note["id"]]
    assert sent[0]["recipient"] == "+49 170 1234567"

    api.patch(f"/api/notifications/preferences/{customer['id']}",
              json={"channels": {"sms": False}}).raise_for_status()
    place_order(api, customer["id"], (product["id"], 1)).raise_for_status()
    assert len(notifications(api, customer["id"])) == 1


def test_cancel_and_ship_notify_too(api: httpx.Client) -> None:
    customer = make_customer(api)
    product = make_product(api, stock=5)
    first = place_order(api, customer["id"], (product["id"], 1)).json()
    second = place_order(api, customer["id"], (product["id"], 1)).json()
    api.post(f"/api/orders/{first['id']}/cancel").raise_for_status()
    api.post(f"/api/orders/{second['id']}/pay").raise_for_status()
    api.post(f"/api/orders/{second['id']}/ship").raise_for_status()
    templates = [n["template"] for n in notifications(api, customer["id"])]
    assert templates == ["order_placed", "order_placed", "order_cancelled", "order_shipped"]


def test_bad_preference_updates(api: httpx.Client) -> None:
    customer = make_customer(api)
    path = f"/api/notifications/preferences/{customer['id']}"
    for body in ({"channels": {"pigeon": True}}, {"channels": {"email": "yes"}},
                 {"channels": {}}, {}):
        assert api.put(path, json=body).status_code == 400, body
    assert api.get(path).json()["channels"] == {"email": True, "sms": False}
    assert api.get("/api/notifications/preferences/987654321").status_code == 404


def test_templates_are_listed(api: httpx.Client) -> None:
    listing = api.get("/api/notifications/templates", params={"page_size": 100}).json()
    keys = {(t["key"], t["channel"]) for t in listing["results"]}
    assert {("order_placed", "email"), ("order_placed", "sms")} <= keys
