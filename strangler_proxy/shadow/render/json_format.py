"""The report as JSON, for scripts and gates: ``flagged`` / ``noise`` / ``ignored`` kept apart."""

from __future__ import annotations

import json
from typing import Any

from strangler_proxy.shadow.report import EndpointReport, Report


def report_to_dict(report: Report) -> dict[str, Any]:
    return {
        "service": report.service,
        "generated_at": report.generated_at,
        "verdict": report.verdict,
        "samples": report.samples,
        "compared": report.compared,
        "mismatch_rate": report.mismatch_rate,
        "raw_mismatch_rate": report.raw_mismatch_rate,
        "error_rate": report.error_rate,
        "monolith_errors": report.monolith_errors,
        "gates": {
            "min_samples": report.gates.min_samples,
            "max_mismatch_rate": report.gates.max_mismatch_rate,
            "max_error_rate": report.gates.max_error_rate,
        },
        "endpoints": [_endpoint(e) for e in report.endpoints],
        "timeline": [
            {
                "bucket": p.bucket,
                "compared": p.compared,
                "raw_mismatch_rate": p.raw_rate,
                "mismatch_rate": p.rate,
            }
            for p in report.timeline
        ],
    }


def _endpoint(e: EndpointReport) -> dict[str, Any]:
    return {
        "endpoint": str(e.endpoint),
        "route": e.endpoint.route,
        "method": e.endpoint.method,
        "verdict": e.verdict,
        "samples": e.samples,
        "compared": e.compared,
        "matched": e.matched,
        "mismatched": e.mismatched,
        "raw_mismatched": e.raw_mismatched,
        "ignored_only": e.ignored_only,
        "lag": e.lag,
        "errors": e.errors,
        "noise_samples": e.noise_samples,
        "mismatch_rate": e.mismatch_rate,
        "raw_mismatch_rate": e.raw_mismatch_rate,
        "error_rate": e.error_rate,
        "flagged": list(e.flagged),
        "noise": list(e.noise_paths),
        "ignored": list(e.ignored_paths),
        "pending": list(e.pending_paths),
        "fields": [
            {
                "path": f.path,
                "kind": f.kind,
                "status": f.status,
                "count": f.raw,
                "rate": f.raw_rate,
                "noise_count": f.noise,
                "noise_rate": f.noise_rate,
            }
            for f in e.fields
        ],
    }


def render_json(report: Report) -> str:
    return json.dumps(report_to_dict(report), indent=2, sort_keys=False) + "\n"
