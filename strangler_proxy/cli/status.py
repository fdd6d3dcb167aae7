"""``strangle status``: one table of every service, its figures and its gates.

Gate verdicts are for the service's next promotion. Figures cover the current stage
(shadow comparisons in shadow; requests the service served in canary and service).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from strangler_proxy.cli.common import echo_json, json_option, plan_option
from strangler_proxy.cli.gating import (
    Judgement,
    fmt_rate,
    judge,
    load,
    proxy_option,
    scrape,
    sources_for,
)
from strangler_proxy.gates import GATE_NAMES, Outcome
from strangler_proxy.promotion import LadderError, resolve_move, rungs_of

__all__ = ["status"]

_SHORT = {
    Outcome.PASS: "ok",
    Outcome.FAIL: "FAIL",
    Outcome.WAIT: "wait",
    Outcome.UNKNOWN: "?",
    Outcome.NOT_APPLICABLE: "-",
}
_GATE_HEADERS = {
    "requires": "REQ",
    "min_samples": "SAMPLES>=",
    "min_duration": "TIME>=",
    "mismatch_rate": "MISMATCH<=",
    "error_rate": "ERRORS<=",
    "p99_ratio": "P99<=",
    "cdc": "CDC",
}


@click.command()
@plan_option
@proxy_option
@json_option
@click.pass_context
def status(ctx: click.Context, plan_path: Path, proxy_url: str | None, as_json: bool) -> None:
    """One table of services: stage, figures and each gate's verdict."""
    loaded = load(plan_path)
    plan = loaded.plan.plan
    sources = sources_for(ctx, loaded, proxy_url)
    scraped = scrape(sources)
    rungs = rungs_of(plan)
    judgements = []
    for name, service in plan.services.items():
        try:
            target = resolve_move(name, rungs[name], service.canary.steps, up=True).target
        except LadderError:
            target = None  # at the top of the ladder: nothing to judge
        judgements.append(
            judge(
                plan,
                name,
                target=target,
                sources=sources,
                history=loaded.history,
                scraped=scraped,
            )
        )
    rows = [_row(plan.services[j.service].data.owner, j) for j in judgements]
    if as_json:
        echo_json(
            {
                "plan": str(plan_path),
                "plan_hash": loaded.plan.sha256,
                "history": str(loaded.history.path),
                "services": rows,
            }
        )
        return
    click.echo(f"plan {plan_path} sha256:{loaded.plan.sha256[:12]}")
    _table(rows)
    notes = [
        f"  {row['service']}: {v['gate']} {v['outcome']}: {v['reason']}"
        for row in rows
        for v in row["verdicts"]
        if v["outcome"] in ("fail", "wait", "unknown")
    ]
    if notes:
        click.echo("\nblocking the next promotion:")
        for note in notes:
            click.echo(note)


def _row(owner: str, j: Judgement) -> dict[str, Any]:
    f = j.collected.figures
    return {
        "service": j.service,
        "stage": j.rung.stage,
        "canary_percent": j.rung.percent,
        "data_owner": owner,
        "next": None if j.target is None else str(j.target),
        "samples": f.samples,
        "mismatch_rate": f.mismatch_rate,
        "error_rate": f.error_rate,
        "p99_s": f.p99_s,
        "monolith_p99_s": f.monolith_p99_s,
        "p99_ratio": f.p99_ratio,
        "cdc_lag_s": None if f.cdc is None else f.cdc.lag_s,
        "cdc_snapshot_complete": None if f.cdc is None else f.cdc.snapshot_complete,
        "window": j.collected.window,
        "since": None if j.last_change is None or j.last_change.to != j.rung else j.last_change.ts,
        "ready": bool(j.verdicts) and not any(v.blocking for v in j.verdicts),
        "verdicts": [v.to_json() for v in j.verdicts],
        "unknown": dict(f.unknown),
    }


def _table(rows: list[dict[str, Any]]) -> None:
    headers = [
        "SERVICE",
        "STAGE",
        "CANARY",
        "OWNER",
        "SAMPLES",
        "MISMATCH",
        "ERRORS",
        "P99/MONO",
        "CDC LAG",
        "NEXT",
    ]
    headers += [_GATE_HEADERS[g] for g in GATE_NAMES]
    table = [headers]
    for row in rows:
        by_gate = {v["gate"]: v for v in row["verdicts"]}
        cells = [
            row["service"],
            row["stage"],
            "-" if row["canary_percent"] is None else f"{row['canary_percent']:g}%",
            row["data_owner"],
            "-" if row["samples"] is None else str(row["samples"]),
            fmt_rate(row["mismatch_rate"]),
            fmt_rate(row["error_rate"]),
            "-" if row["p99_ratio"] is None else f"{row['p99_ratio']:.2f}x",
            "-" if row["cdc_lag_s"] is None else f"{row['cdc_lag_s']:.1f}s",
            row["next"] or "(top)",
        ]
        for gate in GATE_NAMES:
            verdict = by_gate.get(gate)
            if verdict is None:
                cells.append("")
            elif verdict.get("needed"):
                cells.append(f"wait+{verdict['needed']}")
            else:
                cells.append(_SHORT[Outcome(verdict["outcome"])])
        table.append(cells)
    widths = [max(len(r[i]) for r in table) for i in range(len(headers))]
    for r in table:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
