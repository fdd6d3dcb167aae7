"""``strangle history [SERVICE]``: the audit trail of stage changes, oldest first."""

from __future__ import annotations

from pathlib import Path

import click

from strangler_proxy.audit import History, history_path
from strangler_proxy.cli.common import echo_json, json_option, plan_option
from strangler_proxy.plan.edit import EditError, PlanFile

__all__ = ["history"]


@click.command()
@click.argument("service", required=False)
@plan_option
@json_option
def history(service: str | None, plan_path: Path, as_json: bool) -> None:
    """Show who moved which service where, when and why."""
    data = None
    try:
        raw = PlanFile.read(plan_path).data()
        data = raw if isinstance(raw, dict) else None
    except (OSError, EditError):
        pass  # history is still readable when the plan is missing or broken
    store = History(history_path(plan_path, data))
    entries, problems = store.read(service)
    for problem in problems:
        click.echo(f"warning: {store.path}: {problem}", err=True)
    if as_json:
        echo_json({"history": str(store.path), "entries": [e.to_json() for e in entries]})
        return
    if not entries:
        what = f" for {service}" if service else ""
        click.echo(f"no stage changes recorded{what} in {store.path}")
        return
    table = [["TIME", "SERVICE", "FROM", "TO", "ACTION", "BY", "PLAN", "REASON"]]
    for e in entries:
        reason = e.reason or ""
        if e.forced:
            reason = f"FORCED: {reason}"
        table.append(
            [
                e.ts,
                e.service,
                "(new)" if e.from_ is None else str(e.from_),
                "(removed)" if e.to is None else str(e.to),
                e.action,
                e.actor,
                e.plan_hash[:12],
                reason,
            ]
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
