from __future__ import annotations

import json

import httpx

from tests.support.monolith_server import MonolithServer


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
