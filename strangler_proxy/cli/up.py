"""``strangle up``: the whole migration stack on embedded defaults, until Ctrl-C.

Prepares the databases (the monolith migrated, seeded once, SQLite capture installed;
the notifications service migrated), then starts — each a child process, in dependency
order, each waited for on its health endpoint — the embedded Kafka broker (when the plan
says ``kafka.bootstrap_servers: embedded``), the monolith on the plan's internal
``monolith.url``, the notifications service, the CDC runner, the service's sink, the
monolith's notification retry loop and the proxy on the public ``--port``; optionally a
traffic generator. Logs go to ``<var>/logs/<name>.log``. A live status view refreshes
every two seconds (JSON lines when stdout is not a terminal). A child that dies is
reported with the end of its log and never restarted; an essential one stops the stack.
Ctrl-C or SIGTERM stops everything in reverse order.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType
from typing import Any

import click

from strangler_proxy.cli.common import plan_option

SEED_SIZES = {"customers": 200, "products": 60, "orders": 500}
TOKEN_FILE = "admin-token"
STATUS_EVERY_S = 2.0
SYNC_TIMEOUT_S = 300.0
EXIT_COMPONENT_DIED = 1


class _Stop(Exception):
    pass


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signum)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def admin_token(var_dir: Path, env: Mapping[str, str]) -> tuple[str, str]:
    """($STRANGLER_ADMIN_TOKEN or the one kept in <var>/admin-token, where it came from);
    a new random token is written there (mode 0600) on first use."""
    if env.get("STRANGLER_ADMIN_TOKEN"):
        return env["STRANGLER_ADMIN_TOKEN"], "$STRANGLER_ADMIN_TOKEN"
    path = var_dir / TOKEN_FILE
    if path.exists() and path.read_text().strip():
        return path.read_text().strip(), str(path)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token, str(path)


def _say(message: str) -> None:
    click.echo(f"up: {message}", err=True)


def _setup(argv: list[str], env: Mapping[str, str], log: Path, what: str) -> None:
    with log.open("ab") as out:
        out.write(f"--- strangle up: {' '.join(argv)}\n".encode())
        out.flush()
        done = subprocess.run(argv, env=dict(env), stdout=out, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, start_new_session=True, check=False)
    if done.returncode:
        from strangler_proxy.supervisor import log_tail

        raise click.ClickException(f"{what} failed (exit {done.returncode}); log {log}:\n"
                                   f"{log_tail(log)}")


def prepare(env: Mapping[str, str], log_dir: Path, plan_path: Path, *, seed: bool,
            fresh_broker: bool) -> None:
    """Migrate and seed the monolith, install SQLite capture (on PostgreSQL: check the
    server can do logical replication), migrate the service; with a new (memory-only)
    broker, make the CDC runner snapshot again."""
    from strangler_proxy.stack import MONOLITH, NOTIFICATIONS
    from strangler_proxy.stack_postgres import check_cdc_source, is_postgres

    log = log_dir / "setup.log"
    sqlite = env.get("DATABASE_URL", "").startswith("sqlite")
    if is_postgres(env.get("DATABASE_URL", "")):
        problems = check_cdc_source(env["DATABASE_URL"])
        if problems:
            raise click.ClickException(
                "the monolith's PostgreSQL ($DATABASE_URL) cannot feed change data capture: "
                + "; ".join(problems))
    _say("migrating the monolith")
    _setup([*MONOLITH, "migrate", "-v", "0"], env, log, "monolith migrate")
    if seed:
        sizes = [f"--{name}={value}" for name, value in SEED_SIZES.items()]
        _setup([*MONOLITH, "seed", "--if-empty", "--no-migrate", *sizes], env, log,
               "monolith seed")
    if sqlite:
        _setup([*MONOLITH, "manage", "capture", "install", "--plan", str(plan_path)], env, log,
               "installing SQLite change capture")
    _say("migrating the notifications service")
    _setup([*NOTIFICATIONS, "migrate"], env, log, "notifications migrate")
    if fresh_broker and sqlite:
        from cdc.errors import CdcError
        from cdc.sources.sqlite.runner import reset_for_plan

        try:
            reset_for_plan(plan_path, env)
        except CdcError as exc:
            raise click.ClickException(f"cannot reset the CDC offset: {exc}") from exc


def service_tables(plan: Any, service: str) -> dict[str, str]:
    """``monolith table -> service table`` from ``services.<service>.data.tables``."""
    svc = plan.services.get(service)
    out: dict[str, str] = {}
    for source, spec in (svc.data.tables.items() if svc is not None else ()):
        model = spec.get("model") if isinstance(spec, Mapping) else spec
        out[str(source)] = str(model)
    return out


def initial_sync(plan: Any, env: Mapping[str, str], cdc_url: str | None,
                 alive: Callable[[], bool]) -> None:
    """Wait until the service has applied the CDC snapshot (see :mod:`stack_sync`)."""
    from strangler_proxy.dashboard import get_json
    from strangler_proxy.stack import SERVICE
    from strangler_proxy.stack_sync import (
        SyncProgress,
        SyncTimeout,
        both,
        counts_progress,
        position_progress,
        wait_in_sync,
    )

    tables = service_tables(plan, SERVICE)
    if not tables:
        return
    health = plan.services[SERVICE].upstream.url.rstrip("/") + "/healthz"

    def check() -> SyncProgress:
        relay = get_json(cdc_url + "/status") if cdc_url else None
        return both(position_progress(relay, get_json(health)), counts_progress(
            env["DATABASE_URL"], env["NOTIFICATIONS_DATABASE_URL"], tables))

    try:
        done = wait_in_sync(check, timeout_s=SYNC_TIMEOUT_S, alive=alive,
                            on_progress=lambda p: _say(f"initial sync: {p.detail}"))
    except SyncTimeout as exc:
        raise click.ClickException(str(exc)) from exc
    _say(f"the {SERVICE} service is in sync with the monolith ({done.detail})")


def _banner(proxy_url: str, token_from: str, var_dir: Path, plan_path: Path) -> None:
    token_hint = ("$STRANGLER_ADMIN_TOKEN" if token_from.startswith("$")
                  else f"$(cat {token_from})")
    _say(f"the shop is at {proxy_url}/shop/ (API under /api/) — through the strangler proxy")
    _say(f"plan {plan_path}; logs in {var_dir / 'logs'}/; Ctrl-C stops everything")
    _say(f"admin token: {token_from}")
    _say(f"for the CLI: export STRANGLER_PROXY_URL={proxy_url} "
         f"STRANGLER_ADMIN_TOKEN={token_hint}")


@click.command()
@plan_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address the proxy listens on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535),
              help="The proxy's (public) port; the monolith stays on the plan's monolith.url.")
@click.option("--var-dir", type=click.Path(path_type=Path, file_okay=False), default="var",
              show_default=True, help="Databases, logs, the admin token, traffic stats.")
@click.option("--seed/--no-seed", default=True, show_default=True,
              help="Seed a small demo shop when the monolith's database is empty.")
@click.option("--traffic/--no-traffic", default=True, show_default=True,
              help="Generate shop traffic through the proxy.")
@click.option("--traffic-workers", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option("--traffic-rate", default=5.0, show_default=True, type=click.FloatRange(0.1),
              help="Requests per second per traffic worker.")
@click.option("--status-interval", default=STATUS_EVERY_S, show_default=True,
              type=click.FloatRange(0.2), help="Seconds between status updates.")
def up(plan_path: Path, host: str, port: int, var_dir: Path, seed: bool, traffic: bool,
       traffic_workers: int, traffic_rate: float, status_interval: float) -> None:
    """Run the whole migration stack for PLAN until Ctrl-C; the proxy serves HOST:PORT."""
    from strangler_proxy.plan.errors import PlanError
    from strangler_proxy.plan.io import load_plan
    from strangler_proxy.stack import (
        StackError,
        StackSettings,
        cdc_http_port,
        components,
        embedded_kafka,
        stack_env,
    )

    try:
        plan = load_plan(plan_path).plan
    except (PlanError, OSError) as exc:
        click.echo(f"Error: invalid plan: {exc}", err=True)
        sys.exit(2)
    var_dir.mkdir(parents=True, exist_ok=True)
    log_dir = var_dir / "logs"
    log_dir.mkdir(exist_ok=True)
    token, token_from = admin_token(var_dir, os.environ)
    fresh_broker = embedded_kafka(plan, os.environ)
    broker_port = free_port() if fresh_broker else None
    bootstrap = (f"127.0.0.1:{broker_port}" if broker_port else
                 os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
                 or str(plan.kafka.get("bootstrap_servers")))
    settings = StackSettings(
        var_dir=var_dir, plan_path=Path(plan_path), host=host, port=port, bootstrap=bootstrap,
        sink_port=free_port(), back_capture_port=free_port(), back_sink_port=free_port(),
        broker_port=broker_port, traffic=traffic,
        traffic_workers=traffic_workers, traffic_rate=traffic_rate, fresh_broker=fresh_broker)
    env = stack_env(os.environ, settings, token)
    try:
        stack = components(plan, settings, env)
    except StackError as exc:
        raise click.ClickException(str(exc)) from exc

    from strangler_proxy.dashboard import Dashboard, Probe, render_table
    from strangler_proxy.supervisor import ComponentFailed, Supervisor, log_tail

    supervisor = Supervisor(log_dir, env)
    proxy_url = f"http://127.0.0.1:{port}"
    cdc_port = cdc_http_port(plan)
    dashboard = Dashboard(Probe(
        plan_path=Path(plan_path), proxy_url=proxy_url,
        cdc_url=f"http://127.0.0.1:{cdc_port}" if cdc_port else None,
        sink_url=f"http://127.0.0.1:{settings.sink_port}",
        traffic_stats=(var_dir / "traffic.json") if traffic else None,
        **({"back_capture_url": f"http://127.0.0.1:{settings.back_capture_port}",
            "back_sink_url": f"http://127.0.0.1:{settings.back_sink_port}"}
           if any(c.name == "sink-back" for c in stack) else {})))
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    failed: str | None = None
    try:
        prepare(env, log_dir, Path(plan_path), seed=seed, fresh_broker=fresh_broker)
        for component in stack:
            running = supervisor.start(component)
            took = supervisor.wait_ready(running)
            _say(f"{component.name} ready in {took:.1f} s (pid {running.process.pid})")
            if component.name == "sink":  # open the proxy only once the service has the data
                initial_sync(plan, env, dashboard.probe.cdc_url,
                             lambda: all(r.alive for r in supervisor.running))
        _banner(f"http://{host}:{port}", token_from, var_dir, Path(plan_path))
        tty = sys.stdout.isatty()
        footer = [f"shop: http://{host}:{port}/shop/   logs: {log_dir}/   admin token: "
                  f"{token_from}", f"CLI: export STRANGLER_PROXY_URL=http://{host}:{port} "
                  f"STRANGLER_ADMIN_TOKEN=$(cat {token_from})"
                  if not token_from.startswith("$") else ""]
        while failed is None:
            for exited in supervisor.dead():
                footer.append(click.style(f"COMPONENT DOWN: {exited.describe()}", fg="red"))
                click.secho(f"up: COMPONENT DOWN: {exited.describe()}", err=True, fg="red",
                            bold=True)
                tail = log_tail(exited.log_path)
                if tail:
                    click.echo(tail, err=True)
                if exited.essential:
                    failed = exited.describe()
            snap = dashboard.snapshot({r.component.name: (r.process.pid, r.alive)
                                       for r in supervisor.running})
            if tty:
                click.echo("\x1b[H\x1b[2J" + render_table(
                    snap, title=f"strangle up — proxy {proxy_url} (Ctrl-C stops)")
                    + "\n\n" + "\n".join(line for line in footer if line))
            else:
                click.echo(json.dumps(snap, sort_keys=True))
            if failed is None:
                time.sleep(status_interval)
    except ComponentFailed as exc:
        failed = str(exc)
    except (KeyboardInterrupt, _Stop):
        _say("stopping")
    finally:
        # a second Ctrl-C or TERM must not cut the orderly stop short
        previous_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            supervisor.stop_all(on_stop=lambda name: _say(f"stopping {name}"))
        finally:
            signal.signal(signal.SIGTERM, previous)
            signal.signal(signal.SIGINT, previous_int)
    if failed is not None:
        click.secho(f"Error: {failed}; the stack was stopped", err=True, fg="red")
        sys.exit(EXIT_COMPONENT_DIED)
    _say("stopped")
