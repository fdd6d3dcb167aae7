"""Pooled keep-alive connections the upstream closes under us."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.proxy_env import TOKEN, ProxyEnv
from tests.support.servers import free_port, start_process, start_proxy


@pytest.fixture
def env(tmp_path: Path) -> Iterator[ProxyEnv]:
    port = free_port()
    flaky = start_process([sys.executable, "-m", "tests.support.flaky_keepalive", str(port)], port)
    try:
        plan = tmp_path / "migration_plan.yaml"
        plan.write_text(f'version: 1\nmonolith: {{url: "{flaky.url}"}}\nservices: {{}}\n')
        proxy = start_proxy(plan, {"STRANGLER_ADMIN_TOKEN": TOKEN})
        try:
            yield ProxyEnv(proxy, plan, {"flaky": flaky}, {"flaky": flaky.url})
        finally:
            proxy.stop()
    finally:
        flaky.stop()


def stale_retries(env: ProxyEnv) -> int:
    _, body = env.admin("status")
    return int(json.loads(body)["pools"][env.urls["flaky"]]["stale_retries"])


def test_idempotent_request_on_a_stale_connection_is_retried_once(env: ProxyEnv) -> None:
    first = env.request("GET", "/a")
    second = env.request("GET", "/b")
    assert first[0] == 200 and json.loads(first[2]) == {"answered": 1}
    assert second[0] == 200 and json.loads(second[2]) == {"answered": 1}  # fresh connection
    assert stale_retries(env) == 1


def test_non_idempotent_request_on_a_stale_connection_is_not_replayed(env: ProxyEnv) -> None:
    assert env.request("POST", "/a", body=b"{}")[0] == 200
    status, _, body = env.request("POST", "/b", body=b"{}")
    assert status == 502 and json.loads(body)["error"] == "closed"
    assert stale_retries(env) == 0
