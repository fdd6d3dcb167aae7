"""The notifications service as a real uvicorn server on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from cdc.sinks.sqlalchemy_applier import engine_url
from extracted.notifications.config import DEFAULT_ID_BASE
from strangler_proxy.shadow.lag import LagVerdict, SourcePosition, classify_lag
from strangler_proxy.shadow.observation import DRY_RUN_HEADER, SOURCE_POSITION_HEADER
from tests.extracted import seed
from tests.extracted.service_server import ServiceServer, notifications_service


def _count(database_url: str, table: str = "notification") -> int:
    engine = sa.create_engine(engine_url(database_url))
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())
    finally:
        engine.dispose()


def _seed(database_url: str) -> None:
    from extracted.notifications.migrate import upgrade

    upgrade(database_url)
    base = dt.datetime(2024, 3, 1, 12, 0, 0, 123456)
    seed.apply_events(database_url, [
        seed.customer(1, phone="+100"), seed.customer(2),
        seed.preference(1, 2, "email", False),
        *[seed.notification(i, 1 if i % 2 else 2, created=base + dt.timedelta(minutes=i),
                            read=i == 3) for i in range(1, 26)],
    ])


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'n.sqlite3'}"
    url: str = request.getfixturevalue("pg_database")
    return url


@pytest.fixture
def service_any_db(any_db: str, tmp_path: Path) -> Iterator[ServiceServer]:
    _seed(any_db)
    with notifications_service(any_db, tmp_path) as server:
        yield server


@pytest.fixture
def service(tmp_path: Path) -> Iterator[ServiceServer]:
    url = f"sqlite:///{tmp_path / 'n.sqlite3'}"
    _seed(url)
    with notifications_service(url, tmp_path) as server:
        yield server


def _post(service: ServiceServer, body: object, **headers: str) -> httpx.Response:
    return httpx.post(f"{service.url}/api/notifications", content=json.dumps(body),
                      headers={"content-type": "application/json", **headers})


def test_dry_run_write_rolls_back_and_sends_nothing(service_any_db: ServiceServer) -> None:
    before = _count(service_any_db.database_url)
    body = {"customer_id": 1, "channel": "email", "subject": "Hi", "body": "There"}
    dry = _post(service_any_db, body, **{DRY_RUN_HEADER: "1"})
    assert dry.status_code == 201, dry.text
    assert dry.json()["status"] == "sent"  # answers as a real write would
    assert _count(service_any_db.database_url) == before  # ...but nothing persisted
    assert not service_any_db.outbox.exists()  # ...and no message went out
    patched = httpx.patch(f"{service_any_db.url}/api/notifications/1",
                          json={"read": True}, headers={DRY_RUN_HEADER: "true"})
    assert patched.status_code == 200 and patched.json()["read"] is True
    assert httpx.get(f"{service_any_db.url}/api/notifications/1").json()["read"] is False

    real = _post(service_any_db, body)
    assert real.status_code == 201
    assert real.headers["location"] == f"/api/notifications/{real.json()['id']}"
    assert _count(service_any_db.database_url) == before + 1
    [line] = service_any_db.outbox.read_text().splitlines()
    assert json.loads(line)["recipient"] == "c1@example.com"
    metrics = httpx.get(f"{service_any_db.url}/metrics").text
    assert "notifications_dry_run_writes_total 2.0" in metrics


def test_source_position_header_reflects_applied_events(service_any_db: ServiceServer) -> None:
    first = httpx.get(f"{service_any_db.url}/api/notifications")
    position = first.headers[SOURCE_POSITION_HEADER]
    seed.apply_events(service_any_db.database_url, [
        seed.notification(99, 1, created=dt.datetime(2024, 4, 1))])
    second = httpx.get(f"{service_any_db.url}/api/notifications/99")
    assert second.status_code == 200
    newer = second.headers[SOURCE_POSITION_HEADER]
    # The shadow engine's lag classification reads the header: older < newer there too.
    assert SourcePosition.parse(position) < SourcePosition.parse(newer)
    assert classify_lag(None, position, expected=newer) is LagVerdict.BEHIND
    assert classify_lag(None, newer, expected=newer) is LagVerdict.CURRENT
    commit, change = (int(x) for x in newer.removeprefix("seq:").split("."))
    health = httpx.get(f"{service_any_db.url}/healthz").json()
    assert health["status"] == "ok" and health["source_position"] == f"{commit}:{change}"
    assert health["source_lag_s"] is not None
    assert "notifications_source_lag_seconds " in httpx.get(f"{service_any_db.url}/metrics").text


def test_list_pagination_filters_ordering(service: ServiceServer) -> None:
    page = httpx.get(f"{service.url}/api/notifications", params={"page_size": 10})
    data = page.json()
    assert data["count"] == 25
    assert [r["id"] for r in data["results"]] == list(range(25, 15, -1))  # newest first
    assert data["next"] == "/api/notifications?page=2&page_size=10"
    assert data["previous"] is None
    last = httpx.get(f"{service.url}/api/notifications",
                     params={"page": 3, "page_size": 10}).json()
    assert last["next"] is None and last["previous"] == "/api/notifications?page=2&page_size=10"
    only = httpx.get(f"{service.url}/api/notifications",
                     params={"customer_id": 1, "read": "true"}).json()
    assert [r["id"] for r in only["results"]] == [3]
    ordered = httpx.get(f"{service.url}/api/notifications",
                        params={"ordering": "id", "page_size": 2}).json()
    assert [r["id"] for r in ordered["results"]] == [1, 2]
    item = ordered["results"][0]
    assert item == {
        "id": 1, "customer_id": 1, "channel": "email", "template": "", "subject": "Subject 1",
        "body": "Body 1", "status": "sent", "read": False,
        "created_at": "2024-03-01T12:01:00.123456Z", "sent_at": "2024-03-01T12:01:00.123456Z",
        "read_at": None,
    }


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "error"),
    [
        ("GET", "/api/notifications/999", {}, 404,
         {"code": "not_found", "message": "Notification 999 not found."}),
        ("GET", "/api/notifications/abc", {}, 404,
         {"code": "not_found", "message": "No API endpoint at /api/notifications/abc."}),
        ("DELETE", "/api/notifications/1", {}, 405,
         {"code": "method_not_allowed",
          "message": "Method DELETE not allowed; allowed: GET, HEAD, PATCH."}),
        ("POST", "/api/notifications", {"content": b"x=1",
                                        "headers": {"content-type": "text/plain"}}, 415,
         {"code": "unsupported_media_type",
          "message": "Expected Content-Type: application/json, got 'text/plain'."}),
        ("POST", "/api/notifications", {"content": b"{oops",
                                        "headers": {"content-type": "application/json"}}, 400,
         {"code": "malformed_json",
          "message": "Malformed JSON: Expecting property name enclosed in double quotes at "
                     "line 1 column 2."}),
        ("POST", "/api/notifications", {"json": {"customer_id": "1", "channel": "fax",
                                                 "extra": 1}}, 400,
         {"code": "validation_error", "message": "Invalid input.", "fields": {
             "extra": ["Unknown or read-only field."], "customer_id": ["Must be an integer."],
             "channel": ["Must be one of: email, sms."], "subject": ["This field is required."],
             "body": ["This field is required."]}}),
        ("POST", "/api/notifications", {"json": {"customer_id": 77, "channel": "email",
                                                 "subject": "s", "body": "b"}}, 400,
         {"code": "validation_error", "message": "Invalid input.",
          "fields": {"customer_id": ["Unknown customer 77."]}}),
        ("POST", "/api/notifications", {"json": {"customer_id": 2, "channel": "email",
                                                 "subject": "s", "body": "b"}}, 409,
         {"code": "channel_disabled",
          "message": "Customer 2 has disabled the email channel."}),
        ("PATCH", "/api/notifications/1", {"json": {}}, 400,
         {"code": "validation_error", "message": "Invalid input.",
          "fields": {"non_field_errors": ["Nothing to update."]}}),
        ("GET", "/api/notifications?page_size=101", {}, 400,
         {"code": "validation_error", "message": "Invalid input.",
          "fields": {"page_size": ["Must be at most 100."]}}),
        ("GET", "/api/notifications?ordering=subject", {}, 400,
         {"code": "validation_error", "message": "Invalid input.",
          "fields": {"ordering": ["Unknown ordering 'subject'; allowed: created_at, id, "
                                  "sent_at."]}}),
    ],
)
def test_errors_have_the_monolith_bodies(service: ServiceServer, method: str, path: str,
                                         kwargs: dict[str, object], status: int,
                                         error: dict[str, object]) -> None:
    response = httpx.request(method, f"{service.url}{path}", **kwargs)  # type: ignore[arg-type]
    assert response.status_code == status
    assert response.json() == {"error": error}
    assert response.headers["content-type"] == "application/json"
    if status == 405:
        assert response.headers["allow"] == "GET, HEAD, PATCH"


def test_oversized_body_is_refused(service: ServiceServer) -> None:
    response = _post(service, {"body": "x" * 3_000_000})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_update_and_preferences(service: ServiceServer) -> None:
    read = httpx.patch(f"{service.url}/api/notifications/2", json={"read": True})
    assert read.status_code == 200 and read.json()["read"] is True
    failed = httpx.patch(f"{service.url}/api/notifications/2", json={"status": "failed"})
    assert failed.json()["status"] == "failed" and failed.json()["sent_at"] is None
    prefs = httpx.get(f"{service.url}/api/notifications/preferences/2").json()
    assert prefs == {"customer_id": 2, "channels": {"email": False, "sms": False}}
    updated = httpx.put(f"{service.url}/api/notifications/preferences/2",
                        json={"channels": {"sms": True}})
    assert updated.json()["channels"] == {"email": False, "sms": True}
    sms = _post(service, {"customer_id": 2, "channel": "sms", "subject": "s", "body": "b"})
    # the service's own id range, far above the monolith's ids synced here
    assert sms.status_code == 201 and sms.json()["id"] == DEFAULT_ID_BASE
    again = _post(service, {"customer_id": 2, "channel": "sms", "subject": "s", "body": "b"})
    assert again.json()["id"] == DEFAULT_ID_BASE + 1
    missing = httpx.get(f"{service.url}/api/notifications/preferences/9")
    assert missing.status_code == 404


def test_health_and_metrics(service: ServiceServer) -> None:
    health = httpx.get(f"{service.url}/healthz")
    assert health.status_code == 200 and health.json()["database"] == "sqlite"
    httpx.get(f"{service.url}/api/notifications")
    metrics = httpx.get(f"{service.url}/metrics").text
    assert ('notifications_http_requests_total{method="GET",route="/api/notifications",'
            'status="200"} 1.0') in metrics


def test_internal_send_renders_templates_and_is_idempotent(service: ServiceServer) -> None:
    seed.apply_events(service.database_url, [
        seed.template(1, "order_placed", "email", "Order $order_id", "Hi $customer_name"),
        seed.template(2, "order_placed", "sms", "Order $order_id", "Paid $total"),
    ])
    body = {"customer_id": 1, "template": "order_placed", "context": {"order_id": 42},
            "idempotency_key": "k-1"}
    first = httpx.post(f"{service.url}/internal/notifications/send", json=body)
    assert first.status_code == 201, first.text
    [note] = first.json()["results"]  # sms is off by default: email only
    assert (note["channel"], note["subject"], note["body"], note["template"]) == (
        "email", "Order 42", "Hi Customer 1", "order_placed")
    again = httpx.post(f"{service.url}/internal/notifications/send", json=body)
    assert again.status_code == 200 and again.json() == first.json()
    assert len(service.outbox.read_text().splitlines()) == 1  # sent once
    missing = httpx.post(f"{service.url}/internal/notifications/send",
                         json={**body, "customer_id": 404, "idempotency_key": "k-2"})
    assert missing.status_code == 404
    bad = httpx.post(f"{service.url}/internal/notifications/send", json={"template": 1})
    assert bad.status_code == 400 and set(bad.json()["error"]["fields"]) == {
        "customer_id", "template", "idempotency_key"}


def test_database_gone_gives_503_health_and_json_500(
    pg_database: str, tmp_path: Path, postgres: object
) -> None:
    import psycopg2

    _seed(pg_database)
    dbname = pg_database.rsplit("/", 1)[1]
    with notifications_service(pg_database, tmp_path) as server:
        assert httpx.get(f"{server.url}/healthz").status_code == 200
        conn = psycopg2.connect(postgres.dsn())  # type: ignore[attr-defined]
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE "{dbname}" WITH (FORCE)')
        conn.close()
        health = httpx.get(f"{server.url}/healthz")
        assert health.status_code == 503 and health.json()["status"] == "error"
        listing = httpx.get(f"{server.url}/api/notifications")
        assert listing.status_code == 500
        assert listing.json() == {"error": {"code": "internal_error",
                                            "message": "Internal server error."}}
