from __future__ import annotations

import json

from click.testing import CliRunner

from strangler_proxy import __version__
from strangler_proxy.cli import cli


def test_version_plain_and_json() -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["version"]).output.strip() == f"strangle {__version__}"
    out = runner.invoke(cli, ["version", "--json"]).output
    assert json.loads(out) == {"version": __version__}


def test_help_lists_existing_groups() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "version" in result.output
    assert "up" in result.output
