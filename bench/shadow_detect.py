"""Shadow detection quality: is every broken candidate flagged, and the good one never?

    python -m bench shadow_detect [--requests 200] [--check-every 5] [--noise-sample 0.5]

Starts, on 127.0.0.1, a shop-like monolith and one candidate server
(:mod:`bench._shadow_shop`) and the real proxy (``strangle proxy``) with the comparison
engine as its shadow sink, one service per variant in shadow stage. Generated traffic
(random order ids, ~1 in 7 not found) goes through the proxy round-robin over the
variants; every ``--check-every`` rounds the report is rebuilt from the shadow store.

A variant counts as detected at the first check where one of the fields its defect
touches is flagged. Prints JSON: per variant whether it was flagged, after how many of
its requests, which fields, and any other field flagged at any check; for the good
candidate the falsely flagged fields (at the end and at any check). The named reference,
measured on the same stored comparisons, is a naive field diff without noise
cancellation (what a report would flag if it only subtracted ignore rules).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._shadow_shop import EXPECTED, VARIANTS

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process {proc.args!r} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port}")


def start(argv: list[str], port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    out = log.open("ab")
    proc = subprocess.Popen(argv, env=full_env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    wait_for_port(port, proc)
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def shop(role: str, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "bench._shadow_shop:app", "--host", "127.0.0.1",
            "--port", str(port), "--no-access-log", "--log-level", "warning"]
    return start(argv, port, {"SHOP_ROLE": role}, log), f"http://127.0.0.1:{port}"


def plan_text(monolith: str, candidate: str, noise_sample: float) -> str:
    lines = [
        "version: 1",
        f"monolith: {{url: {monolith}}}",
        'shadow_store: {url: "sqlite:///shadow.db", max_samples: 5}',
        "proxy: {shadow_queue: 10000}",
        "services:",
    ]
    for v in VARIANTS:
        lines += [
            f"  {v}:",
            f"    url: {candidate}",
            f'    routes: [{{path: "/api/{v}/orders/{{id}}", methods: [GET]}}]',
            "    stage: shadow",
            f"    shadow: {{sample: 1.0, noise_sample: {noise_sample}}}",
            "    gates: {min_samples: 50, max_mismatch_rate: 0.01, max_error_rate: 0.01}",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench shadow_detect")
    parser.add_argument("--requests", type=int, default=200, help="requests per variant")
    parser.add_argument("--check-every", type=int, default=5)
    parser.add_argument("--noise-sample", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    from strangler_proxy.plan.io import load_plan
    from strangler_proxy.shadow.report import report_from_store
    from strangler_proxy.shadow.sink import service_rules, store_settings
    from strangler_proxy.shadow.store import ShadowStore

    work = Path(tempfile.mkdtemp(prefix="shadow-detect-"))
    log = work / "servers.log"
    procs: list[subprocess.Popen[bytes]] = []
    rng = random.Random(args.seed)
    try:
        mono, mono_url = shop("monolith", log)
        procs.append(mono)
        cand, cand_url = shop("candidate", log)
        procs.append(cand)
        plan_path = work / "migration_plan.yaml"
        plan_path.write_text(plan_text(mono_url, cand_url, args.noise_sample))
        port = free_port()
        strangle = str(Path(sys.executable).with_name("strangle"))
        procs.append(
            start(
                [strangle, "proxy", "--plan", str(plan_path), "--port", str(port),
                 "--log-level", "warning"],
                port,
                {"STRANGLER_SINK": "strangler_proxy.shadow.sink:engine_from_plan",
                 "STRANGLER_ACCESS_LOG": "0"},
                log,
            )
        )
        loaded = load_plan(plan_path)
        url, _, _ = store_settings(loaded.plan, loaded.path)
        rules = {v: service_rules(loaded.plan.services[v]) for v in VARIANTS}
        store: ShadowStore | None = None

        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        detected: dict[str, int | None] = {v: None for v in VARIANTS}
        wrong_flags_seen: dict[str, set[str]] = {v: set() for v in VARIANTS}
        started = time.perf_counter()
        sent = 0
        for n in range(1, args.requests + 1):
            for v in VARIANTS:
                conn.request("GET", f"/api/{v}/orders/{rng.randint(1, 500)}")
                resp = conn.getresponse()
                resp.read()
                sent += 1
            if n % args.check_every and n != args.requests:
                continue
            if store is None:
                store = ShadowStore(url)
            _wait_compared(store, n)
            for v in VARIANTS:
                report = report_from_store(store, v, now=time.time(), rules=rules[v], examples=0)
                flagged = {p for e in report.endpoints for p in e.flagged}
                wrong_flags_seen[v].update(flagged - set(EXPECTED[v]))
                if detected[v] is None and flagged & set(EXPECTED[v]):
                    detected[v] = n
        elapsed = time.perf_counter() - started
        conn.close()

        assert store is not None
        result: dict[str, Any] = {"variants": {}, "good": {}}
        for v in VARIANTS:
            report = report_from_store(store, v, now=time.time(), rules=rules[v], examples=0)
            [e] = report.endpoints
            naive = sorted({f.path for f in e.fields if f.status != "ignored"})
            if v == "good":
                result["good"] = {
                    "false_flagged_fields": list(e.flagged),
                    "false_flags_seen_at_any_check": sorted(wrong_flags_seen[v]),
                    "noise_cancelled_fields": list(e.noise_paths),
                    "raw_mismatch_rate": round(e.raw_mismatch_rate, 4),
                    "mismatch_rate_after_noise": round(e.mismatch_rate, 4),
                    "reference_naive_flagged_fields": naive,
                    "samples": e.samples,
                    "noise_samples": e.noise_samples,
                }
                continue
            expected = set(EXPECTED[v])
            result["variants"][v] = {
                "flagged": detected[v] is not None,
                "after_requests": detected[v],
                "flagged_fields": list(e.flagged),
                "expected_fields": sorted(expected),
                "exactly_expected": set(e.flagged) == expected,
                "false_flags_seen_at_any_check": sorted(wrong_flags_seen[v]),
                "mismatch_rate_after_noise": round(e.mismatch_rate, 4),
                "reference_naive_flagged_fields": naive,
            }
        store.close()
        broken = list(result["variants"].values())
        good = result["good"]
        all_flagged = all(b["flagged"] for b in broken)
        result["summary"] = {
            "all_broken_flagged": all_flagged,
            "max_requests_to_flag": max(b["after_requests"] or 0 for b in broken)
            if all_flagged
            else None,
            "false_flagged_fields_good": len(good["false_flagged_fields"]),
            "reference_naive_false_flagged_fields_good": len(
                good["reference_naive_flagged_fields"]
            ),
            "goal_met": all_flagged
            and all(b["after_requests"] <= 200 for b in broken)
            and not good["false_flagged_fields"],
            "requests_per_variant": args.requests,
            "check_every": args.check_every,
            "noise_sample": args.noise_sample,
            "requests_sent": sent,
            "wall_s": round(elapsed, 2),
            "path": "client -> strangle proxy (shadow stage) -> monolith; mirror -> candidate "
            "(+ monolith again for noise) -> engine -> SQLite store -> report",
        }
        result["machine"] = {
            "python": platform.python_version(),
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
        }
        print(json.dumps(result, indent=2))
        return 0 if result["summary"]["goal_met"] else 1
    finally:
        for proc in reversed(procs):
            stop(proc)


def _wait_compared(store: Any, n: int, timeout: float = 30.0) -> None:
    """Until every variant has ``n`` comparisons in the store (mirror + engine are async)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counts: dict[str, int] = {}
        for v in VARIANTS:
            counts[v] = sum(t.count for t in store.tallies(v) if t.key.source == "candidate")
        if all(c >= n for c in counts.values()):
            return
        time.sleep(0.05)
    raise TimeoutError(f"comparisons did not reach {n} per variant: {counts}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
