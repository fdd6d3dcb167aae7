"""A Markdown summary to paste into a pull request."""

from __future__ import annotations

from strangler_proxy.shadow.render.terminal import pct
from strangler_proxy.shadow.report import FLAGGED, Report

_ICON = {"pass": "✅ pass", "fail": "❌ fail", "insufficient": "⏳ insufficient"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(report: Report) -> str:
    lines = [
        f"## Shadow report: `{report.service}` — {_ICON.get(report.verdict, report.verdict)}",
        "",
        f"**{report.samples}** samples · mismatch **{pct(report.mismatch_rate)}** after noise "
        f"({pct(report.raw_mismatch_rate)} raw) · errors {pct(report.error_rate)} · "
        f"gates: ≥{report.gates.min_samples} samples, "
        f"≤{pct(report.gates.max_mismatch_rate)} mismatch, "
        f"≤{pct(report.gates.max_error_rate)} errors",
        "",
        "| Endpoint | Samples | Mismatch (after noise) | Raw | Errors | Flagged fields | Verdict |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for e in report.endpoints:
        flagged = ", ".join(f"`{_cell(p)}`" for p in e.flagged) or "—"
        lines.append(
            f"| `{_cell(str(e.endpoint))}` | {e.samples} | {pct(e.mismatch_rate)} | "
            f"{pct(e.raw_mismatch_rate)} | {e.errors} | {flagged} | "
            f"{_ICON.get(e.verdict, e.verdict)} |"
        )
    for e in report.endpoints:
        if not e.fields:
            continue
        lines += ["", f"### `{_cell(str(e.endpoint))}`", ""]
        lines += [
            "| Field | Kind | Status | Count | Rate | Monolith noise |",
            "|---|---|---|---:|---:|---:|",
        ]
        for f in e.fields:
            status = f"**{f.status}**" if f.status == FLAGGED else f.status
            lines.append(
                f"| `{_cell(f.path)}` | {f.kind} | {status} | {f.raw} | {pct(f.raw_rate)} | "
                f"{pct(f.noise_rate)} |"
            )
    if not report.endpoints:
        lines += ["", "_No comparisons recorded yet._"]
    return "\n".join(lines) + "\n"
