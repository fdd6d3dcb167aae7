"""A temp plan, a real SQLite shadow store and the proxy's real metrics exposition
(served through an httpx MockTransport) for driving the CLI in-process."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result

from strangler_proxy.audit import HISTORY_ENV
from strangler_proxy.cli import cli
from strangler_proxy.figures import MetricsProxySource, Sources, StoreShadowSource
from strangler_proxy.gates import CdcFigures
from strangler_proxy.metrics import ProxyMetrics
from strangler_proxy.plan import ServicePlan
from strangler_proxy.shadow.records import CANDIDATE, Endpoint, TallyKey, bucket_of
from strangler_proxy.shadow.store import ShadowStore

PLAN = """\
# The shop's migration plan. Hand-edited; `strangle promote` edits it too.
version: 1
monolith: {url: "http://127.0.0.1:9"}    # the Django monolith
shadow_store: {url: "sqlite:///var/shadow.db", max_samples: 20}

services:
  # first to leave
  notifications:
    url: http://127.0.0.1:10
    routes:
      - {path: /api/notifications, methods: [GET, POST]}
    stage: monolith        # monolith -> shadow -> canary -> service -> retired
    canary: {steps: [1, 10, 50], cohort: "header:X-Customer-Id"}
    gates: {min_samples: 100, max_mismatch_rate: 0.01, max_error_rate: 0.01}

  orders:
    url: http://127.0.0.1:11
    routes:
      - {path: /api/orders, methods: [GET]}
    stage: monolith
    requires: [notifications]   # orders may not pass notifications
"""


class CdcStub:
    def __init__(self) -> None:
        self.figures = CdcFigures(lag_s=0.2, snapshot_complete=True)

    def status(self, service: ServicePlan) -> CdcFigures:
        return self.figures


@dataclass
class Env:
    tmp: Path
    plan: Path
    runner: CliRunner
    metrics: ProxyMetrics = field(default_factory=ProxyMetrics)
    proxy_up: bool = True
    cdc: CdcStub = field(default_factory=CdcStub)
    cdc_on: bool = False
    on_scrape: Callable[[], None] | None = None

    @property
    def history(self) -> Path:
        return self.tmp / "var" / "history.jsonl"

    @property
    def store_url(self) -> str:
        return f"sqlite:///{self.tmp / 'var' / 'shadow.db'}"

    def sources(self) -> Sources:
        def handler(request: httpx.Request) -> httpx.Response:
            if self.on_scrape is not None:
                self.on_scrape()
            if not self.proxy_up:
                raise httpx.ConnectError("connection refused")
            return httpx.Response(200, content=self.metrics.render())

        proxy = MetricsProxySource("http://proxy", transport=httpx.MockTransport(handler))
        return Sources(
            shadow=StoreShadowSource(self.store_url),
            proxy=proxy,
            cdc=self.cdc if self.cdc_on else None,
            why={"cdc": "CDC status unavailable"},
        )

    def invoke(self, *args: str) -> Result:
        return self.runner.invoke(
            cli, [*args, "--plan", str(self.plan)], obj={"sources": self.sources()}
        )

    def json(self, *args: str) -> Any:
        result = self.invoke(*args, "--json")
        return json.loads(result.stdout)

    def shadow(self, service: str, matched: int, mismatched: int = 0, errors: int = 0) -> None:
        store = ShadowStore(self.store_url)
        endpoint = Endpoint(service, "/api/" + service, "GET")
        bucket = bucket_of(time.time())
        store.write(
            {
                TallyKey(endpoint, bucket, CANDIDATE, "matched"): matched,
                TallyKey(endpoint, bucket, CANDIDATE, "mismatched", ("changed $.total",)): (
                    mismatched
                ),
                TallyKey(endpoint, bucket, CANDIDATE, "error", ("candidate: timeout",)): errors,
            }
        )
        store.close()

    def traffic(
        self, service: str, n: int, *, seconds: float = 0.004, status: int = 200, monolith: int = 50
    ) -> None:
        for _ in range(n):
            self.metrics.observe(service, service, status, seconds)
        for _ in range(monolith):
            self.metrics.observe(service, "monolith", 200, 0.004)

    def entries(self) -> list[dict[str, Any]]:
        if not self.history.exists():
            return []
        return [json.loads(line) for line in self.history.read_text().splitlines()]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Env:
    monkeypatch.delenv(HISTORY_ENV, raising=False)
    monkeypatch.delenv("STRANGLE_PLAN", raising=False)
    monkeypatch.delenv("STRANGLER_PROXY_URL", raising=False)
    monkeypatch.setenv("STRANGLE_ACTOR", "alice")
    plan = tmp_path / "migration_plan.yaml"
    plan.write_text(PLAN)
    return Env(tmp_path, plan, CliRunner())
