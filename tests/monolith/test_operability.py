from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.support.monolith_server import MonolithServer, sqlite_url, start_monolith


def test_healthz_reports_the_database(api: httpx.Client, monolith: MonolithServer) -> None:
    body = api.get("/healthz").json()
    assert body["status"] == "ok"
    assert body["database"] == ("postgresql" if "postgresql" in monolith.database_url
                                else "sqlite")


def test_metrics_count_requests_by_route_pattern(api: httpx.Client) -> None:
    api.get("/api/customers/1")
    api.get("/api/customers/987654321")
    text = api.get("/metrics").text
    assert ('monolith_http_requests_total{method="GET",route="/api/customers/<int:customer_id>",'
            'status="404"}') in text
    assert "monolith_http_request_duration_seconds_bucket" in text
    assert "monolith_orders_placed_total" in text


def test_logs_are_json_lines_on_stdout(api: httpx.Client, monolith: MonolithServer) -> None:
    api.get("/healthz")
    lines = [line for line in monolith.log().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]
    assert all(r["component"] == "monolith" for r in records)
    assert any(r["logger"] == "uvicorn.access" and "/healthz" in r["msg"] for r in records)


def test_healthz_is_503_when_the_database_is_gone(tmp_path: Path) -> None:
    db = tmp_path / "shop.sqlite3"
    with start_monolith(sqlite_url(db), workdir=tmp_path) as server:
        assert httpx.get(f"{server.url}/healthz").status_code == 200
        for path in tmp_path.glob("shop.sqlite3*"):
            path.unlink()
        db.mkdir()  # the file is now a directory: SQLite cannot open it
        response = httpx.get(f"{server.url}/healthz")
        assert response.status_code == 503
        assert response.json()["status"] == "error"
        api_error = httpx.get(f"{server.url}/api/customers")
        assert api_error.status_code == 500
        assert api_error.json() == {"error": {"code": "internal_error",
                                              "message": "Internal server error."}}
