"""``python -m cdc.sources.sqlite run|status|snapshot`` — the SQLite source on its own
(``strangle cdc run`` uses the same :func:`cdc.sources.sqlite.open_source`).

Stops gracefully on SIGTERM/SIGINT after the batch in flight; exits 1 with a one-line
reason when the database, the capture or Kafka refuse.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import click

from cdc.errors import CdcError
from cdc.sources.sqlite import SqliteSource, SqliteSourceConfig, open_source

log = logging.getLogger("cdc.sqlite")


class _NoPublishing:
    def publish(self, records: Any) -> None:
        raise CdcError("status does not publish")


def _source(database: str, prefix: str, bootstrap: str, offsets: str | None,
            snapshot_mode: str, batch_size: int, publish: bool = True) -> SqliteSource:
    spec: dict[str, Any] = {"backend": "file", "path": offsets} if offsets else {}
    config = SqliteSourceConfig(
        database=Path(database), topic_prefix=prefix, snapshot_mode=snapshot_mode,
        batch_size=batch_size, offsets=spec,
    )
    if not publish:
        return open_source(config, publisher=_NoPublishing())
    return open_source(config, bootstrap_servers=bootstrap)


_options = [
    click.option("--database", required=True, help="SQLite database file of the monolith"),
    click.option("--prefix", "prefix", default="shop", show_default=True,
                 help="topic prefix (Debezium topic.prefix)"),
    click.option("--bootstrap", default="", help="Kafka bootstrap servers"),
    click.option("--offsets", default=None, help="offsets file (default <db dir>/cdc/)"),
    click.option("--snapshot-mode", default="initial", show_default=True,
                 type=click.Choice(["initial", "no_data", "when_needed"])),
    click.option("--batch-size", default=2000, show_default=True, type=click.IntRange(1)),
]


def _with_options(fn: Any) -> Any:
    for option in reversed(_options):
        fn = option(fn)
    return fn


@click.group()
def cli() -> None:
    """The SQLite change-capture relay."""


@cli.command()
@_with_options
def run(**kw: Any) -> None:
    """Snapshot per mode, then relay the changelog to Kafka until stopped."""
    from strangler_proxy import jsonlog

    jsonlog.configure("cdc-sqlite")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        source = _source(**kw)
        log.info("starting", extra={"what": source.prepare()})
        source.relay.run(stop, poll_interval_s=source.config.poll_interval_s)
        log.info("stopped", extra=source.status())
    except CdcError as exc:
        log.error("sqlite source failed", extra={"error": str(exc)})
        sys.exit(1)


@cli.command()
@_with_options
def status(**kw: Any) -> None:
    """Offset, changelog position and lag as JSON."""
    try:
        click.echo(json.dumps(_source(**kw, publish=False).status()))
    except CdcError as exc:
        raise click.ClickException(str(exc)) from exc


if __name__ == "__main__":
    cli(prog_name="python -m cdc.sources.sqlite")
