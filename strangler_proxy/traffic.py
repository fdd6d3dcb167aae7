"""Realistic shop traffic through the proxy: browsing, ordering, notification reads.

    python -m strangler_proxy.traffic --url http://127.0.0.1:8080 --stats var/traffic.json

Each worker repeats a weighted mix — product list and detail pages, shop HTML, placing an
order, reading notifications, templates and preferences — for random customers (sent as
``X-Customer-Id``, the plan's usual canary cohort), at a bounded rate per worker.
Notifications are only read: while the monolith owns their data (``data.owner:
monolith``), a write served by the extracted service would not reach the monolith.
Half the orders are followed, in the worker's next step, by a read of the customer's
notifications, as a shopper checking for the confirmation would: the order's
notification reaches the service by CDC a moment later, and the shadow engine
classifies that difference as lag (the monolith reports the source position its
answers reflect; a re-check confirms it), not as a mismatch. ``--settle-s S`` restores
the old behaviour of never reading a customer's notifications within S seconds of
their order.
A request *fails* when the client gets no answer or a 5xx; 4xx answers are the shop
saying no (e.g. out of stock) and are counted apart. The stats file is rewritten every second.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx


@dataclass
class TrafficStats:
    started: float = field(default_factory=time.time)
    by_kind: Counter[str] = field(default_factory=Counter)
    by_status: Counter[str] = field(default_factory=Counter)
    failures: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    ordered_at: dict[int, float] = field(default_factory=dict, repr=False)
    settle_s: float = 0.0  # no notification reads this long after a customer's order

    def ordered(self, customer: int) -> None:
        with self.lock:
            self.ordered_at[customer] = time.monotonic()

    def settled(self, customer: int) -> bool:
        if self.settle_s <= 0:
            return True
        with self.lock:
            ordered = self.ordered_at.get(customer)
            return ordered is None or time.monotonic() - ordered >= self.settle_s

    def record(self, kind: str, status: int | None, error: str | None = None) -> None:
        with self.lock:
            self.by_kind[kind] += 1
            self.by_status[str(status) if status is not None else "error"] += 1
            if (status is None or status >= 500) and len(self.failures) < 100:
                self.failures.append({"kind": kind, "status": status, "error": error,
                                      "at": round(time.time(), 3)})

    def as_dict(self) -> dict[str, Any]:
        with self.lock:
            failed = sum(n for s, n in self.by_status.items()
                         if s == "error" or (s.isdigit() and int(s) >= 500))
            return {
                "requests": sum(self.by_kind.values()),
                "failed": failed,
                "refused": sum(n for s, n in self.by_status.items()
                               if s.isdigit() and 400 <= int(s) < 500),
                "by_kind": dict(self.by_kind),
                "by_status": dict(self.by_status),
                "failures": list(self.failures),
                "seconds": round(time.time() - self.started, 1),
            }


READ_AFTER_ORDER = 0.5  # share of orders followed at once by a notifications read
MIX = [("browse", 30), ("product", 20), ("page", 5), ("order", 10),
       ("notifications", 25), ("notification", 5), ("preferences", 3), ("templates", 2)]


class Shopper:
    def __init__(self, url: str, stats: TrafficStats, rng: random.Random) -> None:
        self.client = httpx.Client(base_url=url, timeout=30)
        self.stats = stats
        self.rng = rng
        self.customers: list[int] = []
        self.products: list[int] = []
        self.follow_up: int | None = None  # customer who just ordered

    def _request(self, kind: str, method: str, path: str, customer: int | None = None,
                 **kwargs: Any) -> httpx.Response | None:
        headers = {"X-Customer-Id": str(customer)} if customer is not None else {}
        try:
            response = self.client.request(method, path, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            self.stats.record(kind, None, f"{type(exc).__name__}: {exc}")
            return None
        self.stats.record(kind, response.status_code)
        return response

    def _ids(self, path: str, **params: Any) -> list[int]:
        response = self._request("browse", "GET", path, params={"page_size": 100, **params})
        if response is None or response.status_code != 200:
            return []
        return [int(item["id"]) for item in response.json().get("results", [])]

    def step(self) -> None:
        if not self.customers:
            self.customers = self._ids("/api/customers")
        if not self.products:
            self.products = self._ids("/api/catalog/products", active="true")
        if not self.customers or not self.products:
            time.sleep(0.5)
            return
        kind = self.rng.choices([k for k, _ in MIX], [w for _, w in MIX])[0]
        customer = self.rng.choice(self.customers)
        if self.follow_up is not None:  # the step right after an order: check notifications
            kind, customer, self.follow_up = "notifications", self.follow_up, None
        if kind.startswith("notification") and not self.stats.settled(customer):
            kind = "browse"
        if kind == "browse":
            self._request(kind, "GET", "/api/catalog/products", customer,
                          params={"page": self.rng.randint(1, 3), "ordering": "name"})
        elif kind == "product":
            self._request(kind, "GET", f"/api/catalog/products/{self.rng.choice(self.products)}",
                          customer)
        elif kind == "page":
            self._request(kind, "GET", "/shop/", customer)
        elif kind == "order":
            self.stats.ordered(customer)
            placed = self._request(kind, "POST", "/api/orders", customer, json={
                "customer_id": customer,
                "lines": [{"product_id": self.rng.choice(self.products), "quantity": 1}]})
            if (placed is not None and placed.status_code < 400
                    and self.rng.random() < READ_AFTER_ORDER):
                self.follow_up = customer
        elif kind == "notifications":
            self._request(kind, "GET", "/api/notifications", customer,
                          params={"customer_id": customer})
        elif kind == "notification":
            response = self._request("notifications", "GET", "/api/notifications", customer,
                                     params={"customer_id": customer})
            if response is not None and response.status_code == 200:
                found = response.json().get("results") or []
                if found:
                    self._request(kind, "GET", f"/api/notifications/{found[0]['id']}", customer)
        elif kind == "templates":
            self._request(kind, "GET", "/api/notifications/templates", customer)
        else:
            self._request(kind, "GET", f"/api/notifications/preferences/{customer}", customer)

    def close(self) -> None:
        self.client.close()


def run(url: str, *, workers: int, stop: threading.Event, stats: TrafficStats,
        rate_per_worker: float = 10.0, seed: int = 1) -> None:
    def worker(index: int) -> None:
        shopper = Shopper(url, stats, random.Random(seed * 1000 + index))
        try:
            while not stop.is_set():
                began = time.monotonic()
                shopper.step()
                stop.wait(max(0.0, 1.0 / rate_per_worker - (time.monotonic() - began)))
        finally:
            shopper.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m strangler_proxy.traffic")
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--rate", type=float, default=10.0, help="requests/s per worker")
    parser.add_argument("--stats", type=Path, default=Path("var/traffic.json"))
    parser.add_argument("--duration", type=float, default=0.0, help="0: until interrupted")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--settle-s", type=float, default=0.0,
                        help="no notification reads for a customer this many seconds after"
                        " their order (default 0: read right after, as shoppers do)")
    args = parser.parse_args(argv)
    stop = threading.Event()
    stats = TrafficStats(settle_s=args.settle_s)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    runner = threading.Thread(target=run, args=(args.url,), kwargs={
        "workers": args.workers, "stop": stop, "stats": stats, "rate_per_worker": args.rate,
        "seed": args.seed})
    runner.start()
    deadline = time.monotonic() + args.duration if args.duration else None
    args.stats.parent.mkdir(parents=True, exist_ok=True)
    while runner.is_alive():
        _write(args.stats, stats)
        if deadline is not None and time.monotonic() >= deadline:
            stop.set()
        runner.join(1.0)
    _write(args.stats, stats)
    return 0


def _write(path: Path, stats: TrafficStats) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(stats.as_dict(), indent=1))
    tmp.replace(path)


if __name__ == "__main__":
    raise SystemExit(main())
