"""Which tables to capture and their column kinds, from the plan and the Django models;
install / uninstall / status against a Django connection."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from django.apps import apps
from django.db import connections
from django.db.models import Field, Model

from cdc.errors import CdcError, TableNotCapturable
from cdc.sources.sqlite import triggers
from cdc.sources.sqlite.render import kind_for_django
from cdc.sources.sqlite.triggers import CapturedTable, Column

log = logging.getLogger("monolith.capture")

PLAN_ENV = "STRANGLE_PLAN"
ENABLE_ENV = "STRANGLE_CAPTURE"


class CaptureError(Exception):
    pass


def plan_path() -> Path:
    return Path(os.environ.get(PLAN_ENV) or "migration_plan.yaml")


def plan_tables(plan: Mapping[str, Any]) -> list[str]:
    """Keys of every ``services.<name>.data.tables`` the monolith owns (the default
    owner), without a ``schema.`` prefix — SQLite has one schema."""
    tables: list[str] = []
    for service in (plan.get("services") or {}).values():
        data = service.get("data") if isinstance(service, Mapping) else None
        if not isinstance(data, Mapping) or data.get("owner", "monolith") != "monolith":
            continue
        for name in data.get("tables") or {}:
            tables.append(str(name).split(".")[-1])
    return list(dict.fromkeys(tables))


def read_plan_tables(path: Path | None = None) -> list[str] | None:
    """The plan's captured tables, or None when there is no plan file."""
    path = path or plan_path()
    try:
        plan = yaml.safe_load(path.read_text("utf-8")) or {}
    except FileNotFoundError:
        return None
    except yaml.YAMLError as exc:
        raise CaptureError(f"plan {path} is not valid YAML: {exc}") from exc
    if not isinstance(plan, Mapping):
        raise CaptureError(f"plan {path}: expected a mapping at the top level")
    return plan_tables(plan)


def _model_for(table: str) -> type[Model] | None:
    for model in apps.get_models(include_auto_created=True):
        if model._meta.db_table == table:
            return model
    return None


def _field_column(field: Field[Any, Any]) -> Column:
    target: Any = field
    while target.is_relation and getattr(target, "target_field", None) is not None:
        target = target.target_field
    kind = kind_for_django(target.get_internal_type())
    scale = getattr(target, "decimal_places", None) if kind == "decimal" else None
    precision = getattr(target, "max_digits", None) if kind == "decimal" else None
    return Column(field.column, kind, scale, precision)


def model_columns(table: str) -> dict[str, Column]:
    """Column kinds of the Django model stored in ``table`` (empty if none is)."""
    model = _model_for(table)
    if model is None:
        return {}
    return {f.column: _field_column(f) for f in model._meta.local_concrete_fields}


def _raw(using: str) -> Any:
    connection = connections[using]
    connection.ensure_connection()
    return connection.connection


def is_sqlite(using: str = "default") -> bool:
    return bool(connections[using].vendor == "sqlite")


def captured_tables(raw: Any, names: Iterable[str]) -> list[CapturedTable]:
    return [triggers.introspect(raw, name, model_columns(name)) for name in names]


def install(tables: Iterable[str], using: str = "default") -> list[str]:
    """Install capture for ``tables`` plus those already captured; returns the tables."""
    if not is_sqlite(using):
        return []
    raw = _raw(using)
    names = list(dict.fromkeys([*triggers.installed_tables(raw), *tables]))
    if not names:
        raise CaptureError("no tables to capture: list them in the plan's data.tables")
    try:
        triggers.install(raw, captured_tables(raw, names))
    except CdcError as exc:
        raise CaptureError(str(exc)) from exc
    return names


def uninstall(using: str = "default", *, force: bool = False) -> list[str]:
    if not is_sqlite(using):
        return []
    raw = _raw(using)
    pending = _pending(raw)
    if pending and not force:
        raise CaptureError(
            f"{pending} captured changes were not relayed yet; run the relay "
            "(strangle cdc run) first, or uninstall with --force to drop them"
        )
    return triggers.uninstall(raw)


def _pending(raw: Any) -> int:
    if triggers.CHANGELOG not in _tables(raw):
        return 0
    return int(raw.execute(f"SELECT count(*) FROM {triggers.CHANGELOG}").fetchone()[0])


def _tables(raw: Any) -> set[str]:
    return {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def status(using: str = "default") -> dict[str, Any]:
    if not is_sqlite(using):
        return {"vendor": connections[using].vendor, "capture": "not used (logical decoding)"}
    raw = _raw(using)
    installed = triggers.installed_tables(raw)
    problems: list[str] = []
    current = []
    for name in installed:
        try:
            current.append(triggers.introspect(raw, name, model_columns(name)))
        except TableNotCapturable as exc:
            problems.append(str(exc))
    problems += triggers.verify(raw, current) if installed else []
    return {
        "vendor": "sqlite",
        "installed": bool(installed),
        "tables": sorted(installed),
        "pending_changes": _pending(raw),
        "changelog_position": triggers.changelog_position(raw),
        "problems": problems,
    }


def reinstall_after_migrate(using: str = "default") -> list[str]:
    """Keep capture in place after ``migrate``: reinstall where it is installed (adding
    the plan's new tables); install fresh only when ``STRANGLE_CAPTURE`` is on, so a
    database without a relay never grows a changelog nobody reads."""
    if not is_sqlite(using):
        return []
    raw = _raw(using)
    installed = list(triggers.installed_tables(raw))
    enabled = os.environ.get(ENABLE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}
    if not installed and not enabled:
        return []
    try:
        wanted = read_plan_tables() or []
    except CaptureError as exc:
        log.warning("capture: plan unreadable, reinstalling installed tables only: %s", exc)
        wanted = []
    existing = _tables(raw)
    missing = [t for t in [*installed, *wanted] if t not in existing]
    for name in missing:
        log.warning("capture: table %s does not exist; not captured", name)
    names = [t for t in dict.fromkeys([*installed, *wanted]) if t in existing]
    if not names:
        return []
    triggers.install(raw, captured_tables(raw, names))
    log.info("capture: triggers installed", extra={"tables": names})
    return names
