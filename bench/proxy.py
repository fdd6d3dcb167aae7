"""Proxy throughput and latency vs nginx ``proxy_pass`` to the same backend.

    python -m bench proxy [--duration 3] [--rounds 5] [--connections 32]

Starts the 1 KB JSON backend (``bench/_backend.py``), nginx (one worker, keep-alive
upstream), a blind uvloop byte relay (``bench/_relay.py``: the floor for a Python proxy,
no HTTP work at all) and ``strangle proxy`` (one worker; also a second one with its fast path off,
``proxy_asgi_path``, to show what the protocol-level fast path buys), drives each with
wrk, measures no-load latency with sequential keep-alive requests, and the shadow cases:
100% mirroring to a healthy candidate, to a dead one and to a slow one. All targets run
side by side and are measured in interleaved rounds, in a shuffled order each round.

The machine is shared and noisy: the same process measured twice a minute apart often
differs by 5-10 %. So every ratio is paired: computed within each round (the two runs a
minute apart at most) and the median over rounds is reported, with every run and every
round's ratio. The shadow cases are measured twice: as separate proxies (shadow vs plain
proxy, in the rounds above) and in one proxy whose plan has a plain route and a shadowed
one, measured plain / shadowed / plain back to back (``same_process_*``; separate
processes differ by up to ~2 us CPU per request by where the scheduler puts them).
Prints one JSON object.

Needs ``nginx`` and ``wrk`` (Debian: ``apt-get install -y nginx wrk``); when missing and
running as root the bench installs them, otherwise it says what to install and exits 2.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench._python_cost import python_cost

ROOT = Path(__file__).resolve().parents[1]
PATH = "/api/items/42?expand=1"
PAIRED_PATH = "/api/plain/42?expand=1"
PLAN = """
version: 1
monolith: {{url: "http://127.0.0.1:{backend}"}}
proxy: {{shadow_queue: 1000}}
services:
  items:
    url: "http://127.0.0.1:{candidate}"
    routes: [{{path: "/api/items/{{id}}", methods: [GET]}}]
    stage: {stage}
    shadow: {{sample: 1.0}}
"""
PAIRED = PLAN + """\
  plain:
    url: "http://127.0.0.1:{candidate}"
    routes: [{{path: "/api/plain/{{id}}", methods: [GET]}}]
    stage: monolith
"""
NGINX = """
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log {tmp}/nginx-access.log;
    keepalive_requests 1000000;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    upstream backend {{
        server 127.0.0.1:{backend};
        keepalive 64;
        keepalive_requests 1000000;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }}
    }}
}}
"""


def ensure_tools() -> None:
    missing = [t for t in ("nginx", "wrk") if shutil.which(t) is None]
    if not missing:
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print(f"installing {' '.join(missing)} with apt-get ...", file=sys.stderr)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env)
        return
    print(f"missing {', '.join(missing)}: install them (Debian/Ubuntu: "
          f"sudo apt-get install -y nginx wrk) and run again", file=sys.stderr)
    sys.exit(2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {port}")


PIDS: dict[int, int] = {}  # listening port -> server process id


def process_tree(pid: int) -> list[int]:
    found = [pid]
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            children = Path(f"/proc/{pid}/task/{task}/children").read_text().split()
        except OSError:
            continue
        for child in children:
            found += process_tree(int(child))
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children (nginx: master + worker)."""
    ticks = 0
    for p in process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def start(stack: ExitStack, argv: list[str], port: int, log: Path,
          env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    out = log.open("wb")
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                            env={**os.environ, **(env or {})})

    def stop() -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT if argv[0] != "nginx" else signal.SIGQUIT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        out.close()

    stack.callback(stop)
    wait_port(port)
    PIDS[port] = proc.pid
    return proc


def backend(stack: ExitStack, tmp: Path, delay: float = 0.0) -> int:
    port = free_port()
    start(stack, [sys.executable, "-m", "bench._backend", str(port), str(delay)], port,
          tmp / f"backend-{port}.log")
    return port


def asgi_backend(stack: ExitStack, tmp: Path) -> int:
    port = free_port()
    start(stack, [sys.executable, "-m", "uvicorn", "bench._backend:asgi_app", "--port",
                  str(port), "--loop", "uvloop", "--http", "httptools", "--no-access-log",
                  "--log-level", "warning", "--lifespan", "off"], port,
          tmp / f"asgi-backend-{port}.log")
    return port


def proxy(stack: ExitStack, tmp: Path, backend_port: int, candidate_port: int,
          stage: str, env: dict[str, str] | None = None, plan_text: str = PLAN) -> int:
    port = free_port()
    # one plan file per proxy: the proxy watches its file, and a shared name let the
    # uvicorn-backend proxy's plan be hot-reloaded into the raw-backend one
    plan = tmp / f"plan-{port}.yaml"
    plan.write_text(plan_text.format(backend=backend_port, candidate=candidate_port,
                                     stage=stage))
    strangle = str(Path(sys.executable).with_name("strangle"))
    start(stack, [strangle, "proxy", "--plan", str(plan), "--port", str(port),
                  "--workers", "1", "--log-level", "warning"], port,
          tmp / f"proxy-{port}.log", env)
    return port


def relay(stack: ExitStack, tmp: Path, backend_port: int) -> int:
    port = free_port()
    start(stack, [sys.executable, "-m", "bench._relay", str(port), str(backend_port)], port,
          tmp / f"relay-{port}.log")
    return port


def nginx(stack: ExitStack, tmp: Path, backend_port: int) -> int:
    port = free_port()
    home = tmp / f"nginx-{port}"
    for d in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (home / d).mkdir(parents=True, exist_ok=True)
    conf = home / "nginx.conf"
    conf.write_text(NGINX.format(tmp=home, backend=backend_port, port=port))
    start(stack, ["nginx", "-c", str(conf), "-p", str(home)], port, home / "nginx.log")
    return port


_WRK_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_WRK_PCT = re.compile(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_WRK_ERR = re.compile(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)")
_WRK_N = re.compile(r"(\d+) requests in")


def wrk(port: int, duration: int, connections: int, path: str = PATH) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}{path}"
    pid = PIDS.get(port)
    cpu0 = cpu_seconds(pid) if pid else 0.0
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", url],
        capture_output=True, text=True, check=True,
    ).stdout
    cpu1 = cpu_seconds(pid) if pid else 0.0
    m = _WRK_RPS.search(out)
    n = _WRK_N.search(out)
    if m is None:
        raise RuntimeError(f"cannot parse wrk output:\n{out}")
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    pct = {f"p{p}_ms": round(float(v) * scale[u], 3) for p, v, u in _WRK_PCT.findall(out)}
    errors = [e.group(0) for e in _WRK_ERR.finditer(out)]
    cpu = {}
    if pid and n and int(n.group(1)):
        cpu = {"cpu_us_per_request": round((cpu1 - cpu0) / int(n.group(1)) * 1e6, 2)}
    return {"rps": float(m.group(1)), **pct, **cpu, **({"errors": errors} if errors else {})}


def shadow_outcomes(port: int) -> dict[str, float]:
    """The proxy's shadow counters (mirror outcomes, comparison outcomes) from /metrics."""
    import urllib.request

    url = f"http://127.0.0.1:{port}/_strangler/metrics"
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    found: dict[str, float] = {}
    for line in text.splitlines():
        m = re.match(r'strangler_shadow_(total|comparisons_total)\{outcome="(\w+)"', line)
        if m:
            key = ("mirror:" if m.group(1) == "total" else "compare:") + m.group(2)
            found[key] = found.get(key, 0.0) + float(line.rsplit(" ", 1)[1])
    return found


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else ()
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "loadavg_at_start": [round(x, 2) for x in load]}


def sequential_samples(port: int, n: int) -> list[float]:
    """Milliseconds per request for n sequential requests on one keep-alive connection."""
    request = f"GET {PATH} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()
    samples = []
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(n + 100):
            t0 = time.perf_counter()
            s.sendall(request)
            buf = b""
            while True:
                buf += s.recv(65536)
                end = buf.find(b"\r\n\r\n")
                if end >= 0:
                    m = re.search(rb"content-length: *(\d+)", buf[:end], re.I)
                    if m and len(buf) >= end + 4 + int(m.group(1)):
                        break
            if i >= 100:  # warm-up
                samples.append((time.perf_counter() - t0) * 1000)
    return samples


def summarize(samples: list[float]) -> dict[str, float]:
    samples = sorted(samples)
    return {
        "p50_ms": round(statistics.median(samples), 4),
        "p99_ms": round(samples[int(len(samples) * 0.99)], 4),
        "mean_ms": round(statistics.fmean(samples), 4),
        "n": len(samples),
    }


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench proxy")
    ap.add_argument("--duration", type=int, default=3, help="seconds per wrk run")
    ap.add_argument("--rounds", type=int, default=5,
                    help="interleaved rounds; figures are medians over rounds")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--latency-requests", type=int, default=1000, help="per round")
    ap.add_argument("--skip-shadow", action="store_true")
    ap.add_argument("--skip-asgi-path", action="store_true",
                    help="skip the proxy with its fast path off (STRANGLER_FAST_PATH=0)")
    ap.add_argument("--skip-asgi-backend", action="store_true",
                    help="skip the second comparison behind a uvicorn (ASGI) backend")
    args = ap.parse_args(argv)
    ensure_tools()
    result: dict[str, Any] = {
        "bench": "proxy",
        "machine": machine(),
        "config": {"duration_s": args.duration, "rounds": args.rounds,
                   "connections": args.connections, "response_bytes": 1024, "path": PATH,
                   "wrk_threads": 1, "nginx_workers": 1, "proxy_workers": 1,
                   "proxy_access_log": "on (to a file)", "nginx_access_log": "on (to a file)"},
    }
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="bench-proxy-") as t:
        tmp = Path(t)
        be = backend(stack, tmp)
        cand = backend(stack, tmp)
        slow = backend(stack, tmp, delay=1.0)
        dead = free_port()
        targets = {"direct": be, "nginx": nginx(stack, tmp, be),
                   "relay": relay(stack, tmp, be),
                   "proxy": proxy(stack, tmp, be, cand, "monolith")}
        if not args.skip_asgi_path:  # the same proxy forwarding everything through ASGI
            targets["proxy_asgi_path"] = proxy(stack, tmp, be, cand, "monolith",
                                               {"STRANGLER_FAST_PATH": "0"})
        if not args.skip_asgi_backend:
            ab = asgi_backend(stack, tmp)
            targets["asgi_direct"] = ab
            targets["asgi_nginx"] = nginx(stack, tmp, ab)
            targets["asgi_proxy"] = proxy(stack, tmp, ab, cand, "monolith")
        paired: dict[str, int] = {}  # case -> a proxy with a plain and a shadowed route
        if not args.skip_shadow:
            for case, candidate in (("healthy", cand), ("dead", dead), ("slow", slow)):
                targets[f"shadow_{case}"] = proxy(stack, tmp, be, candidate, "shadow")
                paired[case] = proxy(stack, tmp, be, candidate, "shadow", plan_text=PAIRED)
        for port in targets.values():  # warm up connections and code paths
            wrk(port, 1, args.connections)
        for port in paired.values():
            wrk(port, 1, args.connections)
            wrk(port, 1, args.connections, PAIRED_PATH)
        lat: dict[str, list[float]] = {n: [] for n in ("direct", "nginx", "proxy")}
        runs: dict[str, list[dict[str, Any]]] = {n: [] for n in targets}
        for case in paired:
            runs[f"same_process_plain_for_{case}"] = []
            runs[f"same_process_{case}"] = []
        order = list(targets)
        cases = list(paired)
        shuffle = random.Random(7).shuffle
        for _ in range(args.rounds):
            for name in lat:
                lat[name] += sequential_samples(targets[name], args.latency_requests)
            shuffle(order)  # no target always runs right after the same neighbour
            for name in order:
                runs[name].append(wrk(targets[name], args.duration, args.connections))
            shuffle(cases)
            for case in cases:  # plain, shadowed, plain: one process, back to back
                port, plain = paired[case], runs[f"same_process_plain_for_{case}"]
                plain.append(wrk(port, args.duration, args.connections, PAIRED_PATH))
                runs[f"same_process_{case}"].append(wrk(port, args.duration, args.connections))
                plain.append(wrk(port, args.duration, args.connections, PAIRED_PATH))
        latency = {name: summarize(samples) for name, samples in lat.items()}
        rps = {name: statistics.median(r["rps"] for r in rs) for name, rs in runs.items()}
        cpu = {name: statistics.median(r.get("cpu_us_per_request", 0.0) for r in rs)
               for name, rs in runs.items()}
        result["latency_no_load"] = latency
        result["throughput_rps_median"] = {k: round(v, 1) for k, v in rps.items()}
        result["cpu_us_per_request_median"] = {k: round(v, 2) for k, v in cpu.items()}
        result["throughput_runs"] = runs
        per_round: dict[str, list[float]] = {}

        def paired_ratio(key: str, num: str, den: str, field: str = "rps") -> float:
            """The median over rounds of num / den within each round (for CPU per
            request: den / num, so that higher is better either way)."""
            a: list[float] = [float(r.get(field, 0.0)) for r in runs[num]]
            b: list[float] = [float(r.get(field, 0.0)) for r in runs[den]]
            if len(b) == 2 * len(a):  # a sandwich: den before and after each num
                b = [(x + y) / 2 for x, y in zip(b[::2], b[1::2], strict=True)]
            each = [x / y if field == "rps" else y / x for x, y in zip(a, b, strict=True)]
            per_round[key] = [round(x, 3) for x in each]
            return round(float(statistics.median(each)), 3)

        def added(name: str, pct: str) -> float:
            return round(latency[name][pct] - latency["direct"][pct], 4)

        ratios: dict[str, float] = {
            "proxy_vs_nginx_throughput": paired_ratio(
                "proxy_vs_nginx_throughput", "proxy", "nginx"),
            # CPU per request is steadier than req/s on a shared machine: nginx's CPU cost
            # divided by ours is the throughput ratio both would reach on an idle core
            "proxy_vs_nginx_cpu_efficiency": paired_ratio(
                "proxy_vs_nginx_cpu_efficiency", "proxy", "nginx", "cpu_us_per_request"),
            # a blind uvloop byte relay (bench/_relay.py): the floor for a Python proxy
            "relay_vs_nginx_throughput": paired_ratio(
                "relay_vs_nginx_throughput", "relay", "nginx"),
            "proxy_vs_relay_throughput": paired_ratio(
                "proxy_vs_relay_throughput", "proxy", "relay"),
            "proxy_added_p50_ms": added("proxy", "p50_ms"),
            "proxy_added_p99_ms": added("proxy", "p99_ms"),
            "nginx_added_p50_ms": added("nginx", "p50_ms"),
            "nginx_added_p99_ms": added("nginx", "p99_ms"),
        }
        if not args.skip_asgi_path:
            for key, field in (("throughput", "rps"), ("cpu_efficiency", "cpu_us_per_request")):
                name = f"fast_path_vs_asgi_path_{key}"
                ratios[name] = paired_ratio(name, "proxy", "proxy_asgi_path", field)
        if not args.skip_asgi_backend:
            for key, field in (("throughput", "rps"), ("cpu_efficiency", "cpu_us_per_request")):
                name = f"asgi_backend_proxy_vs_nginx_{key}"
                ratios[name] = paired_ratio(name, "asgi_proxy", "asgi_nginx", field)
        if not args.skip_shadow:
            for case in ("healthy", "dead", "slow"):
                for key, field in (("vs_plain", "rps"), ("cpu_vs_plain", "cpu_us_per_request")):
                    name = f"shadow_{case}_{key}"
                    ratios[name] = paired_ratio(name, f"shadow_{case}", "proxy", field)
                    name = f"same_process_shadow_{case}_{key}"
                    ratios[name] = paired_ratio(name, f"same_process_{case}",
                                                f"same_process_plain_for_{case}", field)
                ratios[f"shadow_{case}_extra_cpu_us_per_request"] = round(
                    cpu[f"shadow_{case}"] - cpu["proxy"], 2
                )
            # evidence of what each shadow proxy did: mirrored all, skipped, dropped, compared
            result["shadow_outcomes"] = {
                case: shadow_outcomes(targets[f"shadow_{case}"])
                for case in ("healthy", "dead", "slow")
            }
        result["ratios_per_round"] = per_round
        result["ratios"] = ratios
        # the part of the proxy's CPU per request that is its own Python, measured
        # in-process without sockets (bench/_python_cost.py)
        result["python_us_per_request"] = python_cost()
        result["goals"] = {
            "proxy_vs_nginx_throughput": ">= 0.5",
            "asgi_backend_proxy_vs_nginx_throughput": ">= 0.5",
            "proxy_added_p50_ms": "<= 0.25",
            "proxy_added_p99_ms": "<= 1.0",
            "shadow_healthy_vs_plain": ">= 0.65",
            "same_process_shadow_healthy_vs_plain": ">= 0.65",
            "same_process_shadow_dead_vs_plain": ">= 0.95",
            "same_process_shadow_slow_vs_plain": ">= 0.95",
            "shadow_dead_vs_plain": ">= 0.95",
            "shadow_slow_vs_plain": ">= 0.95",
        }
        result["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
