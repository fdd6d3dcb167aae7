"""Stage ``service`` with fallback to the monolith, and the per-upstream breaker."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from tests.support.proxy_env import ProxyEnv, proxy_env

PLAN = """
version: 1
monolith: {url: "{monolith}"}
services:
  orders:
    url: "{dead}"
    routes: [{path: /api/orders, methods: [GET, POST]}]
    stage: service
    fallback: {to: monolith, on: [connect_error, timeout, 5xx], breaker: {failures: 3, reset_s: 1}}
  flaky:
    url: "{svc}"
    routes: [{path: "/status/{code}", methods: [GET, POST]}]
    stage: service
    fallback: {on: [5xx], breaker: {failures: 1000}}
  sluggish:
    url: "{slowsvc}"
    timeouts: {read: 0.3}
    routes: [{path: /api/slow, methods: [GET]}]
    stage: service
    fallback: {on: [timeout], breaker: {failures: 1000}}
  nofallback:
    url: "{svc}"
    routes: [{path: "/api/plain/{code}", methods: [GET]}]
    stage: service
"""


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyEnv]:
    with proxy_env(
        tmp_path_factory.mktemp("fallback"),
        PLAN,
        {"monolith": {}, "svc": {}, "slowsvc": {"UPSTREAM_DELAY": "2"}},
    ) as e:
        yield e


def upstream(headers: list[tuple[str, str]]) -> str:
    return next(v for k, v in headers if k.lower() == "x-upstream")


def test_connect_error_falls_back_and_breaker_opens_then_probes(env: ProxyEnv) -> None:
    for _ in range(3):
        status, headers, _ = env.request("GET", "/api/orders")
        assert status == 200 and upstream(headers) == "monolith"
    assert env.metric("strangler_fallbacks_total", service="orders", reason="connect_error") == 3
    assert env.metric("strangler_breaker_state", state="open") == 1
    status, headers, _ = env.request("GET", "/api/orders")
    assert status == 200 and upstream(headers) == "monolith"
    assert env.metric("strangler_fallbacks_total", service="orders", reason="breaker_open") == 1
    time.sleep(1.1)  # cool-down passes: one half-open probe goes to the (still dead) service
    env.request("GET", "/api/orders")
    assert env.metric("strangler_fallbacks_total", service="orders", reason="connect_error") == 4
    assert env.metric("strangler_breaker_state", state="open") == 1
    _, body = env.admin("status")
    assert json.loads(body)["plan"]["services"]["orders"]["breaker"] == "open"


def test_connect_error_falls_back_for_writes_with_the_body_replayed(env: ProxyEnv) -> None:
    status, headers, body = env.request("POST", "/api/orders", body=b'{"qty": 2}')
    assert status == 200 and upstream(headers) == "monolith"
    assert json.loads(body)["body"] == '{"qty": 2}'


def test_5xx_on_idempotent_request_is_retried_on_the_monolith(env: ProxyEnv) -> None:
    status, headers, _ = env.request("GET", "/status/503")
    assert status == 503 and upstream(headers) == "monolith"  # the monolith's own answer
    assert env.metric("strangler_fallbacks_total", service="flaky", reason="5xx") >= 1


def test_5xx_on_a_write_is_returned_as_is(env: ProxyEnv) -> None:
    status, headers, _ = env.request("POST", "/status/500", body=b"{}")
    assert status == 500 and upstream(headers) == "svc"


def test_timeout_falls_back(env: ProxyEnv) -> None:
    started = time.monotonic()
    status, headers, _ = env.request("GET", "/api/slow")
    assert status == 200 and upstream(headers) == "monolith"
    assert time.monotonic() - started < 1.5
    assert env.metric("strangler_fallbacks_total", service="sluggish", reason="timeout") == 1


def test_without_fallback_5xx_passes_through(env: ProxyEnv) -> None:
    status, headers, _ = env.request("GET", "/api/plain/1?status=500")
    assert status == 500 and upstream(headers) == "svc"
