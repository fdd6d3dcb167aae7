"""Routing-decision cost: ``decide()`` against Starlette's own route matching.

``python -m bench decide`` routes the same requests through (a) this project's
``RequestFacts.from_asgi`` + ``decide(plan, facts)`` on the repo's migration_plan.yaml
and (b) a Starlette ``Router``'s matching loop over the same path templates (the
reference: what a Starlette app does for every request before it handles it). Prints
CPU microseconds per request (process time, so other load on the machine matters
little) for each case and ``ratio`` = decide / starlette, as JSON.
"""

from __future__ import annotations

import json
import platform
import sys
import time
import timeit
from pathlib import Path
from typing import Any

from starlette.routing import Match, Route

from strangler_proxy.plan.io import load_plan
from strangler_proxy.plan.parse import parse_plan
from strangler_proxy.routing import RequestFacts, decide

PLAN = Path(__file__).resolve().parents[1] / "migration_plan.yaml"
HEADERS = [
    (b"host", b"shop.example"),
    (b"user-agent", b"wrk"),
    (b"accept", b"*/*"),
    (b"x-customer-id", b"c-1042"),
    (b"cookie", b"sessionid=abc; strangler_cohort=Zx1"),
]


def _scope(method: str, path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": HEADERS,
        "client": ("127.0.0.1", 50000),
    }


async def _endpoint(scope: Any, receive: Any, send: Any) -> None:  # never called
    raise AssertionError


def main(argv: list[str]) -> int:
    number = int(argv[0]) if argv else 100_000
    text = PLAN.read_text()
    plan = load_plan(PLAN).plan
    canary = parse_plan(
        text.replace("    stage: shadow\n", "    stage: canary\n").replace(
            'canary: {steps: [1, 10, 50], cohort: "header:X-Customer-Id"}\n    shadow:\n'
            "      sample: 1.0",
            'canary: {steps: [1, 10, 50], percent: 10, cohort: "header:X-Customer-Id"}\n'
            "    shadow:\n      sample: 1.0",
            1,
        )
    )
    assert canary.services["notifications"].stage == "canary"
    routes = [Route(r.path_template, _endpoint, methods=sorted(r.methods)) for r in plan.routes]

    def starlette_match(scope: dict[str, Any]) -> Any:
        partial = None
        for route in routes:
            match, child = route.matches(scope)
            if match is Match.FULL:
                return route, child
            if match is Match.PARTIAL and partial is None:
                partial = route
        return partial

    cases = {
        "unmatched": (plan, _scope("GET", "/static/app.js")),
        "monolith_stage": (plan, _scope("GET", "/api/catalog/products/12")),
        "shadow_stage": (plan, _scope("GET", "/api/notifications/5")),
        "canary_stage_header": (canary, _scope("GET", "/api/notifications/5")),
    }
    results: dict[str, Any] = {}
    for name, (p, scope) in cases.items():

        def ours(p: Any = p, scope: dict[str, Any] = scope) -> Any:
            return decide(p, RequestFacts.from_asgi(scope, sample_roll=0.1, new_cohort_id="n"))

        def theirs(scope: dict[str, Any] = scope) -> Any:
            return starlette_match(scope)

        t_ours = (
            min(timeit.repeat(ours, number=number, repeat=5, timer=time.process_time))
            / number
            * 1e6
        )
        t_ref = (
            min(timeit.repeat(theirs, number=number, repeat=5, timer=time.process_time))
            / number
            * 1e6
        )
        results[name] = {
            "decide_us": round(t_ours, 2),
            "starlette_match_us": round(t_ref, 2),
            "ratio": round(t_ours / t_ref, 2),
        }
    print(
        json.dumps(
            {
                "bench": "decide",
                "routes": len(plan.routes),
                "iterations": number,
                "python": sys.version.split()[0],
                "machine": platform.processor() or platform.machine(),
                "results": results,
            },
            indent=2,
        )
    )
    return 0
