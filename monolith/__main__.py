"""``python -m monolith <command>``: migrate, seed, serve, check, manage."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import click

SETTINGS = "monolith.config.settings"


def setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS)
    import django
    from django.conf import settings

    django.setup()
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3") and db["NAME"] != ":memory:":
        Path(db["NAME"]).parent.mkdir(parents=True, exist_ok=True)


def run_migrations(verbosity: int = 1) -> None:
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=verbosity)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """The legacy shop. Configure with DATABASE_URL, SECRET_KEY, DEBUG, ALLOWED_HOSTS."""


@cli.command()
@click.option("-v", "--verbosity", default=1, type=click.IntRange(0, 3))
def migrate(verbosity: int) -> None:
    """Apply database migrations."""
    setup()
    run_migrations(verbosity)


@cli.command()
@click.option("--customers", default=100, show_default=True, type=click.IntRange(0))
@click.option("--products", default=50, show_default=True, type=click.IntRange(0))
@click.option("--orders", default=200, show_default=True, type=click.IntRange(0))
@click.option("--seed", "seed_value", default=42, show_default=True, type=int,
              help="Random seed; the same seed gives the same data.")
@click.option("--if-empty", is_flag=True, help="Do nothing (exit 0) if data exists.")
@click.option("--migrate/--no-migrate", "do_migrate", default=True, show_default=True)
def seed(customers: int, products: int, orders: int, seed_value: int, if_empty: bool,
         do_migrate: bool) -> None:
    """Fill an empty database with deterministic demo data."""
    setup()
    from monolith.seed import DatabaseNotEmpty, SeedSizes, is_empty, seed_database

    if do_migrate:
        run_migrations(verbosity=0)
    if if_empty and not is_empty():
        click.echo(json.dumps({"seeded": False, "reason": "database not empty"}))
        return
    sizes = SeedSizes(customers=customers, products=products, orders=orders)
    if orders and not (customers and products):
        raise click.BadParameter("--orders needs at least one customer and one product")
    started = time.perf_counter()
    try:
        with click.progressbar(length=sizes.units, label="seeding", file=sys.stderr,
                               show_pos=True) as bar:
            counts = seed_database(sizes, seed=seed_value, progress=bar.update)
    except DatabaseNotEmpty as exc:
        raise click.ClickException(f"{exc} (use --if-empty to skip)") from None
    elapsed = time.perf_counter() - started
    click.echo(json.dumps({"seeded": True, "seed": seed_value, "seconds": round(elapsed, 3),
                           **counts}))


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--migrate/--no-migrate", "do_migrate", default=True, show_default=True)
def serve(host: str, port: int, do_migrate: bool) -> None:
    """Serve the shop with uvicorn (ASGI); migrates first unless --no-migrate."""
    setup()
    if do_migrate:
        run_migrations(verbosity=0)
    import uvicorn

    uvicorn.run("monolith.config.asgi:application", host=host, port=port, log_config=None,
                lifespan="off", server_header=False)


@cli.command()
def check() -> None:
    """Deployment sanity: system checks (incl. --deploy) and no missing migrations."""
    setup()
    from django.core.management import call_command

    call_command("check", deploy=True, fail_level="ERROR")
    try:
        call_command("makemigrations", check=True, dry_run=True, verbosity=1)
    except SystemExit as exc:
        if exc.code:
            raise click.ClickException("model changes without migrations") from None


@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def manage(ctx: click.Context) -> None:
    """Any Django management command: python -m monolith manage makemigrations."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS)
    from django.core.management import execute_from_command_line

    execute_from_command_line(["monolith manage", *ctx.args])


@cli.command("notifications-retry")
@click.option("--loop", "interval", type=float, default=None,
              help="Keep draining every INTERVAL seconds until interrupted.")
@click.option("--now", is_flag=True, help="Retry everything queued, not only what is due.")
def notifications_retry(interval: float | None, now: bool) -> None:
    """Resend notifications the extracted service did not confirm (see remote.py)."""
    setup()
    from monolith.notifications.remote import drain

    while True:
        sent, left = drain(now=now)
        click.echo(json.dumps({"sent": sent, "queued": left}))
        if interval is None:
            return
        time.sleep(interval)


def main() -> None:
    cli(prog_name="python -m monolith")


if __name__ == "__main__":
    main()
