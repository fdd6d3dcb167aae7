"""``strangle promote`` and ``strangle rollback``: move a service along its ladder.

Promote is gated (see :mod:`strangler_proxy.gates`); ``--force --reason`` overrides and
the reason is recorded. Rollback is never gated. Both write the plan with
:mod:`strangler_proxy.plan.edit` (nothing but the changed values move; refused if the
file changed meanwhile) and append to the audit history; a running proxy reloads the
plan by itself.

Exit codes: 0 done (or a dry run that would succeed), 1 refused by a gate, 2 bad input
or invalid plan, 3 the plan file changed concurrently.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import click

from strangler_proxy.audit import Entry, current_actor
from strangler_proxy.cli.common import echo_json, json_option, plan_option
from strangler_proxy.cli.gating import (
    ConcurrentEdit,
    Failure,
    Judgement,
    Loaded,
    Refused,
    entry_figures,
    fmt_verdict,
    judge,
    load,
    proxy_option,
    scrape,
    sources_for,
)
from strangler_proxy.gates import Rung, blocking
from strangler_proxy.plan.edit import EditError, PlanChanged, content_hash, set_values
from strangler_proxy.plan.errors import PlanError
from strangler_proxy.plan.io import parse_plan_bytes
from strangler_proxy.promotion import LadderError, Move, plan_edits, resolve_move, rungs_of

__all__ = ["promote", "rollback"]


@click.command()
@click.argument("service")
@click.option("--to", "to", metavar="STAGE", help="Target rung: shadow, canary, canary:N, ...")
@click.option("--dry-run", is_flag=True, help="Print the plan diff and verdicts; write nothing.")
@click.option("--force", is_flag=True, help="Promote although a gate blocks (needs --reason).")
@click.option("--reason", help="Why; recorded in the history (required with --force).")
@plan_option
@proxy_option
@json_option
@click.pass_context
def promote(
    ctx: click.Context,
    service: str,
    to: str | None,
    dry_run: bool,
    force: bool,
    reason: str | None,
    plan_path: Path,
    proxy_url: str | None,
    as_json: bool,
) -> None:
    """Move SERVICE one step up its ladder, if its gates pass."""
    if force and not (reason and reason.strip()):
        raise click.UsageError("--force needs --reason TEXT saying why the gates are overridden")
    _change(
        ctx,
        service,
        to,
        up=True,
        dry_run=dry_run,
        force=force,
        reason=reason,
        plan_path=plan_path,
        proxy_url=proxy_url,
        as_json=as_json,
    )


@click.command()
@click.argument("service")
@click.option("--to", "to", metavar="STAGE", help="Target rung: monolith, shadow, canary:N, ...")
@click.option("--dry-run", is_flag=True, help="Print the plan diff; write nothing.")
@click.option("--reason", help="Why; recorded in the history.")
@plan_option
@proxy_option
@json_option
@click.pass_context
def rollback(
    ctx: click.Context,
    service: str,
    to: str | None,
    dry_run: bool,
    reason: str | None,
    plan_path: Path,
    proxy_url: str | None,
    as_json: bool,
) -> None:
    """Move SERVICE one step back down its ladder (never gated)."""
    _change(
        ctx,
        service,
        to,
        up=False,
        dry_run=dry_run,
        force=False,
        reason=reason,
        plan_path=plan_path,
        proxy_url=proxy_url,
        as_json=as_json,
    )


def _change(
    ctx: click.Context,
    service: str,
    to: str | None,
    *,
    up: bool,
    dry_run: bool,
    force: bool,
    reason: str | None,
    plan_path: Path,
    proxy_url: str | None,
    as_json: bool,
) -> None:
    loaded = load(plan_path)
    plan = loaded.plan.plan
    if service not in plan.services:
        known = ", ".join(sorted(plan.services)) or "none"
        raise Failure(f"no service {service!r} in {plan_path} (services: {known})")
    current = rungs_of(plan)[service]
    try:
        move = resolve_move(service, current, plan.services[service].canary.steps, up=up, to=to)
    except LadderError as exc:
        raise Failure(str(exc)) from None
    new_text = _edited(loaded, move)
    sources = sources_for(ctx, loaded, proxy_url)
    judged = judge(
        plan,
        service,
        target=move.target,
        sources=sources,
        history=loaded.history,
        scraped=scrape(sources),
    )
    blockers = blocking(judged.verdicts)
    refused = bool(blockers) and not force
    diff = _diff(loaded.file.path, loaded.file.text, new_text)
    result: dict[str, Any] = {
        "service": service,
        "action": "promote" if up else "rollback",
        "from": move.current.to_json(),
        "to": move.target.to_json(),
        "dry_run": dry_run,
        "refused": refused,
        "forced": force and bool(blockers),
        "reason": reason,
        "verdicts": [v.to_json() for v in judged.verdicts],
        "figures": judged.collected.figures.to_json(),
        "window": judged.collected.window,
        "diff": diff,
        "written": False,
        "plan_hash": None,
        "history": str(loaded.history.path),
        "warnings": _requires_warnings(loaded, move),
    }
    if not as_json:
        _print_header(move, judged, diff if dry_run else None)
    if refused:
        if as_json:
            echo_json(result)
        names = ", ".join(v.gate for v in blockers)
        raise Refused(
            f"refusing to promote {service} from {move.current} to {move.target}: "
            f"blocked by {names}. Nothing was written. "
            'Override with --force --reason "why" (recorded in the history).'
        )
    if dry_run:
        if as_json:
            echo_json(result)
        else:
            click.echo("dry run: nothing written")
        return
    entry = Entry(
        service=service,
        from_=move.current,
        to=move.target,
        action=result["action"],
        actor=current_actor(),
        plan_hash=content_hash(new_text.encode("utf-8")),
        reason=reason,
        forced=result["forced"],
        figures=entry_figures(judged.collected),
        verdicts=result["verdicts"],
    )
    history = loaded.history.path
    try:
        with loaded.history.locked() as handle:
            try:
                loaded.file.write(new_text)
            except PlanChanged as exc:
                raise ConcurrentEdit(str(exc)) from None
            except OSError as exc:
                raise Failure(f"cannot write {plan_path}: {exc}; nothing changed") from None
            try:
                loaded.history.append([entry], handle)
            except OSError as exc:
                click.echo(
                    f"warning: the plan was written but {history} could not be appended "
                    f"({exc}); a running proxy records the change as plan-edit",
                    err=True,
                )
    except OSError as exc:
        raise Failure(
            f"cannot open the history {history}: {exc}; nothing written "
            "(set $STRANGLE_HISTORY to a writable file)"
        ) from None
    result.update(written=True, plan_hash=entry.plan_hash)
    if as_json:
        echo_json(result)
        return
    click.echo(
        f"wrote {plan_path} (sha256 {entry.plan_hash[:12]}); "
        "a running proxy picks the change up by itself"
    )
    click.echo(f"recorded in {loaded.history.path}")
    for warning in result["warnings"]:
        click.echo(f"warning: {warning}", err=True)


def _edited(loaded: Loaded, move: Move) -> str:
    try:
        new_text = set_values(loaded.file.text, plan_edits(move))
        parse_plan_bytes(new_text.encode("utf-8"), loaded.file.path)
    except EditError as exc:
        raise Failure(f"cannot edit {loaded.file.path}: {exc}") from None
    except PlanError as exc:
        raise Failure(f"the edited plan would be invalid, nothing written:\n{exc}") from None
    return new_text


def _diff(path: Path, before: str, after: str) -> str:
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=f"a/{path.name}",
            tofile=f"b/{path.name}",
        )
    )


def _requires_warnings(loaded: Loaded, move: Move) -> list[str]:
    """Services left ahead of one they require (rollback is never blocked for this)."""
    if not move.is_rollback:
        return []
    rungs = rungs_of(loaded.plan.plan)
    warnings = []
    for name, other in loaded.plan.plan.services.items():
        if move.service in other.requires and rungs[name].rank > move.target.rank:
            warnings.append(
                f"{name} requires {move.service} and is now ahead of it ({name} at "
                f"{rungs[name]}); consider: strangle rollback {name} --to {_to_arg(move.target)}"
            )
    return warnings


def _to_arg(rung: Rung) -> str:
    return f"canary:{rung.percent:g}" if rung.stage == "canary" else rung.stage


def _print_header(move: Move, judged: Judgement, diff: str | None) -> None:
    verb = "rollback" if move.is_rollback else "promote"
    click.echo(f"{verb} {move.service}: {move.current} -> {move.target}")
    if not move.is_rollback:
        if move.current.stage in ("canary", "service"):
            click.echo(f"gates (proxy figures {judged.collected.window}):")
        else:
            click.echo("gates:")
        for verdict in judged.verdicts:
            mark = "x" if verdict.blocking else ("+" if verdict.outcome == "pass" else " ")
            click.echo(f"  {mark} {fmt_verdict(verdict)}")
    if diff is not None:
        click.echo(diff, nl=False)
