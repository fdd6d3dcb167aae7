"""Wiring the comparison engine to the plan (the proxy's sink factory).

``STRANGLER_SINK=strangler_proxy.shadow.sink:engine_from_plan strangle proxy`` — or pass
:func:`engine_from_plan` as ``sink_factory`` to ``create_app``. Rules follow plan
reloads; the store URL, sample bound and retention are read once at start.

:func:`service_report_html` is what an admin route ``/_strangler/report/{service}``
serves (blocking database reads: run it in a thread from async code).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from strangler_proxy.plan.io import LoadedPlan
from strangler_proxy.plan.model import Plan, ServicePlan
from strangler_proxy.shadow.engine import ShadowEngine
from strangler_proxy.shadow.recheck import LagRecheck, RecheckSettings
from strangler_proxy.shadow.render import render_html
from strangler_proxy.shadow.report import Gates, Report, report_from_store
from strangler_proxy.shadow.rules import CompareRules, ServiceRules, rules_from_mapping
from strangler_proxy.shadow.store import ShadowStore, resolve_url

DEFAULT_RULES = CompareRules()
log = logging.getLogger("strangler.shadow")


def service_rules(service: ServicePlan) -> ServiceRules:
    """The compare rules a service's plan entry asks for (ValueError names a bad key)."""
    s = service.shadow
    shadow = {"ignore": list(s.ignore), "compare": s.compare, "noise_sample": s.noise_sample}
    routes: dict[str, dict[str, Any]] = {}
    for route in service.routes:
        override: dict[str, Any] = {}
        if route.shadow_ignore:
            override["ignore"] = list(route.shadow_ignore)
        if route.shadow_compare is not None:
            override["compare"] = route.shadow_compare
        if override:
            routes[route.path_template] = override
    return rules_from_mapping(shadow, routes)


def service_gates(service: ServicePlan) -> Gates:
    return Gates.from_mapping(service.gates)


def store_settings(plan: Plan, plan_path: Path | None) -> tuple[str, int, float | None]:
    """(store URL, max samples per field, retention in seconds) from ``shadow_store``."""
    cfg = plan.shadow_store or {}
    base = plan_path.parent if plan_path is not None else None
    url = resolve_url(cfg.get("url"), base)
    max_samples = int(cfg.get("max_samples", 20))
    days = cfg.get("retention_days", 14)
    return url, max_samples, float(days) * 86400 if days is not None else None


def open_store(loaded: LoadedPlan) -> ShadowStore:
    url, _, _ = store_settings(loaded.plan, loaded.path)
    return ShadowStore(url)


class PlanRules:
    """Rules per (service, route) from whatever plan is serving, rebuilt on reload."""

    def __init__(self, current: Callable[[], LoadedPlan]) -> None:
        self.current = current
        self._sha = ""
        self._rules: dict[str, ServiceRules] = {}

    def __call__(self, service: str, route: str) -> CompareRules:
        loaded = self.current()
        if loaded.sha256 != self._sha:
            self._rules = {}
            for name, svc in loaded.plan.services.items():
                try:
                    self._rules[name] = service_rules(svc)
                except ValueError as exc:
                    log.warning(
                        "invalid shadow rules; comparing with defaults",
                        extra={"service": name, "error": str(exc)},
                    )
                    self._rules[name] = ServiceRules(DEFAULT_RULES)
            self._sha = loaded.sha256
        rules = self._rules.get(service)
        return rules.for_route(route) if rules is not None else DEFAULT_RULES


class PlanUpstreams:
    """(monolith URL, service URL) of a service in whatever plan is serving."""

    def __init__(self, current: Callable[[], LoadedPlan]) -> None:
        self.current = current

    def __call__(self, service: str) -> tuple[str, str] | None:
        plan = self.current().plan
        svc = plan.services.get(service)
        return (plan.monolith.url, svc.upstream.url) if svc is not None else None


class PlanEngine(ShadowEngine):
    """The engine :func:`engine_from_plan` builds: its Prometheus figures include the
    lag re-check's (the proxy registers only its sink)."""

    def collect(self) -> Iterator[Any]:
        yield from super().collect()
        if isinstance(self.recheck, LagRecheck):
            yield from self.recheck.collect()


def engine_from_plan(current: Callable[[], LoadedPlan], **kwargs: Any) -> ShadowEngine:
    """A started :class:`ShadowEngine` writing to the plan's shadow store, with a
    :class:`~strangler_proxy.shadow.recheck.LagRecheck` re-checking mismatches that
    might be replication delay (``recheck=None`` or ``STRANGLER_LAG_RECHECK=0`` turns
    that off; ``STRANGLER_LAG_RECHECK_MAX_WAIT_S`` bounds each re-check, default 10)."""
    loaded = current()
    url, max_samples, retention_s = store_settings(loaded.plan, loaded.path)
    kwargs.setdefault("max_samples", max_samples)
    kwargs.setdefault("retention_s", retention_s)
    recheck = None
    if "recheck" not in kwargs and os.environ.get("STRANGLER_LAG_RECHECK", "1") != "0":
        # its own rules object: PlanRules is not shared across threads
        recheck = LagRecheck(PlanUpstreams(current), PlanRules(current),
                             RecheckSettings.from_env(os.environ))
        kwargs["recheck"] = recheck
    engine = PlanEngine(ShadowStore(url), PlanRules(current), **kwargs)
    if recheck is not None:
        recheck.start(engine.submit)
    return engine


class UnknownService(KeyError):
    """The plan has no service of that name."""


def service_report(loaded: LoadedPlan, service: str, *, since: float | None = None) -> Report:
    """The shadow report of one service, from the store the plan names (what the CLI
    and the admin API show). Raises UnknownService or StoreError."""
    import time

    svc = loaded.plan.services.get(service)
    if svc is None:
        raise UnknownService(service)
    try:
        rules: ServiceRules | None = service_rules(svc)
    except ValueError:
        rules = None
    store = open_store(loaded)
    try:
        return report_from_store(
            store, service, now=time.time(), rules=rules, gates=service_gates(svc), since=since
        )
    finally:
        store.close()


def service_report_html(loaded: LoadedPlan, service: str) -> str:
    """One self-contained HTML page for ``GET /_strangler/report/{service}``."""
    return render_html(service_report(loaded, service))
