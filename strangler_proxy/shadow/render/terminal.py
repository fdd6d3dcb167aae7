"""A terminal summary: one block per endpoint, the top differing fields, the verdict."""

from __future__ import annotations

from strangler_proxy.shadow.report import FLAGGED, IGNORED, EndpointReport, Report

TOP_FIELDS = 5


def pct(rate: float) -> str:
    return f"{rate * 100:.2f}%"


def render_text(report: Report) -> str:
    g = report.gates
    lines = [
        f"Shadow report for {report.service}: {report.verdict.upper()}",
        f"  samples {report.samples}  mismatch {pct(report.mismatch_rate)} after noise "
        f"({pct(report.raw_mismatch_rate)} raw)  errors {pct(report.error_rate)}",
        f"  gates: >= {g.min_samples} samples, mismatch <= {pct(g.max_mismatch_rate)}, "
        f"errors <= {pct(g.max_error_rate)}",
    ]
    if report.monolith_errors:
        lines.append(f"  monolith failed to answer {report.monolith_errors} time(s) (not counted)")
    if not report.endpoints:
        lines.append("  no comparisons recorded yet")
    for e in report.endpoints:
        lines.append("")
        lines.extend(_endpoint(e))
    return "\n".join(lines) + "\n"


def _endpoint(e: EndpointReport) -> list[str]:
    out = [
        f"{e.endpoint}  [{e.verdict}]",
        f"  samples {e.samples}  mismatch {pct(e.mismatch_rate)} "
        f"(raw {pct(e.raw_mismatch_rate)})  errors {e.errors}  lag {e.lag}  "
        f"noise samples {e.noise_samples}",
    ]
    flagged = [f for f in e.fields if f.status == FLAGGED]
    if flagged:
        out.append("  flagged fields:")
        for f in flagged[:TOP_FIELDS]:
            out.append(f"    {f.path:<40} {f.kind:<14} {f.raw:>6}  {pct(f.raw_rate)}")
        if len(flagged) > TOP_FIELDS:
            out.append(f"    … {len(flagged) - TOP_FIELDS} more")
    if e.pending_paths:
        out.append(
            f"  pending (only {e.noise_samples} noise samples yet): {', '.join(e.pending_paths)}"
        )
    noise = e.noise_paths
    if noise:
        out.append(f"  noise (cancelled): {', '.join(noise[:TOP_FIELDS])}"
                   + (" …" if len(noise) > TOP_FIELDS else ""))
    ignored = [f.path for f in e.fields if f.status == IGNORED]
    if ignored:
        out.append(f"  ignored by rule: {', '.join(sorted(set(ignored)))}")
    if not e.fields:
        out.append("  no differences")
    return out
