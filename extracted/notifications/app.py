"""The ASGI app: routing, one transaction per request, dry runs, metrics, health."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import sqlalchemy as sa
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from extracted.notifications.api import ENDPOINTS, Handler, Reply, Req
from extracted.notifications.config import Settings
from extracted.notifications.db import make_engine, source_position
from extracted.notifications.delivery import Backend, backend_named
from extracted.notifications.errors import ApiError, MethodNotAllowed, NotFound, PayloadTooLarge
from strangler_proxy.shadow.observation import DRY_RUN_HEADER, SOURCE_POSITION_HEADER

log = logging.getLogger("extracted.notifications")
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
BODY_METHODS = {"POST", "PUT", "PATCH"}


def is_dry_run(value: str | None) -> bool:
    return value is not None and value.strip().lower() not in ("", "0", "false", "no", "off")


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None
                  ) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status_code=status,
                    headers=headers, media_type="application/json")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("notifications_http_requests_total", "HTTP requests handled",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram(
            "notifications_http_request_duration_seconds", "HTTP request latency",
            ["method", "route"], registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0))
        self.dry_runs = Counter("notifications_dry_run_writes_total",
                                "Writes rolled back because of the dry-run header",
                                registry=self.registry)
        self.source_lag = Gauge("notifications_source_lag_seconds",
                                "Seconds between now and the newest source change applied",
                                registry=self.registry)
        self.sent = Counter("notifications_sent_total", "Notifications by channel and outcome",
                            ["channel", "status"], registry=self.registry)


class NotificationsService:
    def __init__(self, settings: Settings, backend: Backend | None = None) -> None:
        self.settings = settings
        self.engine = make_engine(settings.database_url)
        self.backend = backend or backend_named(settings.backend, settings.outbox)
        self.metrics = Metrics()

    def run(self, handler: Handler, req: Req, *, write: bool, dry_run: bool
            ) -> tuple[Reply, str | None]:
        with Session(self.engine, expire_on_commit=False) as session:
            if write:
                session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
            # Read first, in the transaction that reads the data: on SQLite the same
            # snapshot, on PostgreSQL (read committed) never newer than the data — a
            # position read afterwards could claim changes the answer does not reflect.
            position, _ts = source_position(session)
            try:
                reply = handler(session, req)
            except ApiError as exc:
                session.rollback()
                reply = Reply(exc.body(), exc.status)
            else:
                if write and not dry_run:
                    session.commit()
                else:
                    session.rollback()
        return reply, position.header_value() if position is not None else None

    def health(self) -> tuple[dict[str, Any], int]:
        try:
            with Session(self.engine) as session:
                session.execute(sa.text("SELECT 1"))
                position, ts = source_position(session)
        except SQLAlchemyError as exc:
            return {"status": "error", "database": str(exc).splitlines()[0]}, 503
        lag = max(0.0, time.time() - ts / 1000) if ts is not None else None
        return {
            "status": "ok",
            "database": self.engine.dialect.name,
            "source_position": str(position) if position is not None else None,
            "source_lag_s": round(lag, 3) if lag is not None else None,
        }, 200


def _endpoint(service: NotificationsService, template: str,
              handlers: dict[str, Handler]) -> Any:
    table = dict(handlers)
    if "GET" in table:
        table.setdefault("HEAD", table["GET"])
    allowed = ", ".join(sorted(table))

    async def endpoint(request: Request) -> Response:
        started = time.perf_counter()
        method = request.method
        response = await _handle(request, method)
        elapsed = time.perf_counter() - started
        service.metrics.requests.labels(method, template, str(response.status_code)).inc()
        service.metrics.latency.labels(method, template).observe(elapsed)
        log.info("request", extra={"method": method, "path": request.url.path,
                                   "status": response.status_code,
                                   "duration_ms": round(elapsed * 1000, 2)})
        return response

    async def _handle(request: Request, method: str) -> Response:
        handler = table.get(method)
        if handler is None:
            error = MethodNotAllowed(f"Method {method} not allowed; allowed: {allowed}.")
            return json_response(error.body(), error.status, {"Allow": allowed})
        body: bytes | None = b""
        if method in BODY_METHODS:
            body = await _read_body(request, service.settings.max_body_bytes)
        if body is None:
            too_large = PayloadTooLarge("Request body too large.")
            return json_response(too_large.body(), too_large.status)
        dry_run = is_dry_run(request.headers.get(DRY_RUN_HEADER))
        write = method not in SAFE_METHODS
        req = Req(
            method=method, path=request.url.path,
            query=dict(request.query_params.items()),
            content_type=request.headers.get("content-type", "").split(";")[0].strip().lower(),
            body=body, params=dict(request.path_params),
            backend=None if dry_run else service.backend,
        )
        try:
            reply, position = await run_in_threadpool(service.run, handler, req, write=write,
                                                      dry_run=dry_run)
        except SQLAlchemyError:
            log.exception("database error", extra={"path": request.url.path})
            failure = ApiError("Internal server error.")
            return json_response(failure.body(), failure.status)
        if write and dry_run:
            service.metrics.dry_runs.inc()
        elif write and reply.status == 201 and isinstance(reply.body, dict):
            service.metrics.sent.labels(reply.body.get("channel", ""),
                                        reply.body.get("status", "")).inc()
        headers = dict(reply.headers)
        if position is not None:
            headers[SOURCE_POSITION_HEADER] = position
        return json_response(reply.body, reply.status, headers)

    return endpoint


async def _read_body(request: Request, limit: int) -> bytes | None:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(settings: Settings | None = None, *, backend: Backend | None = None) -> Starlette:
    service = NotificationsService(settings or Settings.from_env(), backend)

    async def healthz(_request: Request) -> Response:
        body, status = await run_in_threadpool(service.health)
        return json_response(body, status)

    async def metrics(_request: Request) -> Response:
        body, _status = await run_in_threadpool(service.health)
        if body.get("source_lag_s") is not None:
            service.metrics.source_lag.set(body["source_lag_s"])
        return Response(generate_latest(service.metrics.registry),
                        media_type=CONTENT_TYPE_LATEST)

    async def not_found(request: Request, exc: Exception) -> Response:
        if isinstance(exc, HTTPException) and exc.status_code != 404:
            return json_response({"error": {"code": "http_error", "message": exc.detail}},
                                 exc.status_code)
        error = NotFound(f"No API endpoint at {request.url.path}.")
        return json_response(error.body(), error.status)

    routes = [Route(path, _endpoint(service, path, handlers), methods=ALL_METHODS)
              for path, handlers in ENDPOINTS.items()]
    routes += [Route("/healthz", healthz), Route("/metrics", metrics)]
    app = Starlette(routes=routes, exception_handlers={HTTPException: not_found})
    app.state.service = service
    return app
