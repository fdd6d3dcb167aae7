"""``python -m monolith manage capture install|uninstall|status``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from monolith.capture import capture


class Command(BaseCommand):
    help = "Install, remove or inspect SQLite change capture for the plan's tables."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["install", "uninstall", "status"])
        parser.add_argument("--table", action="append", default=[],
                            help="capture this table (repeatable); default: the plan's")
        parser.add_argument("--plan", help="plan file (default $STRANGLE_PLAN or "
                            "./migration_plan.yaml)")
        parser.add_argument("--force", action="store_true",
                            help="uninstall even with changes not yet relayed")
        parser.add_argument("--database", default="default")

    def handle(self, *args: Any, **options: Any) -> None:
        using = options["database"]
        try:
            result = self._run(options, using)
        except capture.CaptureError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(json.dumps(result))

    def _run(self, options: dict[str, Any], using: str) -> dict[str, Any]:
        action = options["action"]
        if not capture.is_sqlite(using) and action != "status":
            return {"action": action, "changed": False,
                    "reason": "not SQLite: PostgreSQL is captured by logical decoding"}
        if action == "status":
            return capture.status(using)
        if action == "uninstall":
            return {"action": action, "dropped_triggers": capture.uninstall(using,
                                                                            force=options["force"])}
        tables = options["table"]
        if not tables:
            path = Path(options["plan"]) if options["plan"] else capture.plan_path()
            found = capture.read_plan_tables(path)
            if found is None:
                raise CommandError(f"no plan at {path}; pass --plan or --table")
            tables = found
        return {"action": action, "tables": capture.install(tables, using)}
