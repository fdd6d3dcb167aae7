"""``strangle cdc``: run the PostgreSQL → Kafka capture, inspect it, snapshot a table
again, reset it."""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

import click

from strangler_proxy.cli.common import echo_json, json_option, plan_option


def _config(plan_path: Path) -> Any:
    from cdc.config import load_config
    from cdc.errors import ConfigError

    try:
        return load_config(plan_path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


def _sqlite_capture(plan_path: Path) -> Any:
    """The SQLite source's runner when the monolith's database is SQLite, else None."""
    from cdc.errors import CdcError
    from cdc.sources.sqlite.runner import capture_for_plan

    try:
        return capture_for_plan(plan_path)
    except CdcError as exc:
        raise click.ClickException(str(exc)) from exc


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


@click.group()
def cdc() -> None:
    """Change data capture: the monolith's tables as Debezium events on Kafka."""


@cdc.command()
@plan_option
def run(plan_path: Path) -> None:
    """Snapshot (per snapshot_mode) and stream until SIGTERM/SIGINT."""
    stopping: list[Any] = []  # the capture once it exists; a stop before that is kept

    def on_signal(signum: int, _frame: Any) -> None:
        stopping.append(signum)
        for item in stopping:
            if hasattr(item, "stop"):
                item.stop()

    # first thing: a SIGTERM during startup must still end in a clean exit
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    from cdc.errors import CdcError
    from cdc.runner import PgCapture
    from strangler_proxy import jsonlog

    jsonlog.configure("cdc")
    capture: Any = _sqlite_capture(plan_path) or PgCapture(_config(plan_path))
    stopping.append(capture)
    if any(isinstance(item, int) for item in stopping):
        capture.stop()
    try:
        capture.run()
    except CdcError as exc:
        import logging

        logging.getLogger("cdc.runner").error(
            "capture failed", extra={"error": str(exc), "error_type": type(exc).__name__}
        )
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)


def _status_doc(config: Any) -> dict[str, Any]:
    from cdc.positions import format_lsn
    from cdc.sources.postgres import catalog

    doc: dict[str, Any] = {
        "slot": config.slot,
        "publication": config.publication,
        "tables": list(config.tables),
    }
    conn = catalog.connect(config.database_url)
    try:
        info = catalog.slot_info(conn, config.slot)
    finally:
        conn.close()
    if info is None:
        doc["slot_exists"] = False
    else:
        doc.update(
            {
                "slot_exists": True,
                "slot_active": info.active,
                "confirmed_lsn": format_lsn(info.confirmed_flush_lsn)
                if info.confirmed_flush_lsn is not None
                else None,
                "lag_bytes": info.lag_bytes,
            }
        )
    path = Path(config.state_dir) / "status.json"
    runner: dict[str, Any] | None = None
    if path.exists():
        try:
            runner = json.loads(path.read_text())
        except ValueError:
            runner = None
    if runner:
        age = time.time() - float(runner.get("updated_at", 0))
        doc.update(
            {
                "runner_state": runner.get("state"),
                "runner_status_age_s": round(age, 1),
                "last_event": runner.get("last_event"),
                "events_per_s": runner.get("events_per_s"),
                "lag_seconds": runner.get("lag_seconds"),
                "snapshot": runner.get("snapshot"),
                "error": runner.get("error"),
            }
        )
    else:
        doc["runner_state"] = "unknown (no status file)"
    return doc


@cdc.command()
@plan_option
@json_option
def status(plan_path: Path, as_json: bool) -> None:
    """Slot, confirmed LSN, lag, last event and events/s."""
    from cdc.errors import CdcError
    from cdc.sources.sqlite.runner import status_for_plan

    try:
        doc = status_for_plan(plan_path) or _status_doc(_config(plan_path))
    except CdcError as exc:
        raise _fail(exc) from exc
    if as_json:
        echo_json(doc)
        return
    for key in (
        "slot",
        "slot_exists",
        "slot_active",
        "confirmed_lsn",
        "lag_bytes",
        "lag_seconds",
        "runner_state",
        "events_per_s",
        "last_event",
        "snapshot",
        "error",
    ):
        if key in doc and doc[key] is not None:
            click.echo(f"{key:>14}: {doc[key]}")


@cdc.command()
@plan_option
@click.option("--table", "table", required=True, help="Captured table (schema.table or table).")
def snapshot(plan_path: Path, table: str) -> None:
    """Send every row of one captured table again as snapshot (``r``) events."""
    from cdc.errors import CdcError
    from cdc.runner import snapshot_table
    from cdc.sources.sqlite.runner import snapshot_table_for_plan

    def show(p: Any) -> None:
        eta = f", ETA {p.eta_s:.0f}s" if p.eta_s is not None else ""
        click.echo(f"{p.table}: {p.rows}/{p.total} rows, {p.rows_per_s:.0f} rows/s{eta}", err=True)

    try:
        rows = snapshot_table_for_plan(plan_path, table, on_progress=show)
        if rows is None:
            rows = snapshot_table(_config(plan_path), table, on_progress=show)
    except CdcError as exc:
        raise _fail(exc) from exc
    click.echo(f"sent {rows} rows of {table}")


@cdc.command()
@plan_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def reset(plan_path: Path, yes: bool) -> None:
    """Drop the replication slot and the stored offsets; the next run snapshots again."""
    from cdc.errors import CdcError
    from cdc.offsets import open_store
    from cdc.sources.postgres import catalog
    from cdc.sources.sqlite.runner import reset_for_plan

    if _sqlite_capture(plan_path) is not None:
        if not yes:
            click.confirm("Clear the SQLite CDC offset? The next run takes a full snapshot "
                          "again", abort=True)
        try:
            click.echo(reset_for_plan(plan_path))
        except CdcError as exc:
            raise _fail(exc) from exc
        return
    config = _config(plan_path)
    if not yes:
        click.confirm(
            f"Drop replication slot {config.slot} and the CDC offsets? The next run takes a "
            "full snapshot again",
            abort=True,
        )
    try:
        conn = catalog.connect(config.database_url)
        try:
            info = catalog.slot_info(conn, config.slot)
            if info is not None and info.active:
                raise click.ClickException(
                    f"slot {config.slot} is in use by a running capture; stop it first"
                )
            dropped = catalog.drop_slot(conn, config.slot)
        finally:
            conn.close()
        open_store(config.offsets, default_dir=config.state_dir).delete(config.offset_name)
    except CdcError as exc:
        raise _fail(exc) from exc
    click.echo(f"slot {config.slot} {'dropped' if dropped else 'did not exist'}; offsets cleared")
