from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from strangler_proxy.cli import cli


def test_invalid_plan_refuses_to_start_with_file_line_and_path(tmp_path: Path) -> None:
    plan = tmp_path / "migration_plan.yaml"
    plan.write_text(
        'version: 1\nmonolith: {url: "http://127.0.0.1:1"}\nservices:\n'
        "  orders:\n    url: http://127.0.0.1:2\n    routes: [{path: /api/orders}]\n"
        "    stage: sideways\n"
    )
    result = CliRunner().invoke(cli, ["proxy", "--plan", str(plan), "--port", "1"])
    assert result.exit_code == 2
    assert "invalid plan" in result.output
    assert "migration_plan.yaml:7: services.orders.stage" in result.output


def test_missing_plan_file_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["proxy", "--plan", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "nope.yaml" in result.output


def test_help_lists_the_options() -> None:
    result = CliRunner().invoke(cli, ["proxy", "--help"])
    assert result.exit_code == 0
    for option in ("--plan", "--host", "--port", "--workers", "STRANGLER_ADMIN_TOKEN"):
        assert option in result.output


def test_bad_limit_in_the_environment_is_a_clear_error(tmp_path: Path) -> None:
    import subprocess
    import sys

    plan = tmp_path / "migration_plan.yaml"
    plan.write_text('version: 1\nmonolith: {url: "http://127.0.0.1:1"}\nservices: {}\n')
    strangle = Path(sys.executable).with_name("strangle")
    result = subprocess.run(
        [str(strangle), "proxy", "--plan", str(plan), "--port", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**__import__("os").environ, "STRANGLER_MAX_BODY_BYTES": "lots"},
    )
    assert result.returncode == 2
    assert "STRANGLER_MAX_BODY_BYTES must be an integer" in result.stderr
