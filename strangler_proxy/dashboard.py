"""``strangle up``'s live status: gather figures from the running stack (I/O, each
source failing alone into ``None``) and render them as a compact table or a JSON line
(pure).

The snapshot is a plain dict — exactly what the JSON line prints::

    {"ts": ..., "components": {"proxy": {"pid": 12, "up": true}, ...},
     "proxy": {"requests": 1200, "req_per_s": 41.5, "errors_5xx": 0},
     "service": {"name": "notifications", "stage": "canary", "percent": 10.0},
     "shadow": {"samples": 812, "mismatch_rate": 0.0, "error_rate": 0.0},
     "cdc": {"state": "streaming", "lag_s": 0.2, "sink_lag_s": 0.4, "applied": 5301},
     "traffic": {"requests": 3100, "failed": 0}}
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Dashboard", "Probe", "get_json", "render_table", "requests_total"]

_REQUESTS = re.compile(r'^strangler_requests_total\{([^}]*)\}\s+([0-9.eE+-]+)$', re.M)


def requests_total(metrics_text: str) -> tuple[float, float]:
    """(all requests, 5xx answers) from the proxy's Prometheus exposition (pure)."""
    total = errors = 0.0
    for labels, value in _REQUESTS.findall(metrics_text):
        total += float(value)
        if re.search(r'status="5\d\d"', labels):
            errors += float(value)
    return total, errors


def get_json(url: str, timeout: float = 1.0) -> Any:
    """The JSON body at ``url`` (also of an error answer), or None."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:  # e.g. a 503 health answer still has a body
        try:
            return json.loads(exc.read())
        except ValueError:
            return None
    except (OSError, ValueError):
        return None


def _get_text(url: str, timeout: float = 1.0) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return str(response.read().decode("utf-8", "replace"))
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class Probe:
    """Where the figures come from."""

    plan_path: Path
    proxy_url: str
    cdc_url: str | None
    sink_url: str
    traffic_stats: Path | None
    service: str = "notifications"
    back_capture_url: str | None = None  # the way back (data.owned), when it runs
    back_sink_url: str | None = None


@dataclass
class Dashboard:
    probe: Probe
    _last: tuple[float, float] | None = field(default=None, init=False)

    def snapshot(self, components: Mapping[str, tuple[int | None, bool]]) -> dict[str, Any]:
        """``components``: name -> (pid, up)."""
        now = time.time()
        return {
            "ts": round(now, 3),
            "components": {n: {"pid": pid, "up": up} for n, (pid, up) in components.items()},
            "proxy": self._proxy(now),
            "service": self._service(),
            "shadow": self._shadow(),
            "cdc": self._cdc(),
            "traffic": self._traffic(),
            **({"way_back": self._way_back()} if self.probe.back_sink_url else {}),
        }

    def _proxy(self, now: float) -> dict[str, Any] | None:
        text = _get_text(self.probe.proxy_url.rstrip("/") + "/_strangler/metrics")
        if text is None:
            return None
        total, errors = requests_total(text)
        rate = None
        if self._last is not None and now > self._last[0]:
            rate = round(max(0.0, total - self._last[1]) / (now - self._last[0]), 1)
        self._last = (now, total)
        return {"requests": int(total), "req_per_s": rate, "errors_5xx": int(errors)}

    def _plan(self) -> Any:
        from strangler_proxy.plan.errors import PlanError
        from strangler_proxy.plan.io import load_plan

        try:
            return load_plan(self.probe.plan_path).plan
        except (PlanError, OSError):
            return None

    def _service(self) -> dict[str, Any] | None:
        plan = self._plan()
        service = plan.services.get(self.probe.service) if plan is not None else None
        if service is None:
            return None
        return {"name": service.name, "stage": str(service.stage),
                "percent": service.canary.percent if str(service.stage) == "canary" else None}

    def _shadow(self) -> dict[str, Any] | None:
        from strangler_proxy.figures import SourceUnavailable, StoreShadowSource
        from strangler_proxy.shadow.sink import store_settings
        from strangler_proxy.shadow.store import StoreError

        plan = self._plan()
        service = plan.services.get(self.probe.service) if plan is not None else None
        if service is None:
            return None
        try:
            url, _, _ = store_settings(plan, self.probe.plan_path.resolve())
            figures = StoreShadowSource(url).summary(service, None)
        except (StoreError, SourceUnavailable, OSError):
            return None
        return {"samples": figures.samples, "mismatch_rate": round(figures.mismatch_rate, 5),
                "error_rate": round(figures.error_rate, 5)}

    def _cdc(self) -> dict[str, Any]:
        return _sync_figures(self.probe.cdc_url, self.probe.sink_url)

    def _way_back(self) -> dict[str, Any]:
        """The service → monolith sync: its capture's state and lag, the sink-back's."""
        return _sync_figures(self.probe.back_capture_url, str(self.probe.back_sink_url))

    def _traffic(self) -> dict[str, Any] | None:
        path = self.probe.traffic_stats
        if path is None or not path.exists():
            return None
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return {"requests": doc.get("requests"), "failed": doc.get("failed"),
                "refused_4xx": doc.get("refused")}


def _num(value: Any, fmt: str, missing: str = "-") -> str:
    return missing if value is None else format(value, fmt)


def _lines(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
            for r in rows]


def render_table(snap: Mapping[str, Any], *, title: str) -> str:
    """The terminal view of one snapshot (pure)."""
    comps = snap.get("components") or {}
    rows = [["COMPONENT", "PID", "STATE"]]
    for name, info in comps.items():
        rows.append([name, str(info.get("pid") or "-"), "up" if info.get("up") else "DOWN"])
    proxy = snap.get("proxy") or {}
    service = snap.get("service") or {}
    shadow = snap.get("shadow") or {}
    cdc = snap.get("cdc") or {}
    traffic = snap.get("traffic")
    stage = str(service.get("stage") or "?")
    if service.get("percent") is not None:
        stage += f" {service['percent']:g}%"
    mismatch = shadow.get("mismatch_rate")
    figures = [
        ["proxy", f"{_num(proxy.get('req_per_s'), '.1f')} req/s, "
                  f"{_num(proxy.get('requests'), 'd')} requests, "
                  f"{_num(proxy.get('errors_5xx'), 'd')} 5xx"],
        [str(service.get("name") or "service"), f"stage {stage}"],
        ["shadow", f"{_num(shadow.get('samples'), 'd')} samples, mismatch "
                   f"{_num(None if mismatch is None else mismatch * 100, '.2f')}%"],
        ["cdc", f"relay {cdc.get('state') or '?'}, lag {_num(cdc.get('lag_s'), '.1f')} s; "
                f"sink lag {_num(cdc.get('sink_lag_s'), '.1f')} s, "
                f"{_num(cdc.get('dead_letters'), 'd', '0')} dead letters"],
    ]
    back = snap.get("way_back")
    if back is not None:
        figures.append(["way back", f"capture {back.get('state') or '?'}, lag "
                                    f"{_num(back.get('lag_s'), '.1f')} s; sink-back lag "
                                    f"{_num(back.get('sink_lag_s'), '.1f')} s, "
                                    f"{_num(back.get('dead_letters'), 'd', '0')} dead letters"])
    if traffic is not None:
        figures.append(["traffic", f"{_num(traffic.get('requests'), 'd')} requests, "
                                   f"{_num(traffic.get('failed'), 'd')} failed"])
    stamp = time.strftime("%H:%M:%S", time.localtime(float(snap.get("ts") or 0)))
    return "\n".join([f"{title}   {stamp}", "", *_lines(rows), "", *_lines(figures)])


def _sync_figures(capture_url: str | None, sink_url: str) -> dict[str, Any]:
    """One direction of CDC: the capture's ``/status`` and the sink's ``/healthz``."""
    relay = get_json(capture_url + "/status") if capture_url else None
    sink = get_json(sink_url + "/healthz")
    out: dict[str, Any] = {"state": None, "lag_s": None, "sink_lag_s": None,
                           "applied": None, "dead_letters": None}
    if isinstance(relay, Mapping):
        out["state"] = relay.get("state")
        out["lag_s"] = relay.get("lag_seconds", relay.get("lag_s"))
    if isinstance(sink, Mapping):
        out["sink_lag_s"] = sink.get("lag_s")
        out["applied"] = sink.get("applied")
        out["dead_letters"] = sink.get("dead_lettered")
    return out
