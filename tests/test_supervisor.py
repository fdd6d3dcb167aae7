"""strangler_proxy/supervisor.py on real child processes: logs, readiness, loud deaths,
reverse-order stop."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from strangler_proxy.stack import Component
from strangler_proxy.supervisor import ComponentFailed, Supervisor
from tests.support.monolith_server import free_port

SERVE = ("import http.server, sys, signal\n"
         "signal.signal(signal.SIGTERM, lambda *a: (print('bye', flush=True), sys.exit(0)))\n"
         "print('serving', flush=True)\n"
         "http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])),"
         " http.server.SimpleHTTPRequestHandler).serve_forever()\n")


def _server(name: str, port: int) -> Component:
    return Component(name, (sys.executable, "-c", SERVE, str(port)),
                     health_url=f"http://127.0.0.1:{port}/")


def test_children_log_to_their_file_become_ready_and_stop_in_reverse(tmp_path: Path) -> None:
    sup = Supervisor(tmp_path / "logs", {"PATH": "/usr/bin:/bin"}, cwd=tmp_path)
    first = sup.start(_server("first", free_port()))
    assert sup.wait_ready(first, timeout_s=30) >= 0
    second = sup.start(_server("second", free_port()))
    sup.wait_ready(second, timeout_s=30)
    assert sup.dead() == []
    order: list[str] = []
    codes = sup.stop_all(on_stop=order.append)
    assert order == ["second", "first"]
    assert codes == {"second": 0, "first": 0}
    log = (tmp_path / "logs" / "first.log").read_text()
    assert "strangle up: starting first" in log and "serving" in log and "bye" in log


def test_a_child_that_exits_is_reported_once_with_its_code(tmp_path: Path) -> None:
    sup = Supervisor(tmp_path, {})
    sup.start(Component("flaky", (sys.executable, "-c", "import sys; sys.exit(3)"),
                        essential=False))
    deadline = time.monotonic() + 10
    while not (dead := sup.dead()):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert [(d.name, d.returncode, d.essential) for d in dead] == [("flaky", 3, False)]
    assert dead[0].describe() == f"flaky exited with code 3 — log: {tmp_path / 'flaky.log'}"
    assert sup.dead() == []


def test_exiting_before_ready_names_the_log_and_shows_its_end(tmp_path: Path) -> None:
    sup = Supervisor(tmp_path, {})
    crash = Component("crash", (sys.executable, "-c", "raise SystemExit('no database here')"),
                      health_url=f"http://127.0.0.1:{free_port()}/")
    running = sup.start(crash)
    with pytest.raises(ComponentFailed) as failed:
        sup.wait_ready(running, timeout_s=30)
    message = str(failed.value)
    assert message.startswith("crash exited before it was ready (exit code 1); log ")
    assert "no database here" in message
    assert sup.dead() == []  # already reported by wait_ready


def test_never_ready_times_out(tmp_path: Path) -> None:
    sup = Supervisor(tmp_path, {})
    idle = Component("idle", (sys.executable, "-c", "import time; time.sleep(60)"),
                     tcp_port=free_port())
    running = sup.start(idle)
    try:
        with pytest.raises(ComponentFailed, match=r"idle not ready after 1 s"):
            sup.wait_ready(running, timeout_s=1)
    finally:
        sup.stop_all(timeout_s=5)
    assert not running.alive
