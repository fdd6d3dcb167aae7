from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from strangler_proxy.cli import cli
from strangler_proxy.plan import parse_plan
from strangler_proxy.plandiff import diff_plans

OLD = """\
version: 1
monolith: {url: "http://127.0.0.1:9"}
services:
  orders:
    url: http://127.0.0.1:10
    routes: [{path: /api/orders, methods: [GET]}]
    stage: canary
    canary: {percent: 10}
    gates: {min_samples: 100}
  legacy:
    url: http://127.0.0.1:12
    routes: [{path: /api/legacy, methods: [GET]}]
"""

NEW = """\
# comments and layout do not count
version: 1
monolith: {url: "http://127.0.0.1:9"}
services:
  orders:
    url: http://127.0.0.1:10
    routes:
      - {path: /api/orders, methods: [GET]}
      - {path: "/api/orders/{id}", methods: [GET]}
    stage: canary
    canary: {percent: 50}
    gates: {min_samples: 200}
  catalog:
    url: http://127.0.0.1:11
    routes: [{path: /api/products, methods: [GET]}]
    stage: shadow
"""


def test_diff_names_changes_in_plan_terms() -> None:
    changes = [str(c) for c in diff_plans(parse_plan(OLD), parse_plan(NEW))]
    assert changes == [
        "+ service catalog (shadow)",
        "- service legacy (monolith)",
        "orders: stage canary 10% -> canary 50%",
        "orders: routes +GET|HEAD /api/orders/{id}",
        "orders: gates {'min_samples': 100.0} -> {'min_samples': 200.0}",
    ]


def test_formatting_only_changes_are_no_difference() -> None:
    reformatted = OLD.replace(
        "routes: [{path: /api/orders, methods: [GET]}]",
        ("routes:\n      - path: /api/orders  # same route\n        methods: [GET]"),
    )
    assert diff_plans(parse_plan(OLD), parse_plan(reformatted)) == []


def test_plan_diff_command(tmp_path: Path) -> None:
    old, new = tmp_path / "old.yaml", tmp_path / "migration_plan.yaml"
    old.write_text(OLD)
    new.write_text(NEW)
    runner = CliRunner()
    result = runner.invoke(cli, ["plan", "diff", str(old), "--plan", str(new)])
    assert result.exit_code == 1
    assert "orders: stage canary 10% -> canary 50%" in result.stdout
    piped = runner.invoke(cli, ["plan", "diff", "-", "--plan", str(new), "--json"], input=OLD)
    assert piped.exit_code == 1
    assert {"where": "orders", "what": "stage", "before": "canary 10%", "after": "canary 50%"} in (
        json.loads(piped.stdout)["changes"]
    )
    same = runner.invoke(cli, ["plan", "diff", str(new), str(new)])
    assert same.exit_code == 0 and "no differences" in same.stdout
    broken = runner.invoke(cli, ["plan", "diff", "-", str(new)], input="services: [")
    assert broken.exit_code == 2 and "INVALID -" in broken.stderr
