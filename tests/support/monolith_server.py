"""Run the real monolith (uvicorn + Django) in a subprocess for black-box tests.

    server = start_monolith(postgres.create_database("shop"), seed=SeedSizes(...))
    httpx.get(f"{server.url}/api/customers")
    server.stop()

``start_monolith`` migrates (and optionally seeds) first, then waits for ``/healthz``.
Use it as a context manager or call ``stop()``; the process is ended by its PID.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import httpx

ROOT = Path(__file__).resolve().parents[2]


class MonolithFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class Seed:
    customers: int = 20
    products: int = 10
    orders: int = 30
    seed: int = 42

    def args(self) -> list[str]:
        return ["--customers", str(self.customers), "--products", str(self.products),
                "--orders", str(self.orders), "--seed", str(self.seed)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path.resolve()}"


@dataclass
class MonolithServer:
    url: str
    database_url: str
    port: int
    workdir: Path
    process: subprocess.Popen[bytes]
    env: dict[str, str] = field(repr=False, default_factory=dict)

    @property
    def log_path(self) -> Path:
        return self.workdir / "monolith.log"

    @property
    def outbox_path(self) -> Path:
        return self.workdir / "outbox.jsonl"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def manage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``python -m monolith <args>`` against this server's database."""
        return run_monolith(list(args), self.env, cwd=self.workdir, check=check)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def __enter__(self) -> MonolithServer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def monolith_env(database_url: str, workdir: Path, extra: dict[str, str] | None = None
                 ) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": database_url,
        "SECRET_KEY": "test-secret-key-" + "x" * 40,
        "DEBUG": "0",
        "NOTIFICATIONS_BACKEND": "outbox",
        "NOTIFICATIONS_OUTBOX": str(workdir / "outbox.jsonl"),
        "PYTHONPATH": str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra or {})
    return env


def run_monolith(args: list[str], env: dict[str, str], *, cwd: Path, check: bool = True
                 ) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "monolith", *args], env=env, cwd=cwd,
                            capture_output=True, text=True, timeout=240)
    if check and result.returncode != 0:
        raise MonolithFailed(
            f"python -m monolith {' '.join(args)} exited {result.returncode}\n"
            f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"
        )
    return result


def start_monolith(database_url: str | None = None, *, port: int | None = None,
                   seed: Seed | None = None, env: dict[str, str] | None = None,
                   workdir: Path | None = None, timeout: float = 60.0) -> MonolithServer:
    """Migrate, optionally seed, and serve the monolith on 127.0.0.1 (free port by default).

    ``database_url`` defaults to a fresh SQLite file in ``workdir`` (a new temp dir).
    """
    workdir = workdir or Path(tempfile.mkdtemp(prefix="strangler-monolith-"))
    database_url = database_url or sqlite_url(workdir / "monolith.sqlite3")
    full_env = monolith_env(database_url, workdir, env)
    run_monolith(["migrate", "-v", "0"], full_env, cwd=workdir)
    if seed is not None:
        run_monolith(["seed", "--no-migrate", *seed.args()], full_env, cwd=workdir)
    port = port or free_port()
    log = (workdir / "monolith.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "monolith", "serve", "--no-migrate", "--host", "127.0.0.1",
         "--port", str(port)],
        env=full_env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT,
    )
    log.close()
    server = MonolithServer(url=f"http://127.0.0.1:{port}", database_url=database_url,
                            port=port, workdir=workdir, process=process, env=full_env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise MonolithFailed(f"monolith exited with {process.returncode}:\n{server.log()}")
        try:
            if httpx.get(f"{server.url}/healthz", timeout=1.0).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.stop()
    raise MonolithFailed(f"monolith not healthy after {timeout}s:\n{server.log()}")
