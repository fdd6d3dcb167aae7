"""Canary through the real proxy: sticky cohorts by key, cookie for anonymous clients."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.support.proxy_env import ProxyEnv, proxy_env, wait_until

PLAN = """
version: 1
monolith: {url: "{monolith}"}
services:
  catalog:
    url: "{svc}"
    routes: [{path: /api/products, methods: [GET]}]
    stage: canary
    canary: {percent: PERCENT, cohort: "header:X-Customer-Id"}
  accounts:
    url: "{svc}"
    routes: [{path: /api/me, methods: [GET]}]
    stage: canary
    canary: {percent: 50}
"""


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyEnv]:
    with proxy_env(
        tmp_path_factory.mktemp("canary"),
        PLAN.replace("PERCENT", "30"),
        {"monolith": {}, "svc": {}},
    ) as e:
        yield e


def side(env: ProxyEnv, path: str, headers: dict[str, str]) -> str:
    status, h, _ = env.request("GET", path, headers=headers)
    assert status == 200
    return dict((k.lower(), v) for k, v in h)["x-upstream"]


def test_cohorts_are_sticky_and_raising_percent_never_moves_one_back(env: ProxyEnv) -> None:
    customers = [f"customer-{i}" for i in range(60)]
    before = {}
    for c in customers:
        sides = {side(env, "/api/products", {"X-Customer-Id": c}) for _ in range(3)}
        assert len(sides) == 1, f"{c} flipped between {sides}"
        before[c] = sides.pop()
    on_service = {c for c, s in before.items() if s == "svc"}
    assert 5 <= len(on_service) <= 35  # ~30% of 60
    env.write_plan(PLAN.replace("PERCENT", "60"))
    time.sleep(0.2)
    assert wait_until(
        lambda: env.metric("strangler_plan_reloads_total", result="ok") >= 1, timeout=5
    )
    after = {c: side(env, "/api/products", {"X-Customer-Id": c}) for c in customers}
    assert on_service <= {c for c, s in after.items() if s == "svc"}
    assert len([s for s in after.values() if s == "svc"]) > len(on_service)


def test_anonymous_client_gets_a_cohort_cookie_and_stays(env: ProxyEnv) -> None:
    status, headers, _ = env.request("GET", "/api/me")
    cookies = [v for k, v in headers if k.lower() == "set-cookie"]
    assert status == 200 and len(cookies) == 1
    assert cookies[0].startswith("strangler_cohort=") and "HttpOnly" in cookies[0]
    cookie = cookies[0].split(";")[0]
    sides = set()
    for _ in range(5):
        _s, h, _ = env.request("GET", "/api/me", headers={"Cookie": cookie})
        assert not [v for k, v in h if k.lower() == "set-cookie"]
        sides.add(dict((k.lower(), v) for k, v in h)["x-upstream"])
    assert len(sides) == 1
