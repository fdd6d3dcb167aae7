"""Dry-run writes: the proxy's shadow mirror sends writes with ``x-strangler-dry-run``.

Such a request runs normally inside one transaction that is then rolled back, and no
notification leaves the building (``on_commit`` hooks never fire, the delivery backend
is swapped for one that sends nothing). The response is what the real write would have
returned.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from prometheus_client import Counter

from strangler_proxy.shadow.observation import DRY_RUN_HEADER

SAFE_METHODS = {"GET", "HEAD", "OPTIONS", "TRACE"}
DRY_RUN_WRITES = Counter("monolith_dry_run_writes_total",
                         "Writes rolled back because of the dry-run header")

active: ContextVar[bool] = ContextVar("monolith_dry_run", default=False)


def is_dry_run(value: str | None) -> bool:
    return value is not None and value.strip().lower() not in ("", "0", "false", "no", "off")


class DryRunMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method in SAFE_METHODS or not is_dry_run(request.headers.get(DRY_RUN_HEADER)):
            return self.get_response(request)
        token = active.set(True)
        try:
            with transaction.atomic():
                response = self.get_response(request)
                transaction.set_rollback(True)
        finally:
            active.reset(token)
        DRY_RUN_WRITES.inc()
        return response
