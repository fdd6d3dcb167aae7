"""The proxy as an ASGI application.

A raw ASGI callable: requests under ``/_strangler/`` go to the admin Starlette app
(Prometheus metrics at ``/_strangler/metrics`` — ``/metrics`` belongs to the monolith);
everything else goes to :class:`~strangler_proxy.forwarding.handler.Handler` without
Starlette routing on the hot path. Lifespan starts the plan watcher, the shadow
mirror workers and the access-log flusher.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from functools import partial
from operator import attrgetter
from pathlib import Path
from typing import Any, Protocol, cast

from prometheus_client.registry import Collector
from starlette.types import Receive, Scope, Send

from strangler_proxy import jsonlog
from strangler_proxy.admin import PREFIX, admin_app, plan_summary
from strangler_proxy.audit import reload_recorder
from strangler_proxy.figures import baselines
from strangler_proxy.forwarding.accesslog import AccessLog
from strangler_proxy.forwarding.fastpath import FastPath
from strangler_proxy.forwarding.handler import Handler
from strangler_proxy.forwarding.mirror import Mirror
from strangler_proxy.metrics import ProxyMetrics
from strangler_proxy.plan.errors import PlanError
from strangler_proxy.plan.io import LoadedPlan
from strangler_proxy.plan.model import Plan
from strangler_proxy.plan.watch import PlanWatcher
from strangler_proxy.shadow.observation import ExchangeSink, NullSink

log = logging.getLogger("strangler.proxy")

SinkFactory = Callable[[Callable[[], LoadedPlan]], ExchangeSink]
"""Builds the shadow sink; gets a callable returning the plan serving right now."""


class PlanSource(Protocol):
    """Holds the current plan; a watcher swaps it atomically on reload."""

    @property
    def current(self) -> LoadedPlan: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class FixedPlan:
    """A plan that never changes (tests, embedding)."""

    def __init__(self, loaded: LoadedPlan) -> None:
        self.current = loaded

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


class WatchedPlan:
    """The plan helper's :class:`PlanWatcher` (file polling + SIGHUP) as a PlanSource."""

    def __init__(self, watcher: PlanWatcher) -> None:
        self.watcher = watcher

    @property
    def current(self) -> LoadedPlan:
        return self.watcher.current

    async def start(self) -> None:
        self.watcher.start()
        self.watcher.install_sighup()

    async def stop(self) -> None:
        await self.watcher.stop()


class ProxyApp:
    def __init__(
        self,
        plans: PlanSource,
        *,
        sink_factory: SinkFactory | None = None,
        admin_token: str | None = None,
        access_log: bool = True,
        shadow_workers: int = 8,
        metrics: ProxyMetrics | None = None,
        fast_path: bool = True,
    ) -> None:
        self.plans = plans
        self.metrics = metrics or ProxyMetrics()
        self.sink_factory = sink_factory
        plan = plans.current.plan
        self.mirror = Mirror(NullSink(), maxsize=plan.proxy.shadow_queue, workers=shadow_workers)
        self.access_log = AccessLog() if access_log else None
        # plans.current.plan, read per request without a Python frame
        current: Callable[[], Plan] = partial(attrgetter("current.plan"), plans)
        self.handler = Handler(
            current, metrics=self.metrics, mirror=self.mirror, access_log=self.access_log
        )
        self.fast = FastPath(self.handler, current, PREFIX, enabled=fast_path)
        self.admin_token = admin_token
        self.started_at = 0.0
        self._ready = False
        self.metrics.shadow = self.mirror.stats
        self.metrics.before_collect = self.mirror.fold
        self.metrics.shadow_queue_depth = self.mirror.queue.qsize
        self.metrics.breakers = self.handler.breaker_states
        self.metrics.plan_version = lambda: (
            self.plans.current.plan.version, self.plans.current.sha256
        )
        self.admin = admin_app(
            token=lambda: self.admin_token,
            metrics=self.metrics,
            status=self,
            ready=lambda: self._ready,
            plan=lambda: self.plans.current,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            path: str = scope["path"]
            if path.startswith(PREFIX):
                await self.admin(scope, receive, send)
            else:
                await self.handler(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1003})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    log.exception("proxy failed to start")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def startup(self) -> None:
        await self.plans.start()
        if self.sink_factory is not None:
            self.mirror.sink = self.sink_factory(lambda: self.plans.current)
            if callable(getattr(self.mirror.sink, "collect", None)):
                self.metrics.register(cast(Collector, self.mirror.sink))
        self.mirror.start()
        if self.access_log is not None:
            self.access_log.start()
        self.started_at = time.time()
        self._ready = True
        loaded = self.plans.current
        log.info("proxy started", extra={"plan_version": loaded.plan.version,
                                         "plan_sha256": loaded.sha256})

    async def shutdown(self) -> None:
        self._ready = False
        await self.plans.stop()
        await self.mirror.stop()
        close = getattr(self.mirror.sink, "close", None)
        if callable(close):
            close()
        self.handler.close()
        if self.access_log is not None:
            await self.access_log.stop()

    def status(self) -> dict[str, Any]:
        loaded = self.plans.current
        m = self.metrics
        summary = plan_summary(loaded)
        breakers = self.handler.breaker_states()
        for svc in summary["services"].values():
            svc["breaker"] = breakers.get(svc["url"].rstrip("/"), "closed")
        watcher = getattr(self.plans, "watcher", None)
        error = getattr(watcher, "last_error", None)
        summary["last_rejected_edit"] = str(error) if error is not None else None
        return {
            "plan": summary,
            "uptime_s": round(time.time() - self.started_at, 3) if self.started_at else 0,
            "breakers": breakers,
            "shadow_breakers": {str(up): b.state for up, b in self.mirror.breakers.items()},
            "counters": {
                "requests": sum(m.requests.values()),
                "by_status": _by_status(m.requests),
                "upstream_errors": {f"{t}:{k}": n for (t, k), n in m.upstream_errors.items()},
                "fallbacks": {f"{s}:{r}": n for (s, r), n in m.fallbacks.items()},
                "rejected": dict(m.rejected),
                "shadow": {f"{s}:{o}": n for (s, o), n in m.shadow.items()},
                "shadow_queue_depth": self.mirror.queue.qsize(),
                "reloads": dict(m.reloads),
                "forwarding_path": dict(m.paths),
            },
            "pools": {
                url: {"open": p.open_connections, "idle": p.idle_connections,
                      "opened": p.stats.opened, "reused": p.stats.reused,
                      "stale_retries": p.stats.stale_retries}
                for url, p in self.handler.pools.items()
            },
        }


def _by_status(requests: dict[tuple[str, str, int], int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for (_, _, status), n in requests.items():
        out[str(status)] = out.get(str(status), 0) + n
    return out


def create_app(
    plan_path: str | os.PathLike[str],
    *,
    sink_factory: SinkFactory | None = None,
    admin_token: str | None = None,
    access_log: bool = True,
    fast_path: bool = True,
) -> ProxyApp:
    """The proxy serving ``plan_path``, reloading it when the file changes (raises
    PlanError if the initial plan is invalid)."""
    metrics = ProxyMetrics()
    record_stage_changes = reload_recorder(snapshot=lambda: baselines(metrics.render()))

    def reloaded(old: LoadedPlan, new: LoadedPlan) -> None:
        metrics.reloads["ok"] += 1
        record_stage_changes(old, new)  # hand edits of stages go to the audit history

    def rejected(error: PlanError) -> None:
        metrics.reloads["rejected"] += 1

    watcher = PlanWatcher(plan_path, on_reload=reloaded, on_reject=rejected)
    return ProxyApp(
        WatchedPlan(watcher),
        sink_factory=sink_factory,
        admin_token=admin_token,
        access_log=access_log,
        metrics=metrics,
        fast_path=fast_path,
    )


DEFAULT_SINK = "strangler_proxy.shadow.sink:engine_from_plan"


def app_from_env() -> ProxyApp:
    """uvicorn factory: ``STRANGLE_PLAN``, ``STRANGLER_ADMIN_TOKEN``,
    ``STRANGLER_ACCESS_LOG`` (``0`` turns it off), ``STRANGLER_SINK`` (``module:callable``
    taking the loaded plan and returning an ExchangeSink; default: the shadow comparison
    engine writing to the plan's ``shadow_store``; ``none`` discards exchanges),
    ``STRANGLER_FAST_PATH`` (``0`` sends every request through ASGI)."""
    jsonlog.configure("proxy", os.environ.get("STRANGLER_LOG_LEVEL", "INFO").upper())
    plan = Path(os.environ.get("STRANGLE_PLAN", "migration_plan.yaml"))
    sink_factory = None
    spec = os.environ.get("STRANGLER_SINK", DEFAULT_SINK)
    if spec.lower() not in ("", "none", "null"):
        import importlib

        module, _, attr = spec.partition(":")
        sink_factory = getattr(importlib.import_module(module), attr)
    return create_app(
        plan,
        sink_factory=sink_factory,
        admin_token=os.environ.get("STRANGLER_ADMIN_TOKEN") or None,
        access_log=os.environ.get("STRANGLER_ACCESS_LOG", "1") not in ("0", "false", "no"),
        fast_path=os.environ.get("STRANGLER_FAST_PATH", "1") not in ("0", "false", "no"),
    )
