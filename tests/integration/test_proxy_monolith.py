"""The real Django monolith behind the real proxy: what clients get through the proxy
is what the monolith says, byte for byte."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.support.monolith_server import MonolithServer, Seed, start_monolith
from tests.support.proxy_env import TOKEN, ProxyEnv
from tests.support.servers import start_proxy

PLAN = """
version: 1
monolith: {url: "MONOLITH"}
services:
  notifications:
    url: "MONOLITH"
    routes:
      - {path: /api/notifications, methods: [GET, POST]}
      - {path: "/api/notifications/{id}", methods: [GET, PATCH]}
    stage: shadow
    shadow: {sample: 1.0}
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MonolithServer, ProxyEnv]]:
    tmp = tmp_path_factory.mktemp("monolith")
    monolith = start_monolith(seed=Seed(customers=5, products=5, orders=5), workdir=tmp)
    try:
        plan = tmp / "migration_plan.yaml"
        plan.write_text(PLAN.replace("MONOLITH", monolith.url))
        proxy = start_proxy(plan, {"STRANGLER_ADMIN_TOKEN": TOKEN})
        try:
            yield monolith, ProxyEnv(proxy, plan, {}, {"monolith": monolith.url})
        finally:
            proxy.stop()
    finally:
        monolith.stop()


@pytest.mark.parametrize(
    "path",
    [
        "/api/catalog/products",
        "/api/catalog/products?ordering=-price&page_size=2",
        "/api/customers/1",
        "/api/orders?page=1",
        "/api/notifications/templates",
        "/api/catalog/products/999999",
        "/healthz",
    ],
)
def test_get_through_proxy_equals_direct(stack: tuple[MonolithServer, ProxyEnv], path: str) -> None:
    monolith, proxy = stack
    direct = httpx.get(monolith.url + path)
    via = httpx.get(proxy.url + path)
    assert via.status_code == direct.status_code
    assert via.content == direct.content
    assert via.headers["content-type"] == direct.headers["content-type"]
    assert via.headers["via"] == "1.1 strangler"


def test_write_through_proxy_reaches_the_monolith(stack: tuple[MonolithServer, ProxyEnv]) -> None:
    monolith, proxy = stack
    created = httpx.post(
        proxy.url + "/api/notifications",
        json={"customer_id": 1, "channel": "email", "subject": "via proxy", "body": "hello"},
    )
    assert created.status_code == 201, created.text
    nid = created.json()["id"]
    direct = httpx.get(f"{monolith.url}/api/notifications/{nid}")
    assert direct.status_code == 200 and direct.json()["subject"] == "via proxy"
    patched = httpx.patch(f"{proxy.url}/api/notifications/{nid}", json={"read": True})
    assert patched.status_code == 200 and patched.json()["read"] is True


def test_monolith_validation_errors_pass_through(stack: tuple[MonolithServer, ProxyEnv]) -> None:
    _, proxy = stack
    bad = httpx.post(
        proxy.url + "/api/notifications",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert bad.status_code == 400
    assert "error" in json.dumps(bad.json()).lower()


def test_storefront_redirect_html_and_cookies_pass_through(
    stack: tuple[MonolithServer, ProxyEnv],
) -> None:
    monolith, proxy = stack
    direct = httpx.get(monolith.url + "/")
    via = httpx.get(proxy.url + "/")
    assert via.status_code == direct.status_code
    assert via.headers.get("location") == direct.headers.get("location")
    direct = httpx.get(monolith.url + "/", follow_redirects=True)
    via = httpx.get(proxy.url + "/", follow_redirects=True)
    assert via.status_code == direct.status_code == 200
    assert via.headers["content-type"].startswith("text/html")
    assert len(via.headers.get_list("set-cookie")) == len(direct.headers.get_list("set-cookie"))


def test_monolith_metrics_path_is_not_swallowed_by_the_proxy(
    stack: tuple[MonolithServer, ProxyEnv],
) -> None:
    monolith, proxy = stack
    via = httpx.get(proxy.url + "/metrics")
    direct = httpx.get(monolith.url + "/metrics")
    assert via.status_code == direct.status_code
    assert "strangler_requests_total" not in via.text
    status, body = proxy.admin("metrics")
    assert status == 200 and b"strangler_requests_total" in body
