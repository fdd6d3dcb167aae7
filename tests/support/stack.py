"""Run ``strangle up`` as a user does, in a temp directory, on free ports.

``StackRun.start(tmp_path, traffic=True)`` copies the repository's plan with every port
moved to a free one (the proxy, the monolith, the service, the CDC runner's HTTP),
starts ``strangle up`` as a subprocess with its stdout (JSON status lines) and stderr
in files, and waits until it says the shop is up. ``stop()`` sends SIGINT (Ctrl-C).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from tests.support.monolith_server import ROOT, free_port

READY_MARK = "the shop is at"


def stack_plan(path: Path, *, edit: Callable[[dict[str, Any]], None] | None = None
               ) -> dict[str, int]:
    """The repository's plan with free ports, written to ``path``; returns the ports."""
    yaml = YAML()  # round trip: YAML 1.2 (`on:` stays a string key), comments kept
    plan = yaml.load((ROOT / "migration_plan.yaml").read_text())
    ports = {name: free_port() for name in ("proxy", "monolith", "notifications", "cdc")}
    plan["monolith"]["url"] = f"http://127.0.0.1:{ports['monolith']}"
    plan["services"]["notifications"]["url"] = f"http://127.0.0.1:{ports['notifications']}"
    for other in ("catalog", "orders"):  # not started; only must not clash
        plan["services"][other]["url"] = f"http://127.0.0.1:{free_port()}"
    plan["cdc"]["http"] = {"host": "127.0.0.1", "port": ports["cdc"]}
    if edit is not None:
        edit(plan)
    with path.open("w") as f:
        yaml.dump(plan, f)
    return ports


@dataclass
class StackRun:
    workdir: Path
    plan_path: Path
    ports: dict[str, int]
    process: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path
    env: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def start(cls, workdir: Path, *, traffic: bool = False, plan_path: Path | None = None,
              ports: dict[str, int] | None = None, extra: tuple[str, ...] = (),
              edit: Callable[[dict[str, Any]], None] | None = None,
              env: Mapping[str, str] | None = None) -> StackRun:
        """``env``: what the user exports besides the basics, e.g. ``DATABASE_URL``."""
        if plan_path is None:
            plan_path = workdir / "migration_plan.yaml"
            ports = stack_plan(plan_path, edit=edit)
        assert ports is not None
        out, err = workdir / "up.stdout", workdir / "up.stderr"
        process = subprocess.Popen(
            [sys.executable, "-c", "from strangler_proxy.cli import main; main()", "up",
             "--plan", str(plan_path), "--port", str(ports["proxy"]), "--status-interval", "1",
             "--traffic" if traffic else "--no-traffic", *extra],
            cwd=workdir, env=user_env(env), stdout=out.open("wb"), stderr=err.open("wb"),
            stdin=subprocess.DEVNULL)
        run = cls(workdir, plan_path, ports, process, out, err, dict(env or {}))
        run.wait_for(READY_MARK, timeout_s=150)
        return run

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports['proxy']}"

    @property
    def var(self) -> Path:
        return self.workdir / "var"

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait_for(self, text: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while text not in self.stderr():
            if self.process.poll() is not None:
                raise AssertionError(f"strangle up exited {self.process.returncode}:\n"
                                     f"{self.stderr()}\n{self.logs()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} after {timeout_s} s:\n{self.stderr()}")
            time.sleep(0.2)

    def statuses(self) -> list[dict[str, Any]]:
        lines = self.stdout_path.read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def last_status(self, timeout_s: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while not self.statuses():
            assert time.monotonic() < deadline, "no status line from strangle up"
            time.sleep(0.2)
        return self.statuses()[-1]

    def logs(self) -> str:
        logs = self.var / "logs"
        if not logs.exists():
            return ""
        return "\n".join(f"--- {p.name}\n" + p.read_text(errors="replace")[-3000:]
                         for p in sorted(logs.glob("*.log")))

    def stop(self, timeout_s: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise
        return int(self.process.returncode)

    def cli_env(self) -> dict[str, str]:
        """What a user would export in another terminal to drive this stack."""
        token = (self.var / "admin-token").read_text().strip()
        return {**user_env(), "STRANGLER_PROXY_URL": self.url, "STRANGLER_ADMIN_TOKEN": token,
                "STRANGLE_PLAN": str(self.plan_path),
                "DATABASE_URL": f"sqlite:///{(self.var / 'monolith.sqlite3').resolve()}",
                **self.env}


def user_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A clean environment: nothing of the test process leaks into the stack."""
    keep = {k: v for k, v in os.environ.items() if k in ("HOME", "LANG", "TMPDIR")}
    return {**keep, "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
            "PYTHONPATH": str(ROOT), **(extra or {})}


def edit_stage(plan_path: Path, stage: str) -> None:
    """What a user does in an editor: change notifications' `stage:` line and save."""
    text = plan_path.read_text()
    head, sep, rest = text.partition("notifications:")
    rest = re.sub(r"(?m)^(\s+stage:\s*)\S+", lambda m: m.group(1) + stage, rest, count=1)
    tmp = plan_path.with_suffix(".swp")
    tmp.write_text(head + sep + rest)
    tmp.replace(plan_path)
