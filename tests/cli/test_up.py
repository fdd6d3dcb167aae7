"""``strangle up`` as a user runs it: the whole stack from a fresh directory, status
lines, logs, the admin token, Ctrl-C, restart with data kept, a dying child."""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from strangler_proxy.cli import cli
from strangler_proxy.cli.up import SEED_SIZES
from tests.support.stack import StackRun, stack_plan

COMPONENTS = ["broker", "monolith", "notifications", "cdc", "sink", "sink-back", "capture-back",
              "retry", "proxy"]


def _closed(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
    except httpx.ConnectError:
        return True
    return False


def _service_customers(run: StackRun) -> set[str]:
    with sqlite3.connect(run.var / "notifications.sqlite3") as db:
        return {row[0] for row in db.execute("SELECT email FROM customer")}


def _wait(predicate: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.3)


@pytest.mark.slow
def test_up_runs_the_stack_behind_the_proxy_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    run = StackRun.start(tmp_path)
    try:
        # the public port is the proxy; the monolith answers behind it
        response = httpx.get(f"{run.url}/api/customers", timeout=10)
        assert response.status_code == 200 and response.headers["via"].endswith("strangler")
        assert response.json()["count"] == SEED_SIZES["customers"]
        status = run.last_status()
        assert sorted(status["components"]) == sorted(COMPONENTS)
        assert all(c["up"] for c in status["components"].values())
        assert status["service"] == {"name": "notifications", "stage": "shadow", "percent": None}
        token = (run.var / "admin-token").read_text().strip()
        assert (run.var / "admin-token").stat().st_mode & 0o077 == 0
        assert "admin token: var/admin-token" in run.stderr()
        admin = httpx.get(f"{run.url}/_strangler/status", timeout=5,
                          headers={"authorization": f"Bearer {token}"})
        assert admin.status_code == 200
        for name in COMPONENTS:
            assert (run.var / "logs" / f"{name}.log").stat().st_size > 0
        # the seed reached the service through CDC, and so does a new customer
        _wait(lambda: len(_service_customers(run)) == SEED_SIZES["customers"], 60,
              "the seeded customers did not reach the service")
        httpx.post(f"{run.url}/api/customers", json={"email": "first@example.com",
                                                     "name": "First"}, timeout=10)
        _wait(lambda: "first@example.com" in _service_customers(run), 30,
              "a new customer did not reach the service")
    finally:
        code = run.stop()
    assert code == 0, run.stderr()
    stderr = run.stderr()
    stops = [stderr.index(f"stopping {name}\n") for name in reversed(COMPONENTS)]
    assert stops == sorted(stops), "components must stop in reverse start order"
    for port in run.ports.values():
        assert _closed(port)

    # again: nothing seeded twice, the same token, and CDC works with the new broker
    again = StackRun.start(tmp_path, plan_path=run.plan_path, ports=run.ports)
    try:
        assert httpx.get(f"{again.url}/api/customers", timeout=10).json()["count"] == (
            SEED_SIZES["customers"] + 1)
        assert (again.var / "admin-token").read_text().strip() == token
        httpx.post(f"{again.url}/api/customers", json={"email": "second@example.com",
                                                       "name": "Second"}, timeout=10)
        _wait(lambda: "second@example.com" in _service_customers(again), 60,
              "CDC did not resume after a restart with a new broker")
    finally:
        assert again.stop() == 0, again.stderr()


@pytest.mark.slow
def test_a_dying_component_is_reported_and_stops_the_stack(tmp_path: Path) -> None:
    run = StackRun.start(tmp_path)
    try:
        sink_pid = run.last_status()["components"]["sink"]["pid"]
        os.kill(sink_pid, signal.SIGKILL)
        run.process.wait(timeout=60)
    finally:
        run.stop()
    assert run.process.returncode == 1
    stderr = run.stderr()
    assert "COMPONENT DOWN: sink killed by signal 9" in stderr
    assert "var/logs/sink.log" in stderr
    assert "the stack was stopped" in stderr
    for port in run.ports.values():
        assert _closed(port)


def test_a_port_clash_is_refused_before_anything_starts(tmp_path: Path) -> None:
    ports = stack_plan(tmp_path / "plan.yaml")
    result = CliRunner().invoke(cli, ["up", "--plan", str(tmp_path / "plan.yaml"), "--port",
                                      str(ports["monolith"]), "--var-dir",
                                      str(tmp_path / "var")])
    assert result.exit_code == 1
    assert "the monolith and the proxy would both listen on port" in result.output
    assert not (tmp_path / "var" / "monolith.sqlite3").exists()


def test_an_invalid_plan_is_refused(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text("version: 1\nmonolith: {url: nope}\n")
    result = CliRunner().invoke(cli, ["up", "--plan", str(plan), "--var-dir",
                                      str(tmp_path / "var")])
    assert result.exit_code == 2
    assert "invalid plan" in result.output
