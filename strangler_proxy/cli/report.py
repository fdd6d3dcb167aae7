"""``strangle report SERVICE`` — the shadow comparison report, from the plan's store."""

from __future__ import annotations

import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import click

from strangler_proxy.cli.common import plan_option

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str, now: float) -> float:
    """``30m``, ``2h``, ``7d`` back from now, or an ISO-8601 time (UTC if no zone)."""
    m = _DURATION.match(text.strip())
    if m:
        return now - float(m[1]) * _UNIT[m[2]]
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"--since {text!r}: expected a duration like 30m, 2h, 7d or an ISO time"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


@click.command()
@click.argument("service")
@plan_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "md", "json", "html"]),
    default="text",
    show_default=True,
    help="Terminal summary, Markdown for a pull request, JSON for scripts, or one HTML file.",
)
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the report to FILE instead of standard output.",
)
@click.option("--since", help="Only comparisons since: a duration (30m, 2h, 7d) or ISO time.")
def report(
    service: str,
    plan_path: Path,
    fmt: str,
    as_json: bool,
    output: Path | None,
    since: str | None,
) -> None:
    """Shadow comparison report for SERVICE, read from the store the plan names."""
    from strangler_proxy.plan.errors import PlanError
    from strangler_proxy.plan.io import load_plan
    from strangler_proxy.shadow.render import render
    from strangler_proxy.shadow.report import report_from_store
    from strangler_proxy.shadow.sink import service_gates, service_rules, store_settings
    from strangler_proxy.shadow.store import ShadowStore, StoreError

    if as_json:
        fmt = "json"
    now = time.time()
    try:
        since_ts = parse_since(since, now) if since else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    try:
        loaded = load_plan(plan_path)
    except PlanError as exc:
        click.echo(f"error: invalid plan: {exc}", err=True)
        sys.exit(2)
    svc = loaded.plan.services.get(service)
    if svc is None:
        known = ", ".join(sorted(loaded.plan.services)) or "none"
        click.echo(f"error: no service {service!r} in {plan_path} (services: {known})", err=True)
        sys.exit(2)
    try:
        rules = service_rules(svc)
    except ValueError as exc:
        click.echo(f"error: {service}: {exc}", err=True)
        sys.exit(2)
    try:
        url, _, _ = store_settings(loaded.plan, loaded.path)
        store = ShadowStore(url)
        try:
            result = report_from_store(
                store, service, now=now, rules=rules, gates=service_gates(svc), since=since_ts
            )
        finally:
            store.close()
    except StoreError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    text = render(result, fmt)
    if output is None:
        click.echo(text, nl=False)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    click.echo(f"wrote {fmt} report for {service} to {output}", err=True)
