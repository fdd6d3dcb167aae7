from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

import httpx
import pytest

from strangler_proxy.figures import (
    MetricsProxySource,
    ServiceCounters,
    ShadowFigures,
    Sources,
    SourceUnavailable,
    StoreShadowSource,
    collect,
    parse_metrics,
    quantile,
)
from strangler_proxy.gates import CdcFigures, Rung
from strangler_proxy.metrics import ProxyMetrics
from strangler_proxy.plan import ServicePlan, parse_plan
from strangler_proxy.shadow.records import CANDIDATE, Endpoint, TallyKey, bucket_of
from strangler_proxy.shadow.store import ShadowStore

PLAN = """
version: 1
monolith: {url: "http://127.0.0.1:9"}
shadow_store: {url: "sqlite:///var/shadow.db"}
cdc: {source: postgres}
services:
  orders:
    url: http://127.0.0.1:10
    routes: [{path: /api/orders, methods: [GET]}]
    stage: canary
    canary: {percent: 10}
    data: {owner: monolith, tables: {orders_order: orders}}
  catalog:
    url: http://127.0.0.1:11
    routes: [{path: /api/products, methods: [GET]}]
    stage: shadow
"""


def plan() -> object:
    return parse_plan(PLAN)


class FakeProxy:
    def __init__(self, counters: Mapping[str, ServiceCounters] | None, error: str = "") -> None:
        self._counters = counters
        self.error = error
        self.calls = 0

    def counters(self) -> Mapping[str, ServiceCounters]:
        self.calls += 1
        if self._counters is None:
            raise SourceUnavailable(self.error)
        return self._counters


class FakeShadow:
    def __init__(self, figures: ShadowFigures | None, error: str = "") -> None:
        self.figures = figures
        self.error = error
        self.since: float | None = None

    def summary(self, service: ServicePlan, since: float | None) -> ShadowFigures:
        self.since = since
        if self.figures is None:
            raise SourceUnavailable(self.error)
        return self.figures


class FakeCdc:
    def status(self, service: ServicePlan) -> CdcFigures:
        return CdcFigures(lag_s=0.4, snapshot_complete=True)


BOUNDS = (0.01, 0.1, 1.0, float("inf"))


def counters(served: int, errors: int = 0, fallbacks: int = 0, mono: int = 10) -> ServiceCounters:
    return ServiceCounters(
        served,
        errors,
        fallbacks,
        BOUNDS,
        {"orders": (served, 0, 0, 0), "monolith": (0, mono, 0, 0)},
    )


def test_quantile_interpolates_like_prometheus() -> None:
    assert quantile(0.5, (1.0, 2.0, float("inf")), (10, 10, 0)) == pytest.approx(1.0)
    assert quantile(0.99, (1.0, 2.0, float("inf")), (0, 100, 0)) == pytest.approx(1.99)
    assert quantile(0.99, (1.0, float("inf")), (0, 5)) == 1.0
    assert quantile(0.99, (1.0, float("inf")), (0, 0)) is None


def test_parse_metrics_reads_the_proxys_own_exposition() -> None:
    metrics = ProxyMetrics()
    for _ in range(8):
        metrics.observe("orders", "orders", 200, 0.004)
    metrics.observe("orders", "orders", 503, 0.2)
    metrics.observe("orders", "monolith", 200, 0.02)
    metrics.observe("catalog", "monolith", 200, 0.003)
    metrics.observe("-", "monolith", 200, 0.003)
    metrics.fallbacks[("orders", "timeout")] += 2
    parsed = parse_metrics(metrics.render().decode())
    assert set(parsed) == {"orders", "catalog"}
    orders = parsed["orders"]
    assert (orders.served, orders.errors, orders.fallbacks) == (9, 1, 2)
    assert sum(orders.latency["orders"]) == 9 and sum(orders.latency["monolith"]) == 1
    assert orders.p99("orders") is not None and orders.p99("orders") > 0.1
    assert parsed["catalog"].served == 0


def test_counters_minus_baseline_and_restart_detection() -> None:
    later = counters(100, errors=3)
    delta = later.minus(counters(40, errors=1))
    assert delta is not None and (delta.served, delta.errors) == (60, 2)
    assert delta.latency["orders"] == (60, 0, 0, 0)
    assert counters(10).minus(counters(40)) is None
    assert ServiceCounters.from_json(later.to_json()) == later


def test_canary_figures_come_from_the_proxy_over_the_stage() -> None:
    proxy = FakeProxy({"orders": counters(300, errors=3, fallbacks=1)})
    now = time.time()
    got = collect(
        plan(),  # type: ignore[arg-type]
        "orders",
        Rung("canary", 10),
        Sources(proxy=proxy, cdc=FakeCdc()),
        stage_since=now - 60,
        baseline=counters(100, errors=1, mono=4),
        now=now,
    )
    f = got.figures
    assert f.samples == 201  # 200 served + 1 fallback since the baseline
    assert f.error_rate == pytest.approx(3 / 201)
    assert f.p99_s is not None and f.p99_s <= 0.01
    assert f.monolith_p99_s is not None and 0.01 < f.monolith_p99_s <= 0.1
    assert f.stage_age_s == pytest.approx(60)
    assert f.cdc == CdcFigures(0.4, True)
    assert got.window == "since the stage began"
    assert got.counters == counters(300, errors=3, fallbacks=1)


def test_proxy_restart_counts_from_the_restart() -> None:
    got = collect(
        plan(),  # type: ignore[arg-type]
        "orders",
        Rung("canary", 10),
        Sources(proxy=FakeProxy({"orders": counters(5)})),
        stage_since=None,
        baseline=counters(100),
    )
    assert got.figures.samples == 5
    assert got.window == "since the proxy started"
    assert "no recorded stage change" in got.figures.unknown["stage_age_s"]


def test_shadow_figures_come_from_the_shadow_store_since_the_stage_began() -> None:
    shadow = FakeShadow(ShadowFigures(samples=120, mismatch_rate=0.0, error_rate=0.01))
    got = collect(
        plan(),  # type: ignore[arg-type]
        "catalog",
        Rung("shadow"),
        Sources(shadow=shadow, proxy=FakeProxy({})),
        stage_since=1000.0,
        baseline=None,
        now=2000.0,
    )
    assert shadow.since == 1000.0
    assert (got.figures.samples, got.figures.mismatch_rate, got.figures.error_rate) == (
        120,
        0.0,
        0.01,
    )
    assert got.figures.cdc is None  # no tables mapped for catalog


def test_unreadable_sources_become_unknown_with_their_reason() -> None:
    got = collect(
        plan(),  # type: ignore[arg-type]
        "catalog",
        Rung("shadow"),
        Sources(
            shadow=FakeShadow(None, "shadow store sqlite:///x: cannot read comparisons: locked"),
            proxy=FakeProxy(None, "proxy at http://127.0.0.1:1 unreachable: refused"),
        ),
        stage_since=None,
        baseline=None,
    )
    unknown = got.figures.unknown
    assert "locked" in unknown["samples"] and "locked" in unknown["mismatch_rate"]
    assert "refused" in unknown["monolith_p99_s"]
    no_cdc = collect(
        plan(),  # type: ignore[arg-type]
        "orders",
        Rung("canary", 10),
        Sources(why={"cdc": "cdc status unavailable: no offsets"}),
        stage_since=None,
        baseline=None,
    )
    assert no_cdc.figures.cdc == CdcFigures(None, None, "cdc status unavailable: no offsets")
    assert "no proxy URL" in no_cdc.figures.unknown["samples"]


def test_no_shadow_comparisons_yet_is_not_a_rate_of_zero() -> None:
    got = collect(
        plan(),  # type: ignore[arg-type]
        "catalog",
        Rung("shadow"),
        Sources(shadow=FakeShadow(ShadowFigures(0, 0.0, 0.0))),
        stage_since=None,
        baseline=None,
    )
    assert got.figures.samples == 0
    assert got.figures.mismatch_rate is None
    assert "no shadow comparisons" in got.figures.unknown["mismatch_rate"]


def test_store_source_reads_a_real_shadow_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shadow.db'}"
    store = ShadowStore(url)
    endpoint = Endpoint("catalog", "/api/products", "GET")
    now = time.time()
    store.write(
        {
            TallyKey(endpoint, bucket_of(now), CANDIDATE, "matched"): 95,
            TallyKey(endpoint, bucket_of(now), CANDIDATE, "mismatched", ("changed $.price",)): 5,
        }
    )
    store.close()
    service = parse_plan(PLAN).services["catalog"]
    found = StoreShadowSource(url).summary(service, since=None)
    assert found.samples == 100
    assert found.mismatch_rate == pytest.approx(0.05)
    later = StoreShadowSource(url).summary(service, since=now + 3600)
    assert later.samples == 0


def test_store_source_translates_database_errors(tmp_path: Path) -> None:
    bad = tmp_path / "not-a-db"
    bad.write_text("this is not sqlite")
    service = parse_plan(PLAN).services["catalog"]
    with pytest.raises(SourceUnavailable, match="shadow store"):
        StoreShadowSource(f"sqlite:///{bad}").summary(service, since=None)


def test_metrics_source_sends_token_and_reports_failures() -> None:
    seen: list[httpx.Request] = []

    def ok(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        metrics = ProxyMetrics()
        metrics.observe("orders", "orders", 200, 0.01)
        return httpx.Response(200, content=metrics.render())

    source = MetricsProxySource("http://proxy/", token="s3cret", transport=httpx.MockTransport(ok))
    assert source.counters()["orders"].served == 1
    assert seen[0].url.path == "/_strangler/metrics"
    assert seen[0].headers["authorization"] == "Bearer s3cret"

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    down = MetricsProxySource("http://proxy", transport=httpx.MockTransport(refused))
    with pytest.raises(SourceUnavailable, match="unreachable: connection refused"):
        down.counters()
    forbidden = MetricsProxySource(
        "http://proxy", transport=httpx.MockTransport(lambda r: httpx.Response(401))
    )
    with pytest.raises(SourceUnavailable, match="answered 401"):
        forbidden.counters()


CDC_PLAN = """
version: 1
monolith: {url: "http://127.0.0.1:9"}
kafka: {bootstrap_servers: embedded, topic_prefix: shop}
cdc: {database_url: "postgresql://app@127.0.0.1:5/shop", slot: s1, state_dir: var/cdc}
services:
  orders:
    url: http://127.0.0.1:10
    routes: [{path: /api/orders, methods: [GET]}]
    data: {owner: monolith, tables: {orders_order: orders}}
"""


def test_plan_cdc_source_reads_runner_offsets_and_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from cdc.offsets import FileOffsetStore
    from strangler_proxy.figures import PlanCdcSource

    for name in ("DATABASE_URL", "STRANGLE_CDC_DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS"):
        monkeypatch.delenv(name, raising=False)
    plan_path = tmp_path / "migration_plan.yaml"
    plan_path.write_text(CDC_PLAN)
    service = parse_plan(CDC_PLAN).services["orders"]
    now = 1_000_000.0
    source = PlanCdcSource(plan_path, now=lambda: now)
    assert source.status(service) == CdcFigures(
        None, False, "no CDC runner status (is `strangle cdc run` up?)"
    )
    state = tmp_path / "var" / "cdc"
    state.mkdir(parents=True)
    status = state / "status.json"
    status.write_text(json.dumps({"state": "snapshot", "lag_seconds": 0.0, "updated_at": now}))
    assert source.status(service) == CdcFigures(0.0, False)
    FileOffsetStore(state / "offsets.json").save("postgres:shop:s1", {"snapshot_completed": True})
    status.write_text(json.dumps({"state": "streaming", "lag_seconds": 2.5, "updated_at": now - 5}))
    assert source.status(service) == CdcFigures(2.5, True)
    status.write_text(json.dumps({"state": "streaming", "lag_seconds": 0, "updated_at": now - 600}))
    stale = source.status(service)
    assert stale.lag_s is None and "not running" in stale.reason
    status.write_text(json.dumps({"state": "failed", "error": "slot gone", "updated_at": now}))
    assert "slot gone" in source.status(service).reason
    status.write_text("{torn")
    with pytest.raises(SourceUnavailable, match="CDC status unreadable"):
        source.status(service)


def test_store_source_does_not_create_a_missing_sqlite_store(tmp_path: Path) -> None:
    service = parse_plan(PLAN).services["catalog"]
    path = tmp_path / "var" / "shadow.db"
    found = StoreShadowSource(f"sqlite:///{path}").summary(service, since=None)
    assert found.samples == 0
    assert not path.exists() and not path.parent.exists()
