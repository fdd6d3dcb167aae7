"""Start, watch and stop the stack's child processes.

``Supervisor(log_dir)`` starts each :class:`~strangler_proxy.stack.Component` in its own
session (so the terminal's Ctrl-C reaches only ``strangle up``, which then stops the
children itself, in reverse order), with stdout and stderr appended to
``<log_dir>/<name>.log``, and waits until it is ready. Nothing is ever restarted: a
child that exits is reported by :meth:`Supervisor.dead` with its exit code and the end
of its log, and the caller decides.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from strangler_proxy.stack import Component

__all__ = ["ComponentFailed", "Exited", "Running", "Supervisor", "log_tail"]

STOP_TIMEOUT_S = 15.0


class ComponentFailed(RuntimeError):
    """A component exited or never became ready; the message names it and its log."""


@dataclass(frozen=True)
class Exited:
    name: str
    returncode: int
    log_path: Path
    essential: bool

    def describe(self) -> str:
        how = (f"killed by signal {-self.returncode}" if self.returncode < 0
               else f"exited with code {self.returncode}")
        return f"{self.name} {how} — log: {self.log_path}"


@dataclass
class Running:
    component: Component
    process: subprocess.Popen[bytes]
    log_path: Path
    started_at: float
    reported: bool = False

    @property
    def alive(self) -> bool:
        return self.process.poll() is None


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def probe(component: Component, timeout: float = 1.0) -> bool:
    """One readiness check: health URL answers 200, or the TCP port accepts."""
    if component.health_url:
        try:
            with urllib.request.urlopen(component.health_url, timeout=timeout) as response:
                return int(response.status) == 200
        except (urllib.error.URLError, OSError, ValueError):
            return False
    if component.tcp_port:
        try:
            with socket.create_connection(("127.0.0.1", component.tcp_port), timeout=timeout):
                return True
        except OSError:
            return False
    return True


class Supervisor:
    def __init__(self, log_dir: Path, base_env: Mapping[str, str],
                 *, cwd: Path | None = None) -> None:
        self.log_dir = log_dir
        self.base_env = dict(base_env)
        self.cwd = cwd
        self.running: list[Running] = []

    def start(self, component: Component) -> Running:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{component.name}.log"
        log: IO[bytes] = log_path.open("ab")
        try:
            log.write(f"--- strangle up: starting {component.name} at "
                      f"{time.strftime('%Y-%m-%dT%H:%M:%S')}: {' '.join(component.argv)}\n"
                      .encode())
            log.flush()
            process = subprocess.Popen(
                component.argv, env={**self.base_env, **component.env}, cwd=self.cwd,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        finally:
            log.close()  # the child holds its own descriptor
        running = Running(component, process, log_path, time.monotonic())
        self.running.append(running)
        return running

    def wait_ready(self, running: Running, timeout_s: float = 90.0,
                   interrupted: Callable[[], bool] = lambda: False) -> float:
        """Seconds until ready; raises :class:`ComponentFailed` if it exits or times out."""
        began = time.monotonic()
        while True:
            if not running.alive:
                running.reported = True
                raise ComponentFailed(self._failure(running, "exited before it was ready"))
            if probe(running.component):
                return time.monotonic() - began
            if interrupted():
                raise KeyboardInterrupt
            if time.monotonic() - began > timeout_s:
                raise ComponentFailed(self._failure(
                    running, f"not ready after {timeout_s:.0f} s"
                    f" ({running.component.health_url or running.component.tcp_port})"))
            time.sleep(0.2)

    def _failure(self, running: Running, what: str) -> str:
        tail = log_tail(running.log_path)
        code = running.process.returncode
        suffix = f" (exit code {code})" if code is not None else ""
        return (f"{running.component.name} {what}{suffix}; log {running.log_path}"
                + (f", last lines:\n{tail}" if tail else ""))

    def dead(self) -> list[Exited]:
        """Children that exited since the last call (each reported once)."""
        found = []
        for running in self.running:
            if not running.reported and not running.alive:
                running.reported = True
                found.append(Exited(running.component.name, int(running.process.returncode or 0),
                                    running.log_path, running.component.essential))
        return found

    def stop_all(self, timeout_s: float = STOP_TIMEOUT_S,
                 on_stop: Callable[[str], None] = lambda name: None) -> dict[str, int]:
        """SIGTERM each child in reverse start order and wait for it (SIGKILL after
        ``timeout_s``); returns exit codes by name."""
        codes: dict[str, int] = {}
        for running in reversed(self.running):
            process = running.process
            if process.poll() is None:
                on_stop(running.component.name)
                sig = signal.SIGINT if running.component.name == "broker" else signal.SIGTERM
                try:
                    process.send_signal(sig)
                    process.wait(timeout=timeout_s)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
                except ProcessLookupError:
                    pass
            codes[running.component.name] = int(process.returncode or 0)
            running.reported = True
        self.running = []
        return codes
