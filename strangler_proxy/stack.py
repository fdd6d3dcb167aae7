"""What ``strangle up`` runs for a plan: components, commands, ports, readiness (pure).

``components(plan, settings)`` lists the long-running processes in start order —
stop them in reverse:

========== =====================================================================
broker     the embedded Kafka-protocol broker (only for ``bootstrap_servers: embedded``)
monolith   the Django shop on the plan's ``monolith.url`` (an internal port)
notifications  the extracted service on ``services.notifications.url``
cdc        ``strangle cdc run``: the monolith's changes as Debezium events on Kafka
sink       the service's CDC sink: those events into the service's database
sink-back  the way back (``data.owned``): the service's changes into the monolith's tables
capture-back  the service database's own capture: its changes to owned tables on Kafka
retry      the monolith's retry loop for notifications the service did not confirm
proxy      ``strangle proxy`` on the public port, in front of everything
traffic    optional generated shop traffic through the proxy
========== =====================================================================

:mod:`strangler_proxy.supervisor` starts and watches them; :mod:`strangler_proxy.cli.up`
prepares databases first.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from strangler_proxy.plan.model import Plan

__all__ = [
    "SERVICE",
    "Component",
    "StackError",
    "StackSettings",
    "cdc_http_port",
    "components",
    "embedded_kafka",
    "port_of",
    "stack_env",
]

SERVICE = "notifications"
STRANGLE = (sys.executable, "-c", "from strangler_proxy.cli import main; main()")
MONOLITH = (sys.executable, "-m", "monolith")
NOTIFICATIONS = (sys.executable, "-m", "extracted.notifications")
DEFAULT_CDC_HTTP_PORT = 9465
SHADOW_SINK = "strangler_proxy.shadow.sink:engine_from_plan"


class StackError(ValueError):
    """The plan and the options cannot make a stack (e.g. two components on one port)."""


@dataclass(frozen=True)
class Component:
    """``Component("monolith", argv, health_url="http://127.0.0.1:8001/healthz")``.

    Ready when ``health_url`` answers 200 (or ``tcp_port`` accepts a connection, or at
    once when neither is set). ``essential``: when it dies the stack stops."""

    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    health_url: str | None = None
    tcp_port: int | None = None
    essential: bool = True


@dataclass(frozen=True)
class StackSettings:
    """``StackSettings(var_dir=Path("var"), plan_path=Path("migration_plan.yaml"),
    host="127.0.0.1", port=8000, bootstrap="127.0.0.1:9092", sink_port=9310)``"""

    var_dir: Path
    plan_path: Path
    host: str
    port: int
    bootstrap: str
    sink_port: int
    broker_port: int | None = None  # set: run the embedded broker on it
    traffic: bool = False
    traffic_workers: int = 4
    traffic_rate: float = 5.0
    fresh_broker: bool = False  # a new memory-only broker: the sink re-reads topics
    back_capture_port: int | None = None  # set (with back_sink_port): two-way sync
    back_sink_port: int | None = None


def port_of(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


def embedded_kafka(plan: Plan, env: Mapping[str, str]) -> bool:
    """The plan asks for the embedded broker and the environment names no other."""
    return not env.get("KAFKA_BOOTSTRAP_SERVERS") and str(
        plan.kafka.get("bootstrap_servers", "embedded")) == "embedded"


def cdc_http_port(plan: Plan) -> int:
    http = plan.cdc.get("http") if isinstance(plan.cdc, Mapping) else None
    port = http.get("port", DEFAULT_CDC_HTTP_PORT) if isinstance(http, Mapping) else None
    return int(port) if isinstance(port, int) else DEFAULT_CDC_HTTP_PORT


def stack_env(base: Mapping[str, str], settings: StackSettings, token: str) -> dict[str, str]:
    """The environment every child gets; what the user set wins where it may."""
    var = settings.var_dir.resolve()
    env = dict(base)
    env.setdefault("DATABASE_URL", f"sqlite:///{var / 'monolith.sqlite3'}")
    env.setdefault("NOTIFICATIONS_DATABASE_URL", f"sqlite:///{var / 'notifications.sqlite3'}")
    env.setdefault("STRANGLER_SINK", SHADOW_SINK)
    env.update({
        "NOTIFICATIONS_BACKEND": "outbox",
        "STRANGLE_PLAN": str(settings.plan_path.resolve()),
        "KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap,
        "STRANGLER_ADMIN_TOKEN": token,
        "PYTHONUNBUFFERED": "1",
    })
    return env


def _check_ports(named: Mapping[str, int]) -> None:
    seen: dict[int, str] = {}
    for name, port in named.items():
        if port in seen:
            raise StackError(
                f"{name} and {seen[port]} would both listen on port {port}; give them "
                "different ports (proxy: --port, monolith: monolith.url, service: "
                "services.*.url, CDC runner: cdc.http.port in the plan)")
        seen[port] = name


def _way_back(owned: tuple[str, ...], settings: StackSettings, env: Mapping[str, str],
              plan_arg: str) -> list[Component]:
    """Two-way sync for the tables the service owns: its database's capture (SQLite
    triggers or pgoutput) and the sink into the monolith (see docs/notifications.md, "Data
    ownership"). Sink first, so it stops after the capture."""
    if not owned or not settings.back_capture_port or not settings.back_sink_port:
        return []
    schema = "main" if env.get("NOTIFICATIONS_DATABASE_URL", "").startswith("sqlite") else "public"
    capture_port, sink_port = settings.back_capture_port, settings.back_sink_port
    return [
        Component("sink-back", (
            sys.executable, "-m", "cdc.sinks.reverse", "--plan", plan_arg, "--service", SERVICE,
            "--bootstrap-servers", settings.bootstrap, "--schema", schema,
            "--metrics-port", str(sink_port),
            *(["--from-beginning"] if settings.fresh_broker else [])),
            health_url=f"http://127.0.0.1:{sink_port}/healthz"),
        Component("capture-back", (
            *NOTIFICATIONS, "capture", "--plan", plan_arg, "--bootstrap-servers",
            settings.bootstrap, "--http-port", str(capture_port), "--state-dir",
            str((settings.var_dir / f"cdc-{SERVICE}").resolve())),
            health_url=f"http://127.0.0.1:{capture_port}/healthz"),
    ]


def components(plan: Plan, settings: StackSettings, env: Mapping[str, str]) -> list[Component]:
    """The long-running processes, in start order (stop in reverse)."""
    monolith_url = plan.monolith.url.rstrip("/")
    service = plan.services.get(SERVICE)
    if service is None:
        raise StackError(f"the plan has no services.{SERVICE}; strangle up runs that service")
    service_url = service.upstream.url.rstrip("/")
    cdc_port = cdc_http_port(plan)
    _check_ports({"the proxy": settings.port, "the monolith": port_of(monolith_url),
                  f"the {SERVICE} service": port_of(service_url),
                  "the CDC runner": cdc_port, "the sink": settings.sink_port,
                  **({"the broker": settings.broker_port} if settings.broker_port else {}),
                  **({"the way-back capture": settings.back_capture_port}
                     if settings.back_capture_port else {}),
                  **({"the way-back sink": settings.back_sink_port}
                     if settings.back_sink_port else {})})
    plan_arg = str(settings.plan_path.resolve())
    prefix = str(plan.kafka.get("topic_prefix") or "shop")
    schema = "main" if env.get("DATABASE_URL", "").startswith("sqlite") else "public"
    out: list[Component] = []
    if settings.broker_port:
        from cdc.embedded_broker import tansu_binary

        url = f"tcp://127.0.0.1:{settings.broker_port}"
        out.append(Component("broker", (str(tansu_binary()), "broker", "--listener-url", url,
                                        "--advertised-listener-url", url, "--cluster-id",
                                        "strangler-up"),
                             tcp_port=settings.broker_port))
    monolith_env = {"NOTIFICATIONS_OUTBOX": str((settings.var_dir / "outbox.jsonl").resolve())}
    out += [
        Component("monolith", (*MONOLITH, "serve", "--no-migrate", "--host", "127.0.0.1",
                               "--port", str(port_of(monolith_url))),
                  env=monolith_env, health_url=f"{monolith_url}/healthz"),
        Component(SERVICE, (*NOTIFICATIONS, "serve", "--no-migrate", "--host", "127.0.0.1",
                            "--port", str(port_of(service_url))),
                  env={"NOTIFICATIONS_OUTBOX": str(
                      (settings.var_dir / "notifications-outbox.jsonl").resolve())},
                  health_url=f"{service_url}/healthz"),
        Component("cdc", (*STRANGLE, "cdc", "run", "--plan", plan_arg),
                  health_url=f"http://127.0.0.1:{cdc_port}/healthz" if cdc_port else None),
        Component("sink", (*NOTIFICATIONS, "sink", "--no-migrate", "--bootstrap-servers",
                           settings.bootstrap, "--topic-prefix", prefix, "--schema", schema,
                           "--plan", plan_arg, "--metrics-port", str(settings.sink_port),
                           *(["--from-beginning"] if settings.fresh_broker else [])),
                  health_url=f"http://127.0.0.1:{settings.sink_port}/healthz"),
        *_way_back(service.data.owned, settings, env, plan_arg),
        Component("retry", (*MONOLITH, "notifications-retry", "--loop", "5"), env=monolith_env),
        Component("proxy", (*STRANGLE, "proxy", "--plan", plan_arg, "--host", settings.host,
                            "--port", str(settings.port)),
                  health_url=f"http://127.0.0.1:{settings.port}/_strangler/ready"),
    ]
    if settings.traffic:
        out.append(Component("traffic", (
            sys.executable, "-m", "strangler_proxy.traffic",
            "--url", f"http://127.0.0.1:{settings.port}",
            "--workers", str(settings.traffic_workers), "--rate", str(settings.traffic_rate),
            "--stats", str((settings.var_dir / "traffic.json").resolve())), essential=False))
    return out
