"""The `strangle` command.

Each command group lives in its own module and is imported only when it is used, so
`strangle --help` stays fast. Conventions every command keeps:

* commands that read the plan take ``--plan PATH`` (default ``$STRANGLE_PLAN``, else
  ``./migration_plan.yaml``) — use :data:`plan_option`;
* commands that report take ``--json`` — use :data:`json_option`.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

import click

from strangler_proxy import __version__
from strangler_proxy.cli.common import json_option, plan_option

__all__ = ["cli", "json_option", "main", "plan_option"]

# name -> ("module:attribute", short help). Modules are imported lazily.
_COMMANDS: dict[str, tuple[str, str]] = {
    "up": ("strangler_proxy.cli.up:up", "Run the whole stack on embedded defaults."),
    "proxy": ("strangler_proxy.cli.proxy:proxy", "Run the routing proxy under uvicorn."),
    "plan": ("strangler_proxy.cli.plan:plan", "Validate, diff and describe the migration plan."),
    "status": ("strangler_proxy.cli.status:status", "One table of every service and its gates."),
    "promote": ("strangler_proxy.cli.promote:promote", "Move a service one step up its ladder."),
    "rollback": ("strangler_proxy.cli.promote:rollback", "Move a service back down its ladder."),
    "history": ("strangler_proxy.cli.history:history", "Show the audit trail of stage changes."),
    "report": ("strangler_proxy.cli.report:report", "Shadow comparison report for a service."),
    "cdc": ("strangler_proxy.cli.cdc:cdc", "Change data capture: run, status, snapshot, reset."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self._available()])

    def _available(self) -> list[str]:
        found = []
        for name, (target, _) in _COMMANDS.items():
            module = target.split(":")[0]
            if importlib.util.find_spec(module) is not None:
                found.append(name)
        return found

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        builtin = super().get_command(ctx, cmd_name)
        if builtin is not None or cmd_name not in _COMMANDS:
            return builtin
        target, _ = _COMMANDS[cmd_name]
        module_name, attr = target.split(":")
        if importlib.util.find_spec(module_name) is None:
            return None
        command = getattr(importlib.import_module(module_name), attr)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, _COMMANDS[name][1]) for name in self._available()]
        rows += [
            (name, cmd.get_short_help_str())
            for name, cmd in self.commands.items()
            if not cmd.hidden
        ]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(sorted(rows))


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """strangle — move a Django monolith to services one bounded context at a time."""


@cli.command()
@json_option
def version(as_json: bool) -> None:
    """Print the installed version."""
    if as_json:
        click.echo(f'{{"version": "{__version__}"}}')
    else:
        click.echo(f"strangle {__version__}")


def main(argv: list[str] | None = None) -> Any:
    return cli.main(args=argv, prog_name="strangle")
