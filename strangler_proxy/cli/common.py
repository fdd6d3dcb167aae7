"""Options and helpers shared by every command group."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_PLAN = "migration_plan.yaml"

plan_option: Callable[[F], F] = click.option(
    "--plan",
    "plan_path",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="STRANGLE_PLAN",
    default=DEFAULT_PLAN,
    show_default=True,
    show_envvar=True,
    help="Migration plan file.",
)

json_option: Callable[[F], F] = click.option(
    "--json", "as_json", is_flag=True, help="Print machine-readable JSON."
)


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=True, default=str))
