"""The notifications API contract (monolith/API.md), field for field.

Every implementation in ``notifications_api`` must pass these unchanged.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.contract.conftest import NotificationsTarget

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
NOTIFICATION_FIELDS = {"id", "customer_id", "channel", "template", "subject", "body", "status",
                       "read", "created_at", "sent_at", "read_at"}


def send(api: NotificationsTarget, customer_id: int, **overrides: Any) -> dict[str, Any]:
    body = {"customer_id": customer_id, "channel": "email", "subject": "Hi", "body": "Hello",
            **overrides}
    response = api.client.post("/api/notifications", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    return dict(error)


def test_create_returns_the_full_representation(notifications_api: NotificationsTarget) -> None:
    customer = notifications_api.new_customer()
    response = notifications_api.client.post("/api/notifications", json={
        "customer_id": customer, "channel": "email", "subject": " Welcome ", "body": "Hi there"})
    assert response.status_code == 201
    note = response.json()
    assert set(note) == NOTIFICATION_FIELDS
    assert response.headers["location"] == f"/api/notifications/{note['id']}"
    assert isinstance(note["id"], int)
    assert note["customer_id"] == customer
    assert (note["channel"], note["template"], note["subject"], note["body"]) == (
        "email", "", "Welcome", "Hi there")
    assert note["status"] == "sent"
    assert note["read"] is False and note["read_at"] is None
    assert TIMESTAMP.match(note["created_at"]) and TIMESTAMP.match(note["sent_at"])
    assert note["sent_at"] >= note["created_at"]


def test_get_by_id_and_404(notifications_api: NotificationsTarget) -> None:
    note = send(notifications_api, notifications_api.new_customer())
    got = notifications_api.client.get(f"/api/notifications/{note['id']}")
    assert got.status_code == 200 and got.json() == note
    missing = notifications_api.client.get("/api/notifications/987654321")
    assert assert_error(missing, 404, "not_found")["message"] == (
        "Notification 987654321 not found.")


def test_patch_marks_read_and_unread(notifications_api: NotificationsTarget) -> None:
    note = send(notifications_api, notifications_api.new_customer())
    path = f"/api/notifications/{note['id']}"
    read = notifications_api.client.patch(path, json={"read": True})
    assert read.status_code == 200
    assert read.json()["read"] is True and TIMESTAMP.match(read.json()["read_at"])
    again = notifications_api.client.patch(path, json={"read": True}).json()
    assert again["read_at"] == read.json()["read_at"]
    unread = notifications_api.client.patch(path, json={"read": False}).json()
    assert unread["read"] is False and unread["read_at"] is None
    assert {k: v for k, v in unread.items() if k not in {"read", "read_at"}} == {
        k: v for k, v in note.items() if k not in {"read", "read_at"}}


def test_patch_status(notifications_api: NotificationsTarget) -> None:
    note = send(notifications_api, notifications_api.new_customer())
    path = f"/api/notifications/{note['id']}"
    failed = notifications_api.client.patch(path, json={"status": "failed"}).json()
    assert failed["status"] == "failed" and failed["sent_at"] is None
    resent = notifications_api.client.patch(path, json={"status": "sent"}).json()
    assert resent["status"] == "sent" and TIMESTAMP.match(resent["sent_at"])


@pytest.mark.parametrize(("body", "fields"), [
    ({}, {"non_field_errors"}),
    ({"read": "yes"}, {"read"}),
    ({"status": "lost"}, {"status"}),
    ({"subject": "changed"}, {"subject"}),
])
def test_patch_validation(notifications_api: NotificationsTarget, body: dict[str, Any],
                          fields: set[str]) -> None:
    note = send(notifications_api, notifications_api.new_customer())
    path = f"/api/notifications/{note['id']}"
    error = assert_error(notifications_api.client.patch(path, json=body), 400, "validation_error")
    assert set(error["fields"]) == fields
    assert notifications_api.client.get(path).json() == note


def test_patch_unknown_id_is_404(notifications_api: NotificationsTarget) -> None:
    response = notifications_api.client.patch("/api/notifications/987654321", json={"read": True})
    assert_error(response, 404, "not_found")


@pytest.mark.parametrize(("body", "fields"), [
    ({}, {"customer_id", "channel", "subject", "body"}),
    ({"customer_id": "1", "channel": "email", "subject": "s", "body": "b"}, {"customer_id"}),
    ({"customer_id": 1, "channel": "fax", "subject": "s", "body": "b"}, {"channel"}),
    ({"customer_id": 1, "channel": "email", "subject": "", "body": "b"}, {"subject"}),
    ({"customer_id": 1, "channel": "email", "subject": "x" * 201, "body": "b"}, {"subject"}),
    ({"customer_id": 1, "channel": "email", "subject": "s", "body": "b", "status": "sent"},
     {"status"}),
])
def test_create_validation(notifications_api: NotificationsTarget, body: dict[str, Any],
                           fields: set[str]) -> None:
    error = assert_error(notifications_api.client.post("/api/notifications", json=body), 400,
                         "validation_error")
    assert set(error["fields"]) == fields


def test_create_for_unknown_customer_is_a_field_error(
        notifications_api: NotificationsTarget) -> None:
    response = notifications_api.client.post("/api/notifications", json={
        "customer_id": 987654321, "channel": "email", "subject": "s", "body": "b"})
    error = assert_error(response, 400, "validation_error")
    assert error["fields"] == {"customer_id": ["Unknown customer 987654321."]}


def test_malformed_and_non_json_bodies(notifications_api: NotificationsTarget) -> None:
    client = notifications_api.client
    assert_error(client.post("/api/notifications", content=b'{"customer_id": ',
                             headers={"Content-Type": "application/json"}), 400, "malformed_json")
    assert_error(client.post("/api/notifications", content=b"customer_id=1",
                             headers={"Content-Type": "application/x-www-form-urlencoded"}),
                 415, "unsupported_media_type")
    note = send(notifications_api, notifications_api.new_customer())
    assert_error(client.patch(f"/api/notifications/{note['id']}", content=b"read=1",
                              headers={"Content-Type": "text/plain"}),
                 415, "unsupported_media_type")


def test_methods_not_allowed(notifications_api: NotificationsTarget) -> None:
    collection = notifications_api.client.delete("/api/notifications")
    assert_error(collection, 405, "method_not_allowed")
    assert collection.headers["allow"] == "GET, HEAD, POST"
    item = notifications_api.client.put("/api/notifications/1", json={})
    assert_error(item, 405, "method_not_allowed")
    assert item.headers["allow"] == "GET, HEAD, PATCH"


def test_list_envelope_filters_and_ordering(notifications_api: NotificationsTarget) -> None:
    client = notifications_api.client
    customer = notifications_api.new_customer()
    client.put(f"/api/notifications/preferences/{customer}",
               json={"channels": {"sms": True}}).raise_for_status()
    first = send(notifications_api, customer, subject="one")
    second = send(notifications_api, customer, channel="sms", subject="two")
    third = send(notifications_api, customer, subject="three")
    client.patch(f"/api/notifications/{third['id']}", json={"read": True}).raise_for_status()

    def ids(**params: Any) -> list[int]:
        response = client.get("/api/notifications", params={"customer_id": customer, **params})
        assert response.status_code == 200, response.text
        return [n["id"] for n in response.json()["results"]]

    listing = client.get("/api/notifications", params={"customer_id": customer}).json()
    assert set(listing) == {"count", "next", "previous", "results"}
    assert listing["count"] == 3 and listing["next"] is None and listing["previous"] is None
    assert listing["results"][0] == client.get(f"/api/notifications/{third['id']}").json()
    assert ids() == [third["id"], second["id"], first["id"]]
    assert ids(ordering="id") == [first["id"], second["id"], third["id"]]
    assert ids(channel="sms") == [second["id"]]
    assert ids(read="true") == [third["id"]]
    assert ids(read="false", ordering="id") == [first["id"], second["id"]]
    assert ids(status="sent", ordering="-id") == [third["id"], second["id"], first["id"]]

    page = client.get("/api/notifications", params={"customer_id": customer, "ordering": "id",
                                                    "page_size": 2}).json()
    assert [n["id"] for n in page["results"]] == [first["id"], second["id"]]
    assert page["next"] == (f"/api/notifications?customer_id={customer}&ordering=id"
                            "&page=2&page_size=2")
    last = client.get(page["next"]).json()
    assert [n["id"] for n in last["results"]] == [third["id"]]
    assert last["previous"] == (f"/api/notifications?customer_id={customer}&ordering=id"
                                "&page=1&page_size=2")


@pytest.mark.parametrize("params", [{"customer_id": "x"}, {"channel": "fax"}, {"read": "maybe"},
                                    {"status": "lost"}, {"ordering": "subject"}, {"page": "0"},
                                    {"page_size": "101"}])
def test_list_rejects_bad_parameters(notifications_api: NotificationsTarget,
                                     params: dict[str, str]) -> None:
    response = notifications_api.client.get("/api/notifications", params=params)
    error = assert_error(response, 400, "validation_error")
    assert set(error["fields"]) == set(params)


def test_preferences_contract(notifications_api: NotificationsTarget) -> None:
    client = notifications_api.client
    customer = notifications_api.new_customer()
    path = f"/api/notifications/preferences/{customer}"
    assert client.get(path).json() == {"customer_id": customer,
                                       "channels": {"email": True, "sms": False}}
    updated = client.patch(path, json={"channels": {"email": False}})
    assert updated.status_code == 200
    assert updated.json() == {"customer_id": customer, "channels": {"email": False, "sms": False}}
    disabled = client.post("/api/notifications", json={
        "customer_id": customer, "channel": "email", "subject": "s", "body": "b"})
    assert_error(disabled, 409, "channel_disabled")
    assert client.get("/api/notifications", params={"customer_id": customer}).json()["count"] == 0
    bad = client.put(path, json={"channels": {"email": 1, "fax": True}})
    assert set(assert_error(bad, 400, "validation_error")["fields"]["channels"]) == {"email",
                                                                                     "fax"}
    assert_error(client.get("/api/notifications/preferences/987654321"), 404, "not_found")
