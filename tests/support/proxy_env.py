"""A real proxy (``strangle proxy``) in front of real uvicorn upstreams, for tests.

``proxy_env(tmp_path, PLAN, upstreams={"monolith": {}, "svc": {...env}})`` starts one
:mod:`tests.support.upstream_app` server per name, fills ``{name}`` placeholders in the
plan with their URLs (``{dead}`` becomes a port nothing listens on), starts the proxy and
stops everything by PID afterwards.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.servers import Server, free_port, start_proxy, start_uvicorn

TOKEN = "test-admin-token"


@dataclass
class ProxyEnv:
    proxy: Server
    plan_path: Path
    upstreams: dict[str, Server] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)

    @property
    def port(self) -> int:
        return self.proxy.port

    @property
    def url(self) -> str:
        return self.proxy.url

    def conn(self, timeout: float = 10) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(
        self,
        method: str,
        target: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        c = self.conn()
        try:
            c.request(method, target, body=body, headers=dict(headers or {}))
            r = c.getresponse()
            return r.status, r.getheaders(), r.read()
        finally:
            c.close()

    def echo(self, target: str, **kw: Any) -> tuple[int, dict[str, str], dict[str, Any]]:
        status, headers, body = self.request("GET", target, **kw)
        return status, {k.lower(): v for k, v in headers}, json.loads(body)

    def write_plan(self, text: str) -> None:
        write_atomic(self.plan_path, fill(text, self.urls))

    def admin(self, path: str, token: str | None = TOKEN) -> tuple[int, bytes]:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        status, _, body = self.request("GET", "/_strangler/" + path, headers=headers)
        return status, body

    def metric(self, name: str, **labels: str) -> float:
        """Sum of samples of ``name`` whose labels include ``labels``."""
        _, _, text = self.request("GET", "/_strangler/metrics")
        total = 0.0
        for line in text.decode().splitlines():
            m = re.match(r"^([a-zA-Z_:]+)(\{.*\})? (\S+)$", line)
            if not m or m.group(1) != name:
                continue
            got = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
            if all(got.get(k) == v for k, v in labels.items()):
                total += float(m.group(3))
        return total


def fill(text: str, urls: Mapping[str, str]) -> str:
    for name, url in urls.items():
        text = text.replace("{" + name + "}", url)
    return text


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


@contextmanager
def proxy_env(
    tmp_path: Path,
    plan: str,
    upstreams: Mapping[str, Mapping[str, str]],
    env: Mapping[str, str] | None = None,
    upstream_app: str = "tests.support.upstream_app:app",
) -> Iterator[ProxyEnv]:
    with ExitStack() as stack:
        servers: dict[str, Server] = {}
        urls = {"dead": f"http://127.0.0.1:{free_port()}"}
        for name, extra in upstreams.items():
            server = start_uvicorn(upstream_app, {"UPSTREAM_NAME": name, **extra})
            stack.callback(server.stop)
            servers[name] = server
            urls[name] = server.url
        plan_path = tmp_path / "migration_plan.yaml"
        plan_path.write_text(fill(plan, urls))
        proxy = start_proxy(
            plan_path, {"STRANGLER_ADMIN_TOKEN": TOKEN, "STRANGLER_ACCESS_LOG": "1", **(env or {})}
        )
        stack.callback(proxy.stop)
        yield ProxyEnv(proxy, plan_path, servers, urls)


def raw_exchange(port: int, data: bytes, *, timeout: float = 10) -> bytes:
    """Send raw bytes, read until the server closes (send ``Connection: close``)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def wait_until(predicate: Any, timeout: float = 10, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
