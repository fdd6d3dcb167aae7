"""Collecting the figures promotion gates judge — the I/O edge of :mod:`~strangler_proxy.gates`.

Three sources, each behind a small protocol so tests and other deployments can swap
them:

* the **shadow store** (paired comparisons: samples, noise-adjusted mismatch rate,
  candidate error rate) — :class:`StoreShadowSource`;
* the **proxy** (what the service really served, per target, with latency histograms)
  from its Prometheus endpoint ``/_strangler/metrics`` — :class:`MetricsProxySource`;
* **CDC** (lag and snapshot completion) — :class:`CdcSource`, configured only when the
  plan has a ``cdc:`` section and the service maps tables.

A source that cannot be read raises :class:`SourceUnavailable`; the figure becomes
unknown *with that reason*, and the gate that needs it says so.

Proxy counters are cumulative since the proxy started. Each audit entry stores the
service's counters at the moment of the change (``baseline``); figures for the current
stage are the difference, unless the counters went backwards (a proxy restart), in
which case they count from the restart.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
from prometheus_client.parser import text_string_to_metric_families

from strangler_proxy.gates import CdcFigures, Figures, Rung
from strangler_proxy.plan.model import Plan, ServicePlan

__all__ = [
    "CdcSource",
    "Collected",
    "MetricsProxySource",
    "PlanCdcSource",
    "ProxySource",
    "ServiceCounters",
    "ShadowFigures",
    "ShadowSource",
    "SourceUnavailable",
    "Sources",
    "StoreShadowSource",
    "baselines",
    "collect",
    "quantile",
]

ADMIN_METRICS = "/_strangler/metrics"


class SourceUnavailable(Exception):
    """A figure source could not be read; the message is the reason shown to users."""


@dataclass(frozen=True, slots=True)
class ShadowFigures:
    samples: int
    mismatch_rate: float  # noise-adjusted
    error_rate: float


class ShadowSource(Protocol):
    def summary(self, service: ServicePlan, since: float | None) -> ShadowFigures: ...


@dataclass(frozen=True, slots=True)
class ServiceCounters:
    """One service's proxy counters. ``latency`` maps a target (``monolith`` or the
    service name) to per-bucket counts (not cumulative) over ``bounds`` (+Inf last)."""

    served: int = 0  # answered by the service itself
    errors: int = 0  # of those, 5xx
    fallbacks: int = 0  # service failed, monolith answered instead
    bounds: tuple[float, ...] = ()
    latency: Mapping[str, tuple[int, ...]] = field(default_factory=dict)

    def minus(self, baseline: ServiceCounters) -> ServiceCounters | None:
        """Counts since ``baseline``; None when counters went backwards (proxy restart)."""
        if (
            self.served < baseline.served
            or self.errors < baseline.errors
            or self.fallbacks < baseline.fallbacks
        ):
            return None
        latency: dict[str, tuple[int, ...]] = {}
        for target, counts in self.latency.items():
            before = baseline.latency.get(target, (0,) * len(counts))
            if len(before) != len(counts) or any(
                a < b for a, b in zip(counts, before, strict=True)
            ):
                return None
            latency[target] = tuple(a - b for a, b in zip(counts, before, strict=True))
        return ServiceCounters(
            self.served - baseline.served,
            self.errors - baseline.errors,
            self.fallbacks - baseline.fallbacks,
            self.bounds,
            latency,
        )

    def p99(self, target: str) -> float | None:
        counts = self.latency.get(target)
        return None if counts is None else quantile(0.99, self.bounds, counts)

    def to_json(self) -> dict[str, Any]:
        return {
            "served": self.served,
            "errors": self.errors,
            "fallbacks": self.fallbacks,
            "bounds": [b if math.isfinite(b) else "+Inf" for b in self.bounds],
            "latency": {t: list(c) for t, c in self.latency.items()},
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ServiceCounters:
        return cls(
            int(raw["served"]),
            int(raw["errors"]),
            int(raw["fallbacks"]),
            tuple(math.inf if b == "+Inf" else float(b) for b in raw["bounds"]),
            {t: tuple(int(n) for n in c) for t, c in raw["latency"].items()},
        )


class ProxySource(Protocol):
    def counters(self) -> Mapping[str, ServiceCounters]: ...


class CdcSource(Protocol):
    def status(self, service: ServicePlan) -> CdcFigures: ...


@dataclass(frozen=True, slots=True)
class Sources:
    """Where figures come from; ``None`` means not configured, with ``why``."""

    shadow: ShadowSource | None = None
    proxy: ProxySource | None = None
    cdc: CdcSource | None = None
    why: Mapping[str, str] = field(default_factory=dict)


def quantile(q: float, bounds: Sequence[float], counts: Sequence[int]) -> float | None:
    """Histogram quantile with linear interpolation inside the bucket (as Prometheus's
    ``histogram_quantile``); a quantile in the +Inf bucket gives the last finite bound."""
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    lower = 0.0
    for bound, n in zip(bounds, counts, strict=True):
        if n and seen + n >= rank:
            if math.isinf(bound):
                return lower
            return lower + (bound - lower) * (rank - seen) / n
        seen += n
        if not math.isinf(bound):
            lower = bound
    return lower


class StoreShadowSource:
    """Figures from the shadow store named in the plan (``shadow_store.url``)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def summary(self, service: ServicePlan, since: float | None) -> ShadowFigures:
        from sqlalchemy.engine import make_url

        from strangler_proxy.shadow.report import service_summary
        from strangler_proxy.shadow.sink import service_rules
        from strangler_proxy.shadow.store import ShadowStore, StoreError

        parsed = make_url(self.url)
        database = parsed.database or ""
        on_disk = parsed.get_backend_name() == "sqlite" and database not in ("", ":memory:")
        if on_disk and not Path(database).exists():
            return ShadowFigures(0, 0.0, 0.0)  # nothing mirrored yet; reading must not create it
        try:
            rules = service_rules(service)
        except ValueError:
            rules = None  # the proxy logs bad rules and compares with defaults; so do we
        try:
            store = ShadowStore(self.url)
            try:
                found = service_summary(store, service.name, rules=rules, since=since)
            finally:
                store.close()
        except StoreError as exc:
            raise SourceUnavailable(str(exc)) from exc
        return ShadowFigures(found.samples, found.mismatch_rate, found.error_rate)


class MetricsProxySource:
    """Counters scraped from a running proxy's ``/_strangler/metrics``."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float = 2.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.transport = transport

    def counters(self) -> Mapping[str, ServiceCounters]:
        headers = {"authorization": f"Bearer {self.token}"} if self.token else {}
        url = self.base_url + ADMIN_METRICS
        try:
            with httpx.Client(timeout=self.timeout, transport=self.transport) as client:
                response = client.get(url, headers=headers)
        except httpx.HTTPError as exc:
            raise SourceUnavailable(f"proxy at {self.base_url} unreachable: {exc}") from exc
        if response.status_code != 200:
            raise SourceUnavailable(
                f"proxy at {self.base_url} answered {response.status_code} on {ADMIN_METRICS}"
            )
        try:
            return parse_metrics(response.text)
        except ValueError as exc:
            raise SourceUnavailable(f"proxy metrics unreadable: {exc}") from exc


def parse_metrics(text: str) -> dict[str, ServiceCounters]:
    """Per-service counters from the proxy's Prometheus text (pure)."""
    served: dict[str, int] = {}
    errors: dict[str, int] = {}
    fallbacks: dict[str, int] = {}
    buckets: dict[tuple[str, str], dict[float, int]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            service = labels.get("service", "")
            if sample.name == "strangler_requests_total" and labels.get("target") == service:
                served[service] = served.get(service, 0) + int(sample.value)
                if labels.get("status", "").startswith("5"):
                    errors[service] = errors.get(service, 0) + int(sample.value)
            elif sample.name == "strangler_fallbacks_total":
                fallbacks[service] = fallbacks.get(service, 0) + int(sample.value)
            elif sample.name == "strangler_request_duration_seconds_bucket":
                le = float(labels["le"])
                per = buckets.setdefault((service, labels.get("target", "")), {})
                per[le] = int(sample.value)
    latency: dict[str, dict[str, tuple[int, ...]]] = {}
    bounds: tuple[float, ...] = ()
    for (service, target), cumulative in buckets.items():
        bounds = tuple(sorted(cumulative))
        running = [cumulative[b] for b in bounds]
        counts = tuple(b - a for a, b in zip([0, *running[:-1]], running, strict=True))
        latency.setdefault(service, {})[target] = counts
    services = {*served, *fallbacks, *latency} - {"-", ""}
    return {
        name: ServiceCounters(
            served.get(name, 0),
            errors.get(name, 0),
            fallbacks.get(name, 0),
            bounds,
            latency.get(name, {}),
        )
        for name in services
    }


def baselines(metrics_text: str | bytes) -> dict[str, dict[str, Any]]:
    """Per-service audit figures from the proxy's own metrics at a plan swap: the
    counters the new stage is measured from."""
    text = metrics_text.decode() if isinstance(metrics_text, bytes) else metrics_text
    return {
        name: {"proxy_counters": counters.to_json(), "window": "at the plan swap"}
        for name, counters in parse_metrics(text).items()
    }


@dataclass(frozen=True, slots=True)
class Collected:
    figures: Figures
    counters: ServiceCounters | None  # raw, to store as the next stage's baseline
    window: str  # what the proxy figures cover


def collect(
    plan: Plan,
    name: str,
    rung: Rung,
    sources: Sources,
    *,
    stage_since: float | None,
    baseline: ServiceCounters | None,
    now: float | None = None,
    proxy_counters: Mapping[str, ServiceCounters] | None = None,
) -> Collected:
    """Figures for service ``name`` over its current stage. ``proxy_counters`` lets a
    caller judging many services scrape the proxy once (see :func:`scrape`)."""
    now = time.time() if now is None else now
    service = plan.services[name]
    unknown: dict[str, str] = {}
    values: dict[str, Any] = {}

    if stage_since is None:
        unknown["stage_age_s"] = f"no recorded stage change for {name}; time in stage unknown"
    else:
        values["stage_age_s"] = max(0.0, now - stage_since)

    counters: ServiceCounters | None = None
    window = "unavailable"
    proxy_reason = sources.why.get("proxy", "no proxy URL configured (--proxy)")
    if proxy_counters is None and sources.proxy is not None:
        try:
            proxy_counters = sources.proxy.counters()
        except SourceUnavailable as exc:
            proxy_reason = str(exc)
    if proxy_counters is not None:
        counters = proxy_counters.get(name, ServiceCounters())
        stage_counts = counters.minus(baseline) if baseline is not None else None
        if stage_counts is None:
            stage_counts = counters
            window = "since the proxy started"
        else:
            window = "since the stage began"
        _proxy_figures(name, rung, stage_counts, values, unknown)
    else:
        for key in ("samples", "error_rate", "p99_s", "monolith_p99_s"):
            unknown[key] = proxy_reason

    if rung.stage == "shadow":
        _shadow_figures(service, sources, stage_since, values, unknown)

    cdc: CdcFigures | None = None
    if plan.cdc and service.data.tables:
        if sources.cdc is None:
            reason = sources.why.get("cdc", "CDC status is not available")
            cdc = CdcFigures(None, None, reason)
        else:
            try:
                cdc = sources.cdc.status(service)
            except SourceUnavailable as exc:
                cdc = CdcFigures(None, None, str(exc))
    for key, value in values.items():
        if value is not None:
            unknown.pop(key, None)
    return Collected(Figures(**values, cdc=cdc, unknown=unknown), counters, window)


def _proxy_figures(
    name: str,
    rung: Rung,
    counts: ServiceCounters,
    values: dict[str, Any],
    unknown: dict[str, str],
) -> None:
    values["monolith_p99_s"] = counts.p99("monolith")
    if values["monolith_p99_s"] is None:
        unknown["monolith_p99_s"] = "the monolith answered none of these routes in this window"
    if rung.stage == "shadow":
        return  # shadow figures come from the shadow store
    samples = counts.served + counts.fallbacks
    values["samples"] = samples
    values["p99_s"] = counts.p99(name)
    if values["p99_s"] is None:
        unknown["p99_s"] = f"{name} answered no requests in this window"
    if samples:
        values["error_rate"] = (counts.errors + counts.fallbacks) / samples
    else:
        unknown["error_rate"] = f"{name} answered no requests in this window"


def _shadow_figures(
    service: ServicePlan,
    sources: Sources,
    since: float | None,
    values: dict[str, Any],
    unknown: dict[str, str],
) -> None:
    if sources.shadow is None:
        reason = sources.why.get("shadow", "no shadow store configured")
        for key in ("samples", "mismatch_rate", "error_rate"):
            unknown[key] = reason
        return
    try:
        found = sources.shadow.summary(service, since)
    except SourceUnavailable as exc:
        for key in ("samples", "mismatch_rate", "error_rate"):
            unknown[key] = str(exc)
        return
    values["samples"] = found.samples
    if found.samples:
        values["error_rate"] = found.error_rate
        values["mismatch_rate"] = found.mismatch_rate
    else:
        for key in ("mismatch_rate", "error_rate"):
            unknown[key] = f"no shadow comparisons for {service.name} yet"


STALE_STATUS_S = 60.0


class PlanCdcSource:
    """CDC state as ``strangle cdc status`` reads it for the plan: the SQLite relay's
    offset and changelog lag, or the PostgreSQL runner's offsets (snapshot completed)
    and its ``status.json`` (lag; older than a minute means the runner is not running)."""

    def __init__(self, plan_path: Path, *, now: Any = time.time) -> None:
        self.plan_path = plan_path
        self.now = now

    def status(self, service: ServicePlan) -> CdcFigures:
        from cdc.errors import CdcError

        try:
            return self._sqlite() or self._postgres()
        except CdcError as exc:
            raise SourceUnavailable(f"CDC status: {exc}") from exc
        except (OSError, ValueError) as exc:
            raise SourceUnavailable(f"CDC status unreadable: {exc}") from exc

    def _sqlite(self) -> CdcFigures | None:
        from cdc.sources.sqlite.runner import status_for_plan

        doc = status_for_plan(self.plan_path)
        if doc is None:
            return None
        if doc.get("offset") is None:
            return CdcFigures(None, False, "the SQLite relay has not published anything yet")
        return CdcFigures(float(doc.get("lag_s") or 0.0), True)

    def _postgres(self) -> CdcFigures:
        import json

        from cdc.config import load_config
        from cdc.offsets import open_store

        config = load_config(self.plan_path)
        offset = open_store(config.offsets, default_dir=config.state_dir).load(config.offset_name)
        complete = bool(offset and offset.get("snapshot_completed"))
        status_file = Path(config.state_dir) / "status.json"
        if not status_file.exists():
            return CdcFigures(None, complete, "no CDC runner status (is `strangle cdc run` up?)")
        runner = json.loads(status_file.read_text())
        age = self.now() - float(runner.get("updated_at", 0))
        if age > STALE_STATUS_S:
            return CdcFigures(
                None, complete, f"CDC runner status is {age:.0f} s old; the runner is not running"
            )
        if runner.get("state") == "failed":
            return CdcFigures(None, complete, f"CDC runner failed: {runner.get('error')}")
        lag = runner.get("lag_seconds")
        return CdcFigures(None if lag is None else float(lag), complete)


def default_sources(
    plan: Plan, plan_path: Path, *, proxy_url: str | None, token: str | None
) -> Sources:
    """Sources as configured by the plan (shadow store, CDC) and the CLI (proxy URL)."""
    from strangler_proxy.shadow.sink import store_settings
    from strangler_proxy.shadow.store import StoreError

    why: dict[str, str] = {}
    shadow: ShadowSource | None = None
    try:
        url, _, _ = store_settings(plan, plan_path.resolve())
        shadow = StoreShadowSource(url)
    except StoreError as exc:
        why["shadow"] = str(exc)
    proxy: ProxySource | None = None
    if proxy_url:
        proxy = MetricsProxySource(proxy_url, token=token)
    else:
        why["proxy"] = "no proxy URL given (--proxy or $STRANGLER_PROXY_URL)"
    return Sources(shadow=shadow, proxy=proxy, cdc=PlanCdcSource(plan_path), why=why)
