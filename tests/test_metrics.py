from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from strangler_proxy.metrics import ProxyMetrics


def samples(m: ProxyMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(m.render().decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_requests_and_cumulative_latency_buckets() -> None:
    m = ProxyMetrics()
    m.observe("orders", "orders", 200, 0.0004)
    m.observe("orders", "orders", 200, 0.003)
    m.observe("orders", "monolith", 502, 0.2)
    got = samples(m)
    assert (
        got[
            (
                "strangler_requests_total",
                (("service", "orders"), ("status", "200"), ("target", "orders")),
            )
        ]
        == 2
    )
    bucket = "strangler_request_duration_seconds_bucket"
    labels = (("service", "orders"), ("target", "orders"))
    assert got[(bucket, (("le", "0.0005"), *labels))] == 1
    assert got[(bucket, (("le", "0.005"), *labels))] == 2
    assert got[(bucket, (("le", "+Inf"), *labels))] == 2
    assert got[("strangler_request_duration_seconds_count", labels)] == 2


def test_shadow_breakers_reloads_and_plan_info() -> None:
    m = ProxyMetrics()
    m.shadow[("orders", "dropped")] += 3
    m.reloads["rejected"] += 1
    m.shadow_queue_depth = lambda: 7
    m.breakers = lambda: {"http://svc:1": "open"}
    m.plan_version = lambda: (1, "abc")
    got = samples(m)
    assert got[("strangler_shadow_total", (("outcome", "dropped"), ("service", "orders")))] == 3
    assert got[("strangler_plan_reloads_total", (("result", "rejected"),))] == 1
    assert got[("strangler_shadow_queue_depth", ())] == 7
    assert got[("strangler_breaker_state", (("state", "open"), ("upstream", "http://svc:1")))] == 1
    assert (
        got[("strangler_breaker_state", (("state", "closed"), ("upstream", "http://svc:1")))] == 0
    )
    assert got[("strangler_plan_info", (("sha256", "abc"), ("version", "1")))] == 1
