"""One self-contained HTML page: inline CSS, inline SVG chart, no external resources.

Sections: headline figures, mismatch rate over time (raw and after noise), the
endpoints table, then per endpoint the differing fields, each opening onto sample
exchanges shown side by side (monolith | candidate, or monolith | monolith again for
noise samples) with the differing lines marked.
"""

from __future__ import annotations

import difflib
import json
import time
from collections.abc import Callable
from html import escape
from pathlib import Path
from typing import Any

from strangler_proxy.shadow.records import NOISE, Sample
from strangler_proxy.shadow.render.terminal import pct
from strangler_proxy.shadow.report import FLAGGED, EndpointReport, FieldStat, Report, TimePoint

MAX_DIFF_LINES = 400
MAX_CHART_POINTS = 120
CONTEXT = 3

_CSS = Path(__file__).with_name("report.css").read_text(encoding="utf-8")

_JS = """
document.getElementById('quiet').addEventListener('change',function(e){
document.body.classList.toggle('hide-quiet',!e.target.checked);});
"""


def render_html(report: Report) -> str:
    """The whole report as one HTML document (what ``/_strangler/report/{service}`` serves)."""
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width,initial-scale=1'>",
        f"<title>Shadow report · {escape(report.service)}</title>",
        f"<style>{_CSS}</style></head><body>",
        _headline(report),
        "<h2>Mismatch rate over time</h2>",
        chart_svg(report.timeline),
        "<h2>Endpoints</h2>",
        _endpoints_table(report),
    ]
    if report.endpoints:
        parts.append(
            "<label class='toggle'><input type='checkbox' id='quiet' checked> "
            "show noise and ignored fields</label>"
        )
    for i, e in enumerate(report.endpoints):
        parts.append(_endpoint_section(i, e))
    parts.append(f"<script>{_JS}</script>" if report.endpoints else "")
    parts.append("</body></html>\n")
    return "".join(parts)


def _headline(report: Report) -> str:
    g = report.gates
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(report.generated_at))
    figures = [
        ("samples", str(report.samples)),
        ("mismatch after noise", pct(report.mismatch_rate)),
        ("raw mismatch", pct(report.raw_mismatch_rate)),
        ("candidate errors", pct(report.error_rate)),
        ("endpoints", str(len(report.endpoints))),
    ]
    cells = "".join(
        f"<div class='figure'><b>{v}</b><span class='muted'>{k}</span></div>" for k, v in figures
    )
    return (
        f"<h1>Shadow report: {escape(report.service)} "
        f"<span class='badge {escape(report.verdict)}'>{escape(report.verdict)}</span></h1>"
        f"<div class='muted'>generated {when} · gates: ≥{g.min_samples} samples, "
        f"mismatch ≤{pct(g.max_mismatch_rate)}, errors ≤{pct(g.max_error_rate)}</div>"
        f"<div class='figures'>{cells}</div>"
    )


def chart_svg(points: tuple[TimePoint, ...], width: int = 900, height: int = 220) -> str:
    """Raw and noise-adjusted mismatch rate per time bucket, as inline SVG."""
    if not points:
        return "<p class='muted'>No comparisons yet.</p>"
    points = downsample(points)
    left, right, top, bottom = 48, 12, 12, 28
    w, h = width - left - right, height - top - bottom
    peak = max(max(p.raw_rate for p in points), 0.05)
    t0, t1 = points[0].bucket, points[-1].bucket
    span = max(t1 - t0, 1)

    def x(p: TimePoint) -> float:
        return left + (w * (p.bucket - t0) / span if len(points) > 1 else w / 2)

    def y(rate: float) -> float:
        return top + h - h * rate / peak

    out = [
        f"<svg role='img' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}' aria-label='mismatch rate over time'>"
    ]
    for i in range(5):
        rate = peak * i / 4
        yy = y(rate)
        out.append(
            f"<line x1='{left}' x2='{left + w}' y1='{yy:.1f}' y2='{yy:.1f}' stroke='#eef0f3'/>"
            f"<text x='{left - 6}' y='{yy + 4:.1f}' text-anchor='end'>{rate * 100:.0f}%</text>"
        )
    lines: list[tuple[Callable[[TimePoint], float], str, str]] = [
        (lambda p: p.raw_rate, "#98a2b3", "raw"),
        (lambda p: p.rate, "#b42318", "after noise"),
    ]
    for series, colour, label in lines:
        coords = " ".join(f"{x(p):.1f},{y(series(p)):.1f}" for p in points)
        out.append(f"<polyline fill='none' stroke='{colour}' stroke-width='2' points='{coords}'/>")
        for p in points:
            stamp = time.strftime("%H:%M", time.gmtime(p.bucket))
            out.append(
                f"<circle cx='{x(p):.1f}' cy='{y(series(p)):.1f}' r='2.5' fill='{colour}'>"
                f"<title>{stamp} UTC · {label} {pct(series(p))} of {p.compared}</title></circle>"
            )
    for p in (points[0], points[-1]):
        out.append(
            f"<text x='{x(p):.1f}' y='{height - 8}' text-anchor='middle'>"
            f"{time.strftime('%H:%M', time.gmtime(p.bucket))}</text>"
        )
    out.append(
        f"<text x='{left + w - 150}' y='{top + 12}' fill='#b42318'>— after noise</text>"
        f"<text x='{left + w - 60}' y='{top + 12}'>— raw</text></svg>"
    )
    return "".join(out)


def downsample(
    points: tuple[TimePoint, ...], limit: int = MAX_CHART_POINTS
) -> tuple[TimePoint, ...]:
    """Merge neighbouring buckets so a chart of weeks stays a few hundred shapes."""
    if len(points) <= limit:
        return points
    size = -(-len(points) // limit)
    merged = []
    for i in range(0, len(points), size):
        group = points[i : i + size]
        merged.append(
            TimePoint(
                group[0].bucket,
                sum(p.compared for p in group),
                sum(p.raw_mismatched for p in group),
                sum(p.mismatched for p in group),
            )
        )
    return tuple(merged)


def _endpoints_table(report: Report) -> str:
    if not report.endpoints:
        return "<p class='muted'>No comparisons recorded yet.</p>"
    rows = [
        "<table><tr><th>Endpoint</th><th class='n'>Samples</th>"
        "<th class='n'>Mismatch after noise</th><th class='n'>Raw</th><th class='n'>Errors</th>"
        "<th class='n'>Lag</th><th>Flagged fields</th><th>Verdict</th></tr>"
    ]
    for i, e in enumerate(report.endpoints):
        flagged = ", ".join(f"<code>{escape(p)}</code>" for p in e.flagged) or "—"
        rows.append(
            f"<tr><td><a href='#ep{i}'><code>{escape(str(e.endpoint))}</code></a></td>"
            f"<td class='n'>{e.samples}</td><td class='n'>{pct(e.mismatch_rate)}</td>"
            f"<td class='n'>{pct(e.raw_mismatch_rate)}</td><td class='n'>{e.errors}</td>"
            f"<td class='n'>{e.lag}</td><td>{flagged}</td>"
            f"<td><span class='badge {escape(e.verdict)}'>{escape(e.verdict)}</span></td></tr>"
        )
    rows.append("</table>")
    return "".join(rows)


def _endpoint_section(index: int, e: EndpointReport) -> str:
    out = [f"<h3 id='ep{index}'><code>{escape(str(e.endpoint))}</code></h3>"]
    out.append(
        f"<div class='muted'>{e.compared} compared · {e.matched} matched · "
        f"{e.raw_mismatched} differed · {e.mismatched} after noise · "
        f"{e.ignored_only} only ignored differences · {e.lag} lag · {e.errors} errors · "
        f"{e.noise_samples} noise samples</div>"
    )
    if not e.fields:
        out.append("<p>No differences.</p>")
        return "".join(out)
    out.append(
        "<table><tr><th>Field</th><th>Kind</th><th>Status</th><th class='n'>Count</th>"
        "<th class='n'>Rate</th><th class='n'>Monolith noise</th></tr>"
    )
    for f in e.fields:
        out.append(
            f"<tr class='{escape(f.status)}'><td><code>{escape(f.path)}</code></td>"
            f"<td>{escape(f.kind)}</td><td>{escape(f.status)}</td><td class='n'>{f.raw}</td>"
            f"<td class='n'>{pct(f.raw_rate)}</td><td class='n'>{pct(f.noise_rate)}</td></tr>"
        )
        samples = [s for s in e.examples if s.field == f.key]
        out.append(f"<tr><td colspan='6'>{_samples_block(f, samples)}</td></tr>")
    out.append("</table>")
    return "".join(out)


def _samples_block(f: FieldStat, samples: list[Sample]) -> str:
    if not samples:
        return "<span class='muted'>no samples stored</span>"
    opened = " open" if f.status == FLAGGED else ""
    body = "".join(_sample(s) for s in samples)
    return f"<details{opened}><summary>{len(samples)} sample(s)</summary>{body}</details>"


def _sample(s: Sample) -> str:
    p = s.payload
    req = p.get("request") or {}
    right_key = "secondary" if s.source == NOISE else "candidate"
    left, right = p.get("primary") or {}, p.get(right_key) or {}
    line = f"{req.get('method', '')} {req.get('path', '')}"
    if req.get("query"):
        line += f"?{req['query']}"
    listed = (p.get("noise") if s.source == NOISE else p.get("differences")) or []
    listed = listed + ([] if s.source == NOISE else p.get("ignored") or [])
    diffs = "".join(
        f"<li><code>{escape(d['path'])}</code> {escape(d['kind'])}: "
        f"<code>{escape(_short(d['primary']))}</code> → "
        f"<code>{escape(_short(d['candidate']))}</code></li>"
        for d in listed
    )
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(s.ts))
    statuses = f"{escape(str(left.get('status')))} vs {escape(str(right.get('status')))}"
    return (
        f"<div class='sample'><div><code>{escape(line)}</code> · request "
        f"<code>{escape(s.request_id)}</code> · {stamp} UTC · status {statuses}</div>"
        f"<ul>{diffs}</ul>"
        + side_by_side(
            _pretty(left.get("body")),
            _pretty(right.get("body")),
            "monolith",
            "monolith (again)" if s.source == NOISE else "candidate",
        )
        + "</div>"
    )


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _pretty(body: Any) -> str:
    if not isinstance(body, dict):
        return ""
    if "text" not in body:
        return "(binary body, base64)\n" + str(body.get("base64", ""))[:2000]
    text = str(body["text"])
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


def side_by_side(left: str, right: str, left_title: str, right_title: str) -> str:
    """Two columns of lines with differing lines marked; long equal runs folded."""
    a, b = left.splitlines()[:MAX_DIFF_LINES], right.splitlines()[:MAX_DIFF_LINES]
    rows = [
        f"<table class='diff'><tr class='diffhead'><th class='ln'></th>"
        f"<th>{escape(left_title)}</th><th class='ln'></th><th>{escape(right_title)}</th></tr>"
    ]

    def row(i: int | None, j: int | None, cls_a: str, cls_b: str) -> None:
        la = "" if i is None else escape(a[i])
        lb = "" if j is None else escape(b[j])
        rows.append(
            f"<tr><td class='ln'>{'' if i is None else i + 1}</td><td class='{cls_a}'>{la}</td>"
            f"<td class='ln'>{'' if j is None else j + 1}</td><td class='{cls_b}'>{lb}</td></tr>"
        )

    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            n = i2 - i1
            if n > 2 * CONTEXT + 1:
                for k in range(CONTEXT):
                    row(i1 + k, j1 + k, "", "")
                folded = n - 2 * CONTEXT
                rows.append(f"<tr class='gap'><td colspan='4'>… {folded} equal lines …</td></tr>")
                for k in range(n - CONTEXT, n):
                    row(i1 + k, j1 + k, "", "")
            else:
                for k in range(n):
                    row(i1 + k, j1 + k, "", "")
            continue
        for k in range(max(i2 - i1, j2 - j1)):
            i = i1 + k if i1 + k < i2 else None
            j = j1 + k if j1 + k < j2 else None
            row(i, j, "del" if i is not None else "", "add" if j is not None else "")
    rows.append("</table>")
    return "".join(rows)
