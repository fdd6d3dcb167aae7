"""``strangle plan``: validate the plan, print its JSON Schema."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from strangler_proxy.cli.common import echo_json, json_option, plan_option
from strangler_proxy.plan.errors import PlanError
from strangler_proxy.plan.io import LoadedPlan, load_plan, parse_plan_bytes
from strangler_proxy.plan.schema import plan_schema_json
from strangler_proxy.plan.stages import current_step
from strangler_proxy.plandiff import diff_plans

__all__ = ["plan"]


@click.group()
def plan() -> None:
    """Validate, diff and describe the migration plan."""


@plan.command()
@plan_option
@json_option
@click.option("--strict", is_flag=True, help="Warnings fail too (exit 1), e.g. in CI.")
def validate(plan_path: Path, as_json: bool, strict: bool) -> None:
    """Check the plan; print OK with its hash and a summary, or every error (exit 1)."""
    try:
        loaded = load_plan(plan_path)
    except PlanError as exc:
        if as_json:
            echo_json({"ok": False, "path": str(plan_path), "errors": _findings(exc.findings)})
        else:
            click.echo(f"INVALID {plan_path}", err=True)
            for finding in exc.findings:
                click.echo(f"  error: {finding}", err=True)
        raise SystemExit(1) from None
    failed = strict and bool(loaded.plan.warnings)
    if as_json:
        echo_json(summary(loaded) | ({"ok": False} if failed else {}))
        if failed:
            raise SystemExit(1)
        return
    p = loaded.plan
    click.echo(
        f"OK {plan_path} sha256:{loaded.sha256} version {p.version}, "
        f"{len(p.services)} services, {len(p.routes)} routes"
    )
    click.echo(f"  monolith       {p.monolith.url}")
    for name, service in p.services.items():
        click.echo(
            f"  {name:<14} {current_step(service)!s:<12} {service.upstream.url}"
            f"  {len(service.routes)} routes"
        )
    for warning in p.warnings:
        click.echo(f"  warning: {warning}")
    if failed:
        click.echo(f"FAILED (--strict): {len(p.warnings)} warning(s)", err=True)
        raise SystemExit(1)


@plan.command()
@click.argument("old", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True))
@click.argument("new", required=False, type=click.Path(path_type=Path, dir_okay=False))
@plan_option
@json_option
def diff(old: Path, new: Path | None, plan_path: Path, as_json: bool) -> None:
    """What changes going from plan OLD to NEW (default: --plan), in plan terms.

    OLD may be - for stdin: ``git show HEAD~1:migration_plan.yaml | strangle plan diff -``.
    Exit 0 when equivalent, 1 when they differ, 2 when either is invalid.
    """
    before = _load_for_diff(old)
    after = _load_for_diff(new or plan_path)
    changes = diff_plans(before.plan, after.plan)
    if as_json:
        echo_json(
            {
                "old": {"path": str(old), "sha256": before.sha256},
                "new": {"path": str(new or plan_path), "sha256": after.sha256},
                "changes": [c.to_json() for c in changes],
            }
        )
    elif not changes:
        click.echo("no differences that affect routing, gates or data")
    else:
        for change in changes:
            click.echo(str(change))
    if changes:
        raise SystemExit(1)


def _load_for_diff(path: Path) -> LoadedPlan:
    try:
        if str(path) == "-":
            return parse_plan_bytes(sys.stdin.buffer.read(), "<stdin>")
        return load_plan(path)
    except PlanError as exc:
        click.echo(f"INVALID {path}", err=True)
        for finding in exc.findings:
            click.echo(f"  error: {finding}", err=True)
        raise SystemExit(2) from None


@plan.command()
def schema() -> None:
    """Print the plan's JSON Schema (for editors: yaml-language-server, IDEs)."""
    click.echo(plan_schema_json(), nl=False)


def summary(loaded: LoadedPlan) -> dict[str, Any]:
    p = loaded.plan
    return {
        "ok": True,
        "path": str(loaded.path),
        "sha256": loaded.sha256,
        "version": p.version,
        "monolith": p.monolith.url,
        "services": {
            name: {
                "stage": s.stage.value,
                "step": str(current_step(s)),
                "canary_percent": s.canary.percent,
                "urls": [u.url for u in s.upstreams],
                "routes": [
                    {"path": r.path_template, "methods": sorted(r.methods)} for r in s.routes
                ],
                "requires": list(s.requires),
            }
            for name, s in p.services.items()
        },
        "warnings": _findings(p.warnings),
    }


def _findings(findings: tuple[Any, ...]) -> list[dict[str, Any]]:
    return [f.as_dict() | {"text": str(f)} for f in findings]
