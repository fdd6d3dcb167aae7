"""``strangle proxy`` — run the routing proxy under uvicorn."""

from __future__ import annotations

import importlib.util
import os
import sys

import click

from strangler_proxy.cli.common import plan_option


@click.command()
@plan_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=int, help="Port to listen on.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Worker processes (each loads the plan and watches it).")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
def proxy(plan_path: os.PathLike[str], host: str, port: int, workers: int, log_level: str) -> None:
    """Run the routing proxy for PLAN on HOST:PORT.

    Environment: STRANGLER_ADMIN_TOKEN (Bearer token for /_strangler/status),
    STRANGLER_ACCESS_LOG=0 (no JSON access log), STRANGLER_SINK=module:factory
    (where shadow exchanges go), STRANGLER_FAST_PATH=0 (forward everything through the
    ASGI app instead of the protocol-level fast path).
    """
    import uvicorn

    from strangler_proxy import jsonlog
    from strangler_proxy.plan.errors import PlanError
    from strangler_proxy.plan.io import load_plan

    try:
        load_plan(plan_path)
    except PlanError as exc:
        click.echo(f"error: invalid plan: {exc}", err=True)
        sys.exit(2)
    try:  # the forwarding package reads its STRANGLER_* limits from the env on import
        from strangler_proxy.forwarding.server_protocol import ProxyHttpProtocol
    except ValueError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    jsonlog.configure("proxy", log_level.upper())
    os.environ["STRANGLE_PLAN"] = os.path.abspath(plan_path)
    os.environ["STRANGLER_LOG_LEVEL"] = log_level  # worker processes configure logging too
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    uvicorn.run(
        "strangler_proxy.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop=loop,
        http=ProxyHttpProtocol,
        lifespan="on",
        access_log=False,
        server_header=False,
        proxy_headers=False,  # the client address is the peer; X-Forwarded-For is appended to
        date_header=False,
        log_config=None,
        log_level=log_level,
        timeout_graceful_shutdown=10,
    )
