"""Admin endpoints, metrics and the JSON access log of the real proxy process."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.proxy_env import ProxyEnv, proxy_env, wait_until

PLAN = """
version: 1
monolith: {url: "{monolith}"}
services:
  notifications:
    url: "{svc}"
    routes: [{path: /api/notifications, methods: [GET]}]
    stage: canary
    canary: {percent: 10, cohort: "header:X-Customer-Id"}
"""


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyEnv]:
    with proxy_env(tmp_path_factory.mktemp("admin"), PLAN, {"monolith": {}, "svc": {}}) as e:
        yield e


def test_health_and_readiness_need_no_token(env: ProxyEnv) -> None:
    assert env.admin("health", token=None) == (200, b'{"status":"ok"}')
    assert env.admin("ready", token=None)[0] == 200


def test_status_requires_the_bearer_token(env: ProxyEnv) -> None:
    assert env.admin("status", token=None)[0] == 401
    assert env.admin("status", token="wrong")[0] == 401
    status, body = env.admin("status")
    assert status == 200
    doc = json.loads(body)
    assert doc["plan"]["version"] == 1
    assert doc["plan"]["sha256"] == hashlib.sha256(env.plan_path.read_bytes()).hexdigest()
    svc = doc["plan"]["services"]["notifications"]
    assert svc["stage"] == "canary" and svc["canary_percent"] == 10 and svc["breaker"] == "closed"
    assert "requests" in doc["counters"] and "shadow_queue_depth" in doc["counters"]


def test_reserved_prefix_is_never_forwarded(env: ProxyEnv) -> None:
    status, headers, _body = env.request("GET", "/_strangler/anything")
    assert status == 404 and "x-upstream" not in {k.lower() for k, _ in headers}


def test_metrics_count_requests_by_service_target_and_status(env: ProxyEnv) -> None:
    before = env.metric("strangler_requests_total", service="-", target="monolith", status="200")
    env.request("GET", "/echo")
    env.request("GET", "/api/notifications", headers={"X-Customer-Id": "c1"})
    after = env.metric("strangler_requests_total", service="-", target="monolith", status="200")
    assert after == before + 1
    assert env.metric("strangler_requests_total", service="notifications") >= 1
    assert env.metric("strangler_request_duration_seconds_count", service="-") >= 1
    assert env.metric("strangler_plan_info", version="1") == 1


def test_access_log_is_one_json_object_per_request(env: ProxyEnv) -> None:
    env.request("GET", "/echo/logged?q=1", headers={"X-Request-ID": "log-me"})

    def logged() -> list[dict[str, object]]:
        out = []
        for line in env.proxy.output().splitlines():
            if line.startswith("{") and '"log-me"' in line:
                out.append(json.loads(line))
        return out

    assert wait_until(lambda: bool(logged()), timeout=5)
    entry = logged()[0]
    assert entry["msg"] == "access" and entry["status"] == 200 and entry["method"] == "GET"
    assert entry["path"] == "/echo/logged" and entry["target"] == "monolith"
    assert isinstance(entry["duration_ms"], float)


def test_status_is_forbidden_when_no_token_is_configured(tmp_path: Path) -> None:
    with proxy_env(
        tmp_path, PLAN, {"monolith": {}, "svc": {}}, env={"STRANGLER_ADMIN_TOKEN": ""}
    ) as e:
        assert e.admin("status")[0] == 403
        assert e.admin("health", token=None)[0] == 200


def test_shadow_report_page_is_served_to_admins_only(env: ProxyEnv) -> None:
    assert env.admin("report/notifications", token=None)[0] == 401
    status, body = env.admin("report/notifications")
    assert status == 200 and b"<html" in body.lower() and b"notifications" in body
    assert env.admin("report/nosuch")[0] == 404
