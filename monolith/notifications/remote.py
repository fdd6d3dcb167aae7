"""Sending through the extracted notifications service, when the plan says so.

The migration plan (``$STRANGLE_PLAN``, else ``./migration_plan.yaml``) decides: while
``services.notifications.stage`` is ``service`` or ``retired``, :func:`send` calls the
service's ``POST /internal/notifications/send`` — httpx with short timeouts, a few
retries and a circuit breaker — instead of the local module. A call that still fails is
queued (:class:`~monolith.notifications.models.PendingSend`) and retried later with the
same idempotency key, so a notification is never lost, never sent twice, and the order
that triggered it never fails. The queue drains after each successful call and with
``python -m monolith notifications-retry``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml
from django.db import transaction
from django.utils import timezone

log = logging.getLogger("monolith.notifications")

REMOTE_STAGES = {"service", "retired"}
SEND_PATH = "/internal/notifications/send"
RETRIES = int(os.environ.get("NOTIFICATIONS_SERVICE_RETRIES", "2"))
TIMEOUT = httpx.Timeout(float(os.environ.get("NOTIFICATIONS_SERVICE_TIMEOUT_S", "3")),
                        connect=1.0)


class RemoteError(Exception):
    pass


# -- the plan ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Route:
    stage: str
    url: str | None

    @property
    def remote(self) -> bool:
        return self.stage in REMOTE_STAGES and bool(self.url)


def route_from_plan(plan: Mapping[str, Any]) -> Route:
    """Pure: the notifications stage and service URL in a parsed plan."""
    services = plan.get("services") if isinstance(plan, Mapping) else None
    service = services.get("notifications") if isinstance(services, Mapping) else None
    if not isinstance(service, Mapping):
        return Route("monolith", None)
    url = service.get("url")
    return Route(str(service.get("stage", "monolith")), str(url) if url else None)


class PlanRoute:
    """The current route, re-read when the plan file changes (mtime), cheap otherwise."""

    def __init__(self, path: Callable[[], Path]) -> None:
        self._path = path
        self._cached: tuple[Path, float, Route] | None = None
        self._lock = threading.Lock()

    def current(self) -> Route:
        path = self._path()
        try:
            mtime = path.stat().st_mtime
        except OSError:
            return Route("monolith", None)  # no plan: the monolith does everything
        with self._lock:
            if self._cached and self._cached[0] == path and self._cached[1] == mtime:
                return self._cached[2]
            try:
                route = route_from_plan(yaml.safe_load(path.read_text("utf-8")) or {})
            except (OSError, yaml.YAMLError) as exc:
                log.warning("plan unreadable; keeping the last route", extra={"error": str(exc)})
                return self._cached[2] if self._cached else Route("monolith", None)
            self._cached = (path, mtime, route)
            return route


PLAN = PlanRoute(lambda: Path(os.environ.get("STRANGLE_PLAN") or "migration_plan.yaml"))


# -- the circuit breaker ----------------------------------------------------------------

class CircuitBreaker:
    """Open after ``threshold`` consecutive failures; one trial call after ``reset_s``."""

    def __init__(self, threshold: int = 5, reset_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = threshold
        self.reset_s = reset_s
        self.clock = clock
        self.failures = 0
        self.opened_at: float | None = None
        self._lock = threading.Lock()

    def allow(self) -> bool:
        with self._lock:
            if self.opened_at is None:
                return True
            if self.clock() - self.opened_at >= self.reset_s:
                self.opened_at = self.clock()  # half-open: let one call try
                return True
            return False

    def record(self, ok: bool) -> None:
        with self._lock:
            if ok:
                self.failures, self.opened_at = 0, None
            else:
                self.failures += 1
                if self.failures >= self.threshold:
                    self.opened_at = self.clock()


BREAKER = CircuitBreaker()


# -- calls --------------------------------------------------------------------------------

def _call(url: str, body: Mapping[str, Any]) -> None:
    if not BREAKER.allow():
        raise RemoteError("circuit open: the notifications service failed repeatedly")
    error = ""
    for attempt in range(RETRIES + 1):
        if attempt:
            time.sleep(0.1 * 3 ** (attempt - 1))
        try:
            response = httpx.post(url.rstrip("/") + SEND_PATH, json=dict(body), timeout=TIMEOUT)
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
            continue
        if response.status_code in (200, 201):
            BREAKER.record(True)
            return
        error = f"HTTP {response.status_code}: {response.text[:200]}"
        if response.status_code < 500:
            # refused, not broken (e.g. a customer CDC has not brought over yet): queue it,
            # a later retry may succeed, but do not trip the breaker
            raise RemoteError(error)
    BREAKER.record(False)
    raise RemoteError(error)


def send(*, url: str, customer_id: int, template: str, context: Mapping[str, str]) -> bool:
    """Send through the service; on failure queue it. True if the service confirmed.

    Under a dry-run request nothing is sent or queued."""
    from monolith.common import dry_run
    from monolith.notifications.models import PendingSend

    if dry_run.active.get():
        return False

    body = {"customer_id": customer_id, "template": template, "context": dict(context),
            "idempotency_key": uuid.uuid4().hex}
    try:
        _call(url, body)
    except RemoteError as exc:
        PendingSend.objects.create(key=body["idempotency_key"], customer_id=customer_id,
                                   template=template, context=body["context"],
                                   attempts=1, last_error=str(exc)[:2000],
                                   next_attempt_at=timezone.now() + timedelta(seconds=1))
        log.warning("notification queued for retry",
                    extra={"customer_id": customer_id, "template": template, "error": str(exc)})
        return False
    drain(url, limit=10)
    return True


def drain(url: str | None = None, *, limit: int = 100, now: bool = False) -> tuple[int, int]:
    """Retry queued sends that are due (all of them with ``now``); returns
    (sent, still queued)."""
    from monolith.notifications.models import PendingSend

    url = url or PLAN.current().url
    sent = 0
    if url:
        queued = PendingSend.objects.order_by("id")
        if not now:
            queued = queued.filter(next_attempt_at__lte=timezone.now())
        due = list(queued[:limit])
        for pending in due:
            body = {"customer_id": pending.customer_id, "template": pending.template,
                    "context": pending.context, "idempotency_key": pending.key}
            try:
                _call(url, body)
            except RemoteError as exc:
                with transaction.atomic():
                    pending.attempts += 1
                    pending.last_error = str(exc)[:2000]
                    pending.next_attempt_at = timezone.now() + timedelta(
                        seconds=min(300, 2 ** min(pending.attempts, 8)))
                    pending.save(update_fields=["attempts", "last_error", "next_attempt_at"])
                break  # the service is still unwell: keep the rest for later
            pending.delete()
            sent += 1
    return sent, PendingSend.objects.count()
