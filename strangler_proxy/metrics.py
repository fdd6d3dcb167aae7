"""Proxy metrics in Prometheus format.

The hot path only bumps plain dict counters (a ``prometheus_client`` labelled child
costs several microseconds per request); :class:`ProxyMetrics` turns them into metric
families when ``/metrics`` is scraped.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)
BREAKER_STATES = ("closed", "half_open", "open")


class _Histogram:
    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.total += seconds


class ProxyMetrics:
    """Counters the proxy keeps; :meth:`render` gives the Prometheus text format."""

    def __init__(self) -> None:
        self.requests: defaultdict[tuple[str, str, int], int] = defaultdict(int)
        self.latency: defaultdict[tuple[str, str], _Histogram] = defaultdict(_Histogram)
        self.upstream_errors: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.fallbacks: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.rejected: defaultdict[int, int] = defaultdict(int)
        self.shadow: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.reloads: defaultdict[str, int] = defaultdict(int)
        self.paths: defaultdict[str, int] = defaultdict(int)
        self.shadow_queue_depth: Callable[[], int] = lambda: 0
        self.before_collect: Callable[[], None] = lambda: None  # e.g. Mirror.fold
        self.breakers: Callable[[], Mapping[str, str]] = dict
        self.plan_version: Callable[[], tuple[int, str]] = lambda: (0, "")
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(self)

    def observe(self, service: str, target: str, status: int, seconds: float) -> None:
        self.requests[(service, target, status)] += 1
        hist = self.latency[(service, target)]  # _Histogram.observe, inlined: per request
        hist.counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        hist.total += seconds

    def register(self, collector: Collector) -> None:
        """Expose another component's Prometheus collector (e.g. the shadow engine)."""
        self._registry.register(collector)

    def render(self) -> bytes:
        return bytes(generate_latest(self._registry))

    def collect(self) -> Iterator[Metric]:
        self.before_collect()
        c = CounterMetricFamily(
            "strangler_requests", "Requests answered, by service, target and status.",
            labels=["service", "target", "status"],
        )
        for (service, target, status), n in sorted(self.requests.items()):
            c.add_metric([service, target, str(status)], n)
        yield c
        h = HistogramMetricFamily(
            "strangler_request_duration_seconds",
            "Time from request start to the end of the response body.",
            labels=["service", "target"],
        )
        for (service, target), hist in sorted(self.latency.items()):
            acc = 0
            buckets: list[tuple[str, float]] = []
            for bound, n in zip((*LATENCY_BUCKETS, float("inf")), hist.counts, strict=True):
                acc += n
                buckets.append(("+Inf" if bound == float("inf") else repr(bound), acc))
            h.add_metric([service, target], buckets, hist.total)
        yield h
        e = CounterMetricFamily(
            "strangler_upstream_errors", "Upstream failures by target and kind.",
            labels=["target", "kind"],
        )
        for (target, kind), n in sorted(self.upstream_errors.items()):
            e.add_metric([target, kind], n)
        yield e
        f = CounterMetricFamily(
            "strangler_fallbacks", "Requests retried on the monolith, by service and reason.",
            labels=["service", "reason"],
        )
        for (service, reason), n in sorted(self.fallbacks.items()):
            f.add_metric([service, reason], n)
        yield f
        r = CounterMetricFamily(
            "strangler_rejected", "Requests refused by the proxy itself (400/413/431).",
            labels=["status"],
        )
        for status, n in sorted(self.rejected.items()):
            r.add_metric([str(status)], n)
        yield r
        s = CounterMetricFamily(
            "strangler_shadow", "Shadow mirroring outcomes: mirrored, dropped (queue full), "
            "skipped (body over cap), failed, by service.",
            labels=["service", "outcome"],
        )
        for (service, outcome), n in sorted(self.shadow.items()):
            s.add_metric([service, outcome], n)
        yield s
        q = GaugeMetricFamily("strangler_shadow_queue_depth", "Mirror jobs waiting.")
        q.add_metric([], self.shadow_queue_depth())
        yield q
        rl = CounterMetricFamily(
            "strangler_plan_reloads", "Plan reloads by result (ok, rejected).", labels=["result"]
        )
        for result, n in sorted(self.reloads.items()):
            rl.add_metric([result], n)
        yield rl
        b = GaugeMetricFamily(
            "strangler_breaker_state", "Circuit breaker state per upstream (1 = current).",
            labels=["upstream", "state"],
        )
        for upstream, state in sorted(self.breakers().items()):
            for name in BREAKER_STATES:
                b.add_metric([upstream, name], 1.0 if state == name else 0.0)
        yield b
        fp = CounterMetricFamily(
            "strangler_forwarding_path",
            "Forwarded requests by code path: fast (protocol level) or asgi (the fallback "
            "for uploads, Expect, upgrades, limits).",
            labels=["path"],
        )
        for name, n in sorted(self.paths.items()):
            fp.add_metric([name], n)
        yield fp
        version, digest = self.plan_version()
        p = GaugeMetricFamily(
            "strangler_plan_info", "The plan being served.", labels=["version", "sha256"]
        )
        p.add_metric([str(version), digest], 1.0)
        yield p
