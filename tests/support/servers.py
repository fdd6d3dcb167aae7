"""Real servers for integration tests: uvicorn (or any command) in a subprocess on a
free 127.0.0.1 port, stopped by PID when the test ends."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(
    port: int,
    proc: subprocess.Popen[bytes] | None = None,
    timeout: float = 60,
    log: Server | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            out = log.output() if log is not None else ""
            raise RuntimeError(f"server exited with {proc.returncode} before listening:\n{out}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


@dataclass
class Server:
    port: int
    proc: subprocess.Popen[bytes]
    log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        """Everything the server printed so far (stdout and stderr)."""
        if self.log is None:
            return ""
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_process(argv: Sequence[str], port: int, env: Mapping[str, str] | None = None) -> Server:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    # a file, not a pipe: nobody reads a pipe during the test and a full one would
    # block the server's event loop on its next log line
    log = tempfile.NamedTemporaryFile(prefix=f"server-{port}-", suffix=".log")  # noqa: SIM115
    proc = subprocess.Popen(list(argv), cwd=ROOT, env=full_env, stdout=log, stderr=log)
    server = Server(port, proc, log)
    try:
        wait_for_port(port, proc, log=server)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return server


def start_uvicorn(
    app: str, env: Mapping[str, str] | None = None, port: int | None = None
) -> Server:
    """Run ``module:attribute`` under uvicorn on a free port."""
    port = port or free_port()
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    return start_process(argv, port, env)


@contextmanager
def uvicorn_server(app: str, env: Mapping[str, str] | None = None) -> Iterator[Server]:
    server = start_uvicorn(app, env)
    try:
        yield server
    finally:
        server.stop()


def start_proxy(
    plan: Path, env: Mapping[str, str] | None = None, port: int | None = None
) -> Server:
    """The real proxy, as users start it: ``strangle proxy --plan ...``."""
    port = port or free_port()
    argv = [
        str(Path(sys.executable).with_name("strangle")),
        "proxy",
        "--plan",
        str(plan),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    return start_process(argv, port, env)
