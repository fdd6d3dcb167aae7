from __future__ import annotations

import re
from pathlib import Path

from strangler_proxy.plan import Stage, parse_plan

DOC = Path(__file__).resolve().parents[2] / "docs/plan.md"


def test_the_documented_format_example_is_a_valid_plan() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S)
    plan = parse_plan(blocks[0], "docs/plan.md")
    n = plan.services["notifications"]
    assert n.stage is Stage.SHADOW and n.canary.percent == 10
    assert n.routes[3].path_template == "/api/notifications/export"
    assert n.fallback is not None and n.fallback.breaker_failures == 5
    assert n.gates["max_latency_ratio"] == 1.5
