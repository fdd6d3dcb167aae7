"""``strangle up``: run the stack on embedded defaults until Ctrl-C.

For now the stack is the monolith: create ``var/``, migrate, seed a small shop when the
database is empty, and serve it. Each component runs as a child process; Ctrl-C or
SIGTERM stops them all and waits for them to exit.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

import click

SEED_SIZES = {"customers": 200, "products": 60, "orders": 500}
STOP_TIMEOUT_S = 15.0


class _Stop(Exception):
    pass


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signum)


def monolith_env(var_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("DATABASE_URL", f"sqlite:///{(var_dir / 'monolith.sqlite3').resolve()}")
    env.setdefault("NOTIFICATIONS_BACKEND", "outbox")
    env.setdefault("NOTIFICATIONS_OUTBOX", str((var_dir / "outbox.jsonl").resolve()))
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _monolith(*args: str) -> list[str]:
    return [sys.executable, "-m", "monolith", *args]


def _prepare(env: dict[str, str], seed: bool) -> None:
    click.echo("up: migrating the monolith database", err=True)
    subprocess.run(_monolith("migrate", "-v", "0"), env=env, check=True)
    if seed:
        sizes = [f"--{name}={value}" for name, value in SEED_SIZES.items()]
        subprocess.run(_monolith("seed", "--if-empty", "--no-migrate", *sizes), env=env,
                       check=True, stdout=subprocess.DEVNULL)


def _stop(processes: list[subprocess.Popen[bytes]]) -> int:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return max((abs(p.returncode or 0) for p in processes), default=0)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to serve on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--var-dir", type=click.Path(path_type=Path, file_okay=False), default="var",
              show_default=True, help="Where databases and the notification outbox live.")
@click.option("--seed/--no-seed", default=True, show_default=True,
              help="Seed a small demo shop when the database is empty.")
def up(host: str, port: int, var_dir: Path, seed: bool) -> None:
    """Migrate, seed and serve the shop at http://HOST:PORT until Ctrl-C."""
    var_dir.mkdir(parents=True, exist_ok=True)
    env = monolith_env(var_dir)
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        try:
            _prepare(env, seed)
        except subprocess.CalledProcessError as exc:
            raise click.ClickException(f"monolith setup failed (exit {exc.returncode})") from None
        processes.append(subprocess.Popen(
            _monolith("serve", "--no-migrate", "--host", host, "--port", str(port)), env=env,
            start_new_session=True))  # our SIGINT, not the terminal's, stops it exactly once
        click.echo(f"up: shop at http://{host}:{port}/shop/ — API under /api/, "
                   "Ctrl-C to stop", err=True)
        while all(p.poll() is None for p in processes):
            time.sleep(0.2)
        failed = [p for p in processes if p.returncode]
        _stop(processes)
        if failed:
            raise click.ClickException(f"a component exited with {failed[0].returncode}")
    except (KeyboardInterrupt, _Stop):
        click.echo("up: stopping", err=True)
        _stop(processes)
    finally:
        signal.signal(signal.SIGTERM, previous)
