from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from strangler_proxy.cli import cli
from strangler_proxy.plan.schema import plan_schema
from tests.plan.samples import REPO_PLAN, VALID


def test_validate_ok_prints_hash_and_summary(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["plan", "validate", "--plan", str(REPO_PLAN)])
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0]
    assert first.startswith(f"OK {REPO_PLAN} sha256:") and "3 services" in first
    assert "notifications  shadow" in result.output
    assert "orders         monolith" in result.output


def test_validate_json(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        VALID.replace("    requires: [catalog]\n", "    requires: [catalog]\n    stage: service\n")
    )
    result = CliRunner().invoke(cli, ["plan", "validate", "--plan", str(path), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["ok"] is True and len(out["sha256"]) == 64
    assert out["services"]["notifications"]["step"] == "shadow"
    assert out["services"]["notifications"]["routes"][0] == {
        "path": "/api/notifications",
        "methods": ["GET", "HEAD", "POST"],
    }
    assert out["warnings"][0]["level"] == "warning"
    assert out["warnings"][0]["path"] == "services.orders.requires[0]"
    strict = CliRunner().invoke(cli, ["plan", "validate", "--plan", str(path), "--strict"])
    assert strict.exit_code == 1 and "FAILED (--strict): 1 warning(s)" in strict.output
    assert "warning: " in strict.output and "ahead of required service 'catalog'" in strict.output
    strict_json = CliRunner().invoke(
        cli, ["plan", "validate", "--plan", str(path), "--strict", "--json"]
    )
    assert strict_json.exit_code == 1 and json.loads(strict_json.stdout)["ok"] is False
    ok = CliRunner().invoke(cli, ["plan", "validate", "--plan", str(REPO_PLAN), "--strict"])
    assert ok.exit_code == 0


def test_validate_reports_every_error_and_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "migration_plan.yaml"
    path.write_text(
        VALID.replace("percent: 10", "percent: 140").replace("sample: 0.5", "sample: 3")
    )
    result = CliRunner().invoke(cli, ["plan", "validate", "--plan", str(path)])
    assert result.exit_code == 1
    assert f"INVALID {path}" in result.output
    assert (
        "  error: migration_plan.yaml:11: services.notifications.canary.percent: must be 0..100, "
        "got 140" in result.output
    )
    assert "services.notifications.shadow.sample: must be 0..1, got 3" in result.output
    as_json = CliRunner().invoke(cli, ["plan", "validate", "--plan", str(path), "--json"])
    assert as_json.exit_code == 1
    out = json.loads(as_json.stdout)
    assert out["ok"] is False and [e["line"] for e in out["errors"]] == [11, 12]


def test_validate_missing_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["plan", "validate", "--plan", str(tmp_path / "x.yaml")])
    assert result.exit_code == 1 and "cannot read plan file" in result.output


def test_plan_option_reads_env(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(VALID)
    result = CliRunner().invoke(cli, ["plan", "validate"], env={"STRANGLE_PLAN": str(path)})
    assert result.exit_code == 0 and str(path) in result.output


def test_schema_prints_the_json_schema() -> None:
    result = CliRunner().invoke(cli, ["plan", "schema"])
    assert result.exit_code == 0
    assert json.loads(result.output) == plan_schema()
