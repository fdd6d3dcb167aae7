"""Route templates: compiling ``/api/orders/{id}``, reading a service's ``routes:``,
refusing overlaps, and indexing routes for :func:`strangler_proxy.routing.match_route`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from strangler_proxy.plan import keys as K
from strangler_proxy.plan.checker import Checker, describe, json_paths
from strangler_proxy.plan.model import ALL_METHODS, Route, ServicePlan, freeze
from strangler_proxy.plan.yamlnodes import Path

__all__ = ["check_overlaps", "index_routes", "parse_route_template", "parse_routes"]

_PARAM = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)(:path)?\}$")
_METHOD = re.compile(r"^[A-Za-z]{1,20}$")


def parse_route_template(template: str) -> tuple[tuple[int, str], ...]:
    """``/api/orders/{id}`` → compiled segments; raises ValueError with a reason."""
    if not template.startswith("/"):
        raise ValueError("must start with '/'")
    if any(c in template for c in "?#") or any(ord(c) < 0x21 for c in template):
        raise ValueError("must be a path without query, fragment, spaces or control characters")
    parts = template[1:].split("/")
    if parts and parts[-1] == "" and len(parts) > 1:
        parts = parts[:-1]
    if parts == [""]:
        return ()
    segments: list[tuple[int, str]] = []
    names: set[str] = set()
    for i, part in enumerate(parts):
        if part == "":
            raise ValueError("empty path segment ('//')")
        match = _PARAM.match(part)
        if match:
            name = match.group(1)
            if name in names:
                raise ValueError(f"parameter {{{name}}} appears twice")
            names.add(name)
            if match.group(2):
                if i != len(parts) - 1:
                    raise ValueError(f"{{{name}:path}} must be the last segment")
                segments.append((Route.CATCH_ALL, name))
            else:
                segments.append((Route.PARAM, name))
        elif "{" in part or "}" in part:
            raise ValueError(f"bad parameter {part!r} (use {{name}} or {{name:path}})")
        else:
            literal = unquote(part)
            if literal in (".", ".."):
                raise ValueError("'.' and '..' segments are not allowed")
            segments.append((Route.LITERAL, literal))
    return tuple(segments)


def parse_routes(ctx: Checker, service: str, value: Any, path: Path) -> tuple[Route, ...]:
    if not isinstance(value, list):
        ctx.error(path, f"must be a list of routes, got {describe(value)}")
        return ()
    routes: list[Route] = []
    for i, item in enumerate(value):
        p = (*path, i)
        if isinstance(item, str):
            item = {"path": item}
        r = ctx.mapping(item, p, K.ROUTE)
        if not isinstance(item, dict) or not ctx.required(r, "path", p):
            continue
        template = r["path"]
        if not isinstance(template, str):
            ctx.error((*p, "path"), f"must be a path string, got {describe(template)}")
            continue
        try:
            segments = parse_route_template(template)
        except ValueError as exc:
            ctx.error((*p, "path"), f"bad path template {template!r}: {exc}")
            continue
        methods = _methods(ctx, r, p)
        ignore: tuple[str, ...] | None = None
        compare: Mapping[str, Any] | None = None
        if "shadow" in r:
            sp = (*p, "shadow")
            s = ctx.mapping(r["shadow"], sp, K.ROUTE_SHADOW)
            ignore = json_paths(ctx, s, sp)
            if "compare" in s:
                compare = freeze(ctx.mapping(s["compare"], (*sp, "compare"), None))
        if methods is not None:
            routes.append(Route(template, methods, service, segments, ignore, compare))
    return tuple(routes)


def _methods(ctx: Checker, r: Mapping[str, Any], path: Path) -> frozenset[str] | None:
    if "methods" not in r:
        return ALL_METHODS
    value = r["methods"]
    p = (*path, "methods")
    if not isinstance(value, list) or not value:
        ctx.error(p, "must be a non-empty list of HTTP methods")
        return None
    out: set[str] = set()
    for i, m in enumerate(value):
        if not isinstance(m, str) or not _METHOD.match(m):
            ctx.error((*p, i), f"not an HTTP method: {m!r}")
            return None
        method = m.upper()
        if method == "ANY":
            out |= ALL_METHODS
        else:
            out.add(method)
    if "GET" in out:
        out.add("HEAD")
    return frozenset(out)


def check_overlaps(ctx: Checker, services: Mapping[str, ServicePlan]) -> tuple[Route, ...]:
    seen: dict[tuple[tuple[int, str], ...], list[tuple[Route, int]]] = {}
    for service in services.values():
        for i, route in enumerate(service.routes):
            others = seen.setdefault(route.shape, [])
            for other, j in others:
                common = route.methods & other.methods
                if common:
                    ctx.error(
                        ("services", service.name, "routes", i, "path"),
                        f"{route.path_template!r} overlaps services.{other.service}.routes[{j}] "
                        f"({other.path_template!r}) for {', '.join(sorted(common))}",
                    )
            others.append((route, i))
    every = [r for s in services.values() for r in s.routes]
    every.sort(key=lambda r: r.specificity, reverse=True)
    return tuple(every)


def index_routes(routes: tuple[Route, ...]) -> dict[tuple[str | None, int], tuple[Route, ...]]:
    index: dict[tuple[str | None, int], list[Route]] = {}
    for route in routes:
        index.setdefault(route.index_key, []).append(route)
    return {k: tuple(v) for k, v in index.items()}
