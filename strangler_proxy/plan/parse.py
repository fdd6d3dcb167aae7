"""Plan text → :class:`Plan`, or :class:`PlanError` naming file, line and key path.

Every problem is collected (not just the first), so ``strangle plan validate`` shows
them all at once. Warnings (e.g. a service ahead of a service it requires) never stop
parsing; they are kept on ``Plan.warnings`` for callers such as the promotion gates.
"""

from __future__ import annotations

import difflib
import itertools
import math
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from strangler_proxy.plan import keys as K
from strangler_proxy.plan.checker import Checker, describe, dotted, fmt, json_paths
from strangler_proxy.plan.errors import PlanError
from strangler_proxy.plan.model import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_READ_TIMEOUT,
    CanaryPolicy,
    CohortCookie,
    CohortSource,
    CohortSourceKind,
    DataPolicy,
    FallbackPolicy,
    Plan,
    ProxySettings,
    Route,
    ServicePlan,
    ShadowPolicy,
    Stage,
    Upstream,
    freeze,
    thaw,
)
from strangler_proxy.plan.requires import check_requires
from strangler_proxy.plan.routes import (
    check_overlaps,
    index_routes,
    parse_route_template,
    parse_routes,
)
from strangler_proxy.plan.yamlnodes import Path, YamlProblem, load_with_lines

__all__ = ["PlanError", "parse_plan", "parse_route_template"]

_SERVICE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_COOKIE_NAME = _HEADER_NAME
_ABSENT: Any = object()


def parse_plan(text: str, source_name: str = "migration_plan.yaml") -> Plan:
    """Parse and validate plan text; raises :class:`PlanError` listing every error."""
    try:
        data, lines = load_with_lines(text)
    except YamlProblem as exc:
        raise PlanError.single(source_name, exc.message, exc.line, dotted(exc.path)) from None
    ctx = Checker(source_name, lines)
    plan = _plan(ctx, data)
    if ctx.errors or plan is None:
        raise PlanError(ctx.errors)
    return plan


def _plan(ctx: Checker, data: Any) -> Plan | None:
    top = ctx.mapping(data, (), K.PLAN)
    if not isinstance(data, dict):
        return None
    if ctx.required(top, "version", ()):
        version = top["version"]
        if isinstance(version, bool) or version != 1:
            ctx.error(("version",), f"unsupported plan version {version!r} (this build reads 1)")
    monolith = None
    if ctx.required(top, "monolith", ()):
        monolith = _upstream_section(ctx, top["monolith"], ("monolith",), K.MONOLITH)
    proxy = _proxy(ctx, top.get("proxy", _ABSENT), ("proxy",))
    raw: dict[str, Mapping[str, Any]] = {}
    for key in ("kafka", "shadow_store", "cdc"):
        raw[key] = freeze(ctx.mapping(top.get(key, {}), (key,), None))
    audit = ctx.mapping(top.get("audit", {}), ("audit",), K.AUDIT)
    history = ctx.string(audit, "history", ("audit",), None)
    services_raw = top.get("services", {})
    if services_raw is None:
        services_raw = {}
    services_map = ctx.mapping(services_raw, ("services",), None)
    services: dict[str, ServicePlan] = {}
    for name, body in services_map.items():
        path: Path = ("services", name)
        if not _SERVICE_NAME.match(name):
            ctx.error(path, "service names are lowercase letters, digits, '-' and '_'")
            continue
        if name == "monolith":
            ctx.error(path, "'monolith' is reserved (it names the monolith in metrics and logs)")
            continue
        service = _service(ctx, name, body, path)
        if service is not None:
            services[name] = service
    check_requires(ctx, services, services_map)
    routes = check_overlaps(ctx, services)
    if monolith is None:
        return None
    return Plan(
        version=1,
        monolith=monolith,
        services=MappingProxyType(services),
        proxy=proxy,
        kafka=raw["kafka"],
        shadow_store=raw["shadow_store"],
        cdc=raw["cdc"],
        audit_history=history or None,
        source=ctx.source,
        routes=routes,
        route_index=MappingProxyType(index_routes(routes)),
        warnings=tuple(ctx.warnings),
    )


def _url(ctx: Checker, value: Any, path: Path) -> str | None:
    if not isinstance(value, str):
        ctx.error(path, f"must be a URL string, got {describe(value)}")
        return None
    try:
        parts = urlsplit(value)
        _ = parts.port
    except ValueError as exc:
        ctx.error(path, f"invalid URL {value!r}: {exc}")
        return None
    if parts.scheme not in ("http", "https") or not value.startswith(parts.scheme):
        ctx.error(path, f"URL scheme must be http or https, got {value!r}")
        return None
    if not parts.hostname:
        ctx.error(path, f"URL needs a host, got {value!r}")
        return None
    if any(c.isspace() or ord(c) < 0x20 for c in value):
        ctx.error(path, f"URL must not contain spaces or control characters, got {value!r}")
        return None
    if parts.query or parts.fragment or "?" in value or "#" in value:
        ctx.error(path, f"URL must not carry a query or fragment, got {value!r}")
        return None
    if parts.username is not None or parts.password is not None:
        ctx.error(path, "URL must not carry credentials")
        return None
    return value.rstrip("/") if parts.path in ("", "/") else value


def _timeouts(ctx: Checker, m: Mapping[str, Any], path: Path) -> tuple[float, float]:
    if "timeouts" not in m:
        return DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT
    t = ctx.mapping(m["timeouts"], (*path, "timeouts"), K.TIMEOUTS)
    p = (*path, "timeouts")
    connect = ctx.number(t, "connect", p, DEFAULT_CONNECT_TIMEOUT, lo=0, lo_open=True, hi=600)
    read = ctx.number(t, "read", p, DEFAULT_READ_TIMEOUT, lo=0, lo_open=True, hi=3600)
    return connect, read


def _upstream_section(
    ctx: Checker, value: Any, path: Path, allowed: frozenset[str]
) -> Upstream | None:
    m = ctx.mapping(value, path, allowed)
    if not isinstance(value, dict) or not ctx.required(m, "url", path):
        return None
    url = _url(ctx, m["url"], (*path, "url"))
    connect, read = _timeouts(ctx, m, path)
    return None if url is None else Upstream(url, connect, read)


def _proxy(ctx: Checker, value: Any, path: Path) -> ProxySettings:
    if value is _ABSENT:
        return ProxySettings()
    m = ctx.mapping(value, path, K.PROXY)
    d = ProxySettings()
    cookie = d.cohort_cookie
    if "cohort_cookie" in m:
        cp = (*path, "cohort_cookie")
        c = ctx.mapping(m["cohort_cookie"], cp, K.COHORT_COOKIE)
        name = ctx.string(c, "name", cp, cookie.name) or cookie.name
        if not _COOKIE_NAME.match(name):
            ctx.error((*cp, "name"), f"not a valid cookie name: {name!r}")
        max_age = ctx.number(c, "max_age_s", cp, cookie.max_age_s, lo=0, integer=True)
        secure = ctx.boolean(c, "secure", cp, cookie.secure)
        cookie = CohortCookie(name, int(max_age), secure)
    return ProxySettings(
        preserve_host=ctx.boolean(m, "preserve_host", path, d.preserve_host),
        max_header_bytes=int(
            ctx.number(m, "max_header_bytes", path, d.max_header_bytes, lo=1024, integer=True)
        ),
        max_body_bytes=int(
            ctx.number(m, "max_body_bytes", path, d.max_body_bytes, lo=0, integer=True)
        ),
        shadow_queue=int(ctx.number(m, "shadow_queue", path, d.shadow_queue, lo=0, integer=True)),
        cohort_cookie=cookie,
    )


def _service(ctx: Checker, name: str, body: Any, path: Path) -> ServicePlan | None:
    m = ctx.mapping(body, path, K.SERVICE)
    if not isinstance(body, dict):
        return None
    upstreams: list[Upstream] = []
    connect, read = _timeouts(ctx, m, path)
    if ctx.required(m, "url", path):
        urls = m["url"]
        up = (*path, "url")
        if isinstance(urls, list):
            if not urls:
                ctx.error(up, "needs at least one URL")
            for i, u in enumerate(urls):
                url = _url(ctx, u, (*up, i))
                if url is not None:
                    upstreams.append(Upstream(url, connect, read))
        else:
            url = _url(ctx, urls, up)
            if url is not None:
                upstreams.append(Upstream(url, connect, read))
    stage = Stage.MONOLITH
    if "stage" in m:
        raw_stage = m["stage"]
        if isinstance(raw_stage, str) and raw_stage in Stage.__members__.values():
            stage = Stage(raw_stage)
        else:
            hint = difflib.get_close_matches(str(raw_stage), [s.value for s in Stage], n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
            choices = " | ".join(s.value for s in Stage)
            ctx.error((*path, "stage"), f"must be one of {choices}{suggestion}")
    routes = parse_routes(ctx, name, m.get("routes", []), (*path, "routes"))
    canary = _canary(ctx, m.get("canary", _ABSENT), (*path, "canary"), stage)
    shadow = _shadow(ctx, m.get("shadow", _ABSENT), (*path, "shadow"))
    fallback = _fallback(ctx, m, (*path, "fallback"))
    requires = ctx.strings(m, "requires", path) or ()
    gates = _gates(ctx, m.get("gates", _ABSENT), (*path, "gates"))
    data = _data(ctx, m.get("data", _ABSENT), (*path, "data"))
    salt = ctx.string(m, "salt", path, name) or name
    _check_compare_rules(ctx, shadow, routes, path)
    if not upstreams:
        return None
    return ServicePlan(
        name=name,
        upstreams=tuple(upstreams),
        routes=routes,
        stage=stage,
        canary=canary,
        shadow=shadow,
        fallback=fallback,
        requires=requires,
        gates=gates,
        data=data,
        salt=salt,
    )


def _cohort(ctx: Checker, value: Any, path: Path) -> CohortSource | None:
    if not isinstance(value, str):
        ctx.error(path, f"must be a string like 'header:X-Customer-Id', got {describe(value)}")
        return None
    if value == "client":
        return CohortSource(CohortSourceKind.CLIENT)
    kind, sep, name = value.partition(":")
    kinds = [k.value for k in CohortSourceKind if k is not CohortSourceKind.CLIENT]
    if not sep or kind not in kinds or not name:
        ctx.error(path, f"must be header:NAME, cookie:NAME, query:NAME or client, got {value!r}")
        return None
    source_kind = CohortSourceKind(kind)
    if source_kind is not CohortSourceKind.QUERY and not _HEADER_NAME.match(name):
        ctx.error(path, f"not a valid {kind} name: {name!r}")
        return None
    if source_kind is CohortSourceKind.HEADER:
        name = name.lower()
    return CohortSource(source_kind, name)


def _canary(ctx: Checker, value: Any, path: Path, stage: Stage) -> CanaryPolicy:
    d = CanaryPolicy()
    if value is _ABSENT:
        if stage is Stage.CANARY:
            ctx.error((*path[:-1], "stage"), "stage canary needs canary.percent")
        return d
    m = ctx.mapping(value, path, K.CANARY)
    steps = d.steps
    if "steps" in m:
        raw = m["steps"]
        sp = (*path, "steps")
        if not isinstance(raw, list) or not raw:
            ctx.error(sp, "must be a non-empty list of percentages")
        else:
            checked = [ctx.check_number(v, (*sp, i), lo=0, hi=100) for i, v in enumerate(raw)]
            parsed = [v for v in checked if v is not None]
            if len(parsed) == len(raw):
                if any(b <= a for a, b in itertools.pairwise(parsed)):
                    ctx.error(sp, f"must be strictly increasing, got {[fmt(s) for s in parsed]}")
                else:
                    steps = tuple(parsed)
    percent: float | None = None
    if "percent" in m:
        pct = ctx.number(m, "percent", path, math.nan, lo=0, hi=100)
        percent = None if math.isnan(pct) else pct
    elif stage is Stage.CANARY:
        ctx.error(path, "stage canary needs canary.percent")
    cohort = _cohort(ctx, m["cohort"], (*path, "cohort")) if "cohort" in m else None
    return CanaryPolicy(steps, percent, cohort)


def _shadow(ctx: Checker, value: Any, path: Path) -> ShadowPolicy:
    d = ShadowPolicy()
    if value is _ABSENT:
        return d
    m = ctx.mapping(value, path, K.SHADOW)
    writes = d.writes
    if "writes" in m:
        raw = m["writes"]
        if raw is False:  # YAML 1.1 reads an unquoted `off` as false
            raw = "off"
        if raw not in ("off", "dry-run"):
            ctx.error((*path, "writes"), f"must be 'off' or 'dry-run', got {raw!r}")
        else:
            writes = raw
    compare: Mapping[str, Any] = d.compare
    if "compare" in m:
        compare = freeze(ctx.mapping(m["compare"], (*path, "compare"), None))
    return ShadowPolicy(
        sample=ctx.number(m, "sample", path, d.sample, lo=0, hi=1),
        writes=writes,
        ignore=json_paths(ctx, m, path) or (),
        noise_sample=ctx.number(m, "noise_sample", path, d.noise_sample, lo=0, hi=1),
        compare=compare,
    )


def _check_compare_rules(
    ctx: Checker, shadow: ShadowPolicy, routes: tuple[Route, ...], path: Path
) -> None:
    """``shadow.compare`` (and per-route overrides) belong to the comparison engine; ask
    it, so a plan it cannot use is rejected here with a line number, not at runtime."""
    try:
        from strangler_proxy.shadow.rules import rules_from_mapping
    except ImportError:  # pragma: no cover - the shadow package is part of this project
        return
    overrides: dict[str, dict[str, Any]] = {}
    for route in routes:
        override: dict[str, Any] = {}
        if route.shadow_ignore is not None:
            override["ignore"] = list(route.shadow_ignore)
        if route.shadow_compare is not None:
            override["compare"] = thaw(route.shadow_compare)
        if override:
            overrides[route.path_template] = override
    mapping = {
        "ignore": list(shadow.ignore),
        "compare": thaw(shadow.compare),
        "noise_sample": shadow.noise_sample,
    }
    try:
        rules_from_mapping(mapping, overrides)
    except ValueError as exc:
        where, _, message = str(exc).partition(": ")
        if not message:
            where, message = "shadow.compare", str(exc)
        inner, _, rest = message.partition(": ")
        while rest and inner.startswith(where):  # "a.b: a.b.c: text" → "a.b.c: text"
            where, message = inner, rest
            inner, _, rest = message.partition(": ")
        head: Path = path
        shown_head = dotted(path)
        if where.startswith("routes[") and "].shadow" in where:
            template, rest = where[len("routes[") :].split("].shadow", 1)
            index = next((i for i, r in enumerate(routes) if r.path_template == template), None)
            if index is not None:
                head = (*path, "routes", index)
                shown_head = f"{shown_head}.routes[{index}]"
                where = "shadow" + rest
        parts = tuple(p for p in re.split(r"[.\[]", where) if p and not p.endswith("]"))
        ctx.error_shown_as((*head, *parts), f"{shown_head}.{where}", message)


def _fallback(ctx: Checker, m: Mapping[str, Any], path: Path) -> FallbackPolicy | None:
    if "fallback" not in m:
        return None
    value = m["fallback"]
    if value is None or value is False or value == "off":
        return None
    if value == "monolith":
        return FallbackPolicy()
    f = ctx.mapping(value, path, K.FALLBACK)
    d = FallbackPolicy()
    to = ctx.string(f, "to", path, "monolith")
    if to != "monolith":
        ctx.error((*path, "to"), f"only 'monolith' is supported, got {to!r}")
    on = d.on
    names = ctx.strings(f, "on", path)
    if names is not None:
        bad = [n for n in names if n not in K.FALLBACK_ON]
        if bad:
            choices = ", ".join(sorted(K.FALLBACK_ON))
            ctx.error((*path, "on"), f"unknown failure kind {bad[0]!r}; allowed: {choices}")
        else:
            on = frozenset(names)
    failures, reset = d.breaker_failures, d.breaker_reset_s
    if "breaker" in f:
        bp = (*path, "breaker")
        b = ctx.mapping(f["breaker"], bp, K.BREAKER)
        failures = int(ctx.number(b, "failures", bp, failures, lo=1, integer=True))
        reset = ctx.number(b, "reset_s", bp, reset, lo=0, lo_open=True)
    return FallbackPolicy("monolith", on, failures, reset)


_GATE_RULES: dict[str, Callable[[Checker, Mapping[str, Any], Path, str], float]] = {
    "min_samples": lambda c, m, p, k: c.number(m, k, p, 0, lo=0, integer=True),
    "max_mismatch_rate": lambda c, m, p, k: c.number(m, k, p, 0, lo=0, hi=1),
    "max_error_rate": lambda c, m, p, k: c.number(m, k, p, 0, lo=0, hi=1),
    "max_cdc_lag_s": lambda c, m, p, k: c.number(m, k, p, 0, lo=0),
    "min_duration_s": lambda c, m, p, k: c.number(m, k, p, 0, lo=0),
    "max_latency_ratio": lambda c, m, p, k: c.number(m, k, p, 0, lo=0, lo_open=True),
}


def _gates(ctx: Checker, value: Any, path: Path) -> Mapping[str, float]:
    if value is _ABSENT:
        return MappingProxyType({})
    m = ctx.mapping(value, path, K.GATES)
    out = {k: _GATE_RULES[k](ctx, m, path, k) for k in m if k in _GATE_RULES}
    return MappingProxyType(out)


def _data(ctx: Checker, value: Any, path: Path) -> DataPolicy:
    if value is _ABSENT:
        return DataPolicy()
    m = ctx.mapping(value, path, K.DATA)
    owner = ctx.string(m, "owner", path, "monolith") or "monolith"
    if owner not in ("monolith", "service"):
        ctx.error((*path, "owner"), f"must be 'monolith' or 'service', got {owner!r}")
    tables: dict[str, str] = {}
    if "tables" in m:
        tp = (*path, "tables")
        t = ctx.mapping(m["tables"], tp, None)
        for k, v in t.items():
            if not isinstance(v, str) or not v:
                ctx.error((*tp, k), f"must name the service table, got {describe(v)}")
            else:
                tables[k] = v
    owned = ctx.strings(m, "owned", path) or ()
    for i, name in enumerate(owned):
        if name not in tables:
            known = ", ".join(sorted(tables)) or "none"
            ctx.error((*path, "owned", i),
                      f"{name!r} is not one of data.tables (the tables the service has: "
                      f"{known}); the service can only own a table it syncs")
        elif owned.index(name) != i:
            ctx.error((*path, "owned", i), f"{name!r} is listed twice")
    return DataPolicy(owner, MappingProxyType(tables), tuple(owned))
