"""Admin endpoints under the reserved prefix ``/_strangler/`` (never forwarded).

``health`` and ``ready`` are open (load balancers probe them); ``metrics`` is open for
Prometheus scrapers; ``status`` and ``report/{service}`` (the shadow comparison report
as HTML) need ``Authorization: Bearer $STRANGLER_ADMIN_TOKEN`` and are refused outright
when no token is configured.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from strangler_proxy.metrics import ProxyMetrics
from strangler_proxy.plan.io import LoadedPlan

PREFIX = "/_strangler/"


class StatusSource(Protocol):
    def status(self) -> dict[str, Any]: ...


def authorized(request: Request, token: str | None) -> bool:
    if not token:
        return False
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)


def plan_summary(loaded: LoadedPlan) -> dict[str, Any]:
    plan = loaded.plan
    return {
        "version": plan.version,
        "sha256": loaded.sha256,
        "path": str(loaded.path),
        "mtime": loaded.mtime,
        "monolith": plan.monolith.url,
        "services": {
            name: {
                "stage": str(svc.stage),
                "url": svc.upstream.url,
                "canary_percent": svc.canary.percent,
                "shadow_sample": svc.shadow.sample,
                "shadow_writes": svc.shadow.writes,
                "fallback": svc.fallback is not None,
                "routes": [f"{sorted(r.methods)} {r.path_template}" for r in svc.routes],
            }
            for name, svc in plan.services.items()
        },
    }


def _deny(request: Request, configured: str | None) -> Response | None:
    if not configured:
        return JSONResponse(
            {"error": "forbidden", "message": "STRANGLER_ADMIN_TOKEN is not set"},
            status_code=403,
        )
    if not authorized(request, configured):
        return JSONResponse(
            {"error": "unauthorized", "message": "Bearer token required"},
            status_code=401,
            headers={"www-authenticate": 'Bearer realm="strangler"'},
        )
    return None


def admin_app(
    *,
    token: Callable[[], str | None],
    metrics: ProxyMetrics,
    status: StatusSource,
    ready: Callable[[], bool],
    plan: Callable[[], LoadedPlan],
) -> Starlette:
    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readiness(request: Request) -> Response:
        ok = ready()
        return JSONResponse({"ready": ok}, status_code=200 if ok else 503)

    async def status_view(request: Request) -> Response:
        denied = _deny(request, token())
        if denied is not None:
            return denied
        return JSONResponse(status.status())

    async def report_view(request: Request) -> Response:
        denied = _deny(request, token())
        if denied is not None:
            return denied
        from starlette.concurrency import run_in_threadpool

        from strangler_proxy.shadow.sink import UnknownService, service_report_html
        from strangler_proxy.shadow.store import StoreError

        name = request.path_params["service"]
        try:
            html = await run_in_threadpool(service_report_html, plan(), name)
        except UnknownService:
            return JSONResponse({"error": "not_found", "message": f"no service {name!r}"},
                                status_code=404)
        except StoreError as exc:
            return JSONResponse({"error": "store_unavailable", "message": str(exc)},
                                status_code=503)
        return HTMLResponse(html)

    async def metrics_view(request: Request) -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    async def not_found(request: Request) -> Response:
        return JSONResponse({"error": "not_found"}, status_code=404)

    return Starlette(
        routes=[
            Route(PREFIX + "health", health),
            Route(PREFIX + "ready", readiness),
            Route(PREFIX + "status", status_view),
            Route(PREFIX + "metrics", metrics_view),
            Route(PREFIX + "report/{service}", report_view),
            Route(PREFIX + "{rest:path}", not_found),
        ]
    )
