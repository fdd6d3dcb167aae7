"""`strangle up` as a user runs it: fresh directory, seeded shop, Ctrl-C stops everything."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from strangler_proxy.cli.up import SEED_SIZES
from tests.support.monolith_server import ROOT, free_port


def run_up(workdir: Path, port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", "from strangler_proxy.cli import main; main()", "up",
         "--port", str(port)],
        cwd=workdir, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )


def wait_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("strangle up did not become healthy")


def interrupt(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGINT)
    return process.wait(timeout=30)


def test_up_migrates_seeds_once_serves_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = run_up(tmp_path, port)
    try:
        wait_healthy(url, process)
        customers = httpx.get(f"{url}/api/customers").json()["count"]
        assert customers == SEED_SIZES["customers"]
        assert httpx.get(f"{url}/shop/").status_code == 200
        httpx.post(f"{url}/api/customers",
                   json={"email": "new@example.com", "name": "New"}).raise_for_status()
    finally:
        code = interrupt(process)
    assert code == 0
    assert (tmp_path / "var" / "monolith.sqlite3").exists()
    with httpx.Client() as client:
        try:
            client.get(f"{url}/healthz", timeout=1)
            raise AssertionError("server still running after Ctrl-C")
        except httpx.ConnectError:
            pass

    again = run_up(tmp_path, port)
    try:
        wait_healthy(url, again)
        assert httpx.get(f"{url}/api/customers").json()["count"] == SEED_SIZES["customers"] + 1
    finally:
        assert interrupt(again) == 0
