"""Shadow comparison throughput on one core: comparisons/s of ~1 KB JSON answer pairs.

    python -m bench shadow_throughput [--pairs 2000] [--seconds 2]

Pairs are shop orders (:mod:`bench._shadow_shop`), in four kinds:

* ``identical``: byte-equal answers (fast path);
* ``reserialised``: equal content, other key order and ``10`` vs ``10.0``;
* ``noisy``: a real monolith pair — timestamp, request id and tag order differ;
* ``defect``: noisy plus one real difference (a changed price).

Measured: ``judge()`` per exchange (parse by content type, structural diff, ignore
rules, lag check) and the engine's whole batch step (``judge`` + tallies + sample
choice, store writes excluded — they happen in batches on the same thread), once for
decoded exchanges (``submit``) and once for raw ones as the proxy's mirror hands them
over (``submit_raw``: byte-identical pairs are tallied without decoding or parsing). Named
reference in the same run: ``orjson.loads`` of both bodies plus ``==`` — the floor for
any JSON-aware comparison. Rates are per second of process CPU time, single thread.
Prints JSON with ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from bench._shadow_shop import answer

GOAL = 20_000.0


def _obs(target: str, body: bytes) -> Any:
    from strangler_proxy.shadow.observation import Observation

    return Observation(target, 200, (("content-type", "application/json"),), body, 0.003)


def make_pairs(kind: str, n: int, seed: int = 1) -> list[Any]:
    from strangler_proxy.shadow.observation import Exchange, ObservedRequest

    rng = random.Random(seed)
    out = []
    for i in range(n):
        oid = rng.choice([k for k in range(1, 400) if k % 7])
        _, doc = answer("good", oid, rng)
        doc["note"] = "x" * max(0, 1000 - len(json.dumps(doc)) - 12)  # pad to ~1 KB
        primary = json.dumps(doc).encode()
        if kind == "identical":
            candidate = primary
        elif kind == "reserialised":
            other = dict(reversed(list(doc.items())))
            other["id"] = float(other["id"])
            candidate = json.dumps(other, indent=1).encode()
        else:
            _, again = answer("good", oid, rng)
            again["note"] = doc["note"]
            if kind == "defect":
                again["items"][0]["unit_price"] = "0.01"
            candidate = json.dumps(again).encode()
        request = ObservedRequest(
            "shop", "/api/orders/{id}", "GET", f"/api/orders/{oid}", "", (), b"", f"r{i}",
            time.time(),
        )
        out.append(Exchange(request, _obs("monolith", primary), _obs("candidate", candidate)))
    return out


def rate(fn: Callable[[Sequence[Any]], object], items: Sequence[Any], seconds: float) -> float:
    """Items per second of this process's CPU time (other jobs on a shared machine
    stretch wall time, not CPU time)."""
    fn(items[:100])  # warm up
    done, started = 0, time.process_time()
    while True:
        fn(items)
        done += len(items)
        elapsed = time.process_time() - started
        if elapsed >= seconds:
            return done / elapsed


@dataclass
class _Raw:
    """A raw exchange as the proxy's mirror hands it to the engine (``RawExchange``)."""

    service: str
    route: str
    method: str
    ts: float
    primary_status: int
    primary_headers: tuple[tuple[bytes, bytes], ...]
    primary_body: bytes
    candidate_status: int | None
    candidate_headers: tuple[tuple[bytes, bytes], ...]
    candidate_body: bytes
    decoded: Any
    candidate_error: str | None = None
    secondary: Any = None

    def exchange(self) -> Any:
        return self.decoded

    @classmethod
    def of(cls, ex: Any) -> _Raw:
        def raw(headers: Any) -> tuple[tuple[bytes, bytes], ...]:
            return tuple((n.encode("latin-1"), v.encode("latin-1")) for n, v in headers)

        req, p, c = ex.request, ex.primary, ex.candidate
        return cls(req.service, req.route, req.method, req.ts, p.status, raw(p.headers),
                   p.body, c.status, raw(c.headers), c.body, ex)


class _NullStore:
    def write(self, tallies: Any, samples: Any = ()) -> None:
        return None

    def sample_counts(self) -> dict[Any, int]:
        return {}

    def prune(self, **kwargs: Any) -> dict[str, int]:
        return {}

    def close(self) -> None:
        return None


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench shadow_throughput")
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args(argv)

    from strangler_proxy.shadow.engine import ShadowEngine
    from strangler_proxy.shadow.result import judge
    from strangler_proxy.shadow.rules import rules_from_mapping

    rules = rules_from_mapping({"ignore": ["$.id"], "noise_sample": 0.5}).default

    def judge_all(items: Sequence[Any]) -> None:
        for ex in items:
            judge(ex, rules)

    def reference(items: Sequence[Any]) -> None:
        for ex in items:
            _ = orjson.loads(ex.primary.body) == orjson.loads(ex.candidate.body)

    engine = ShadowEngine(_NullStore(), lambda s, r: rules, start=False)  # type: ignore[arg-type]

    def engine_batch(items: Sequence[Any]) -> None:
        engine.process(items)
        engine._pending.clear()  # what the store write would take away
        engine._pending_samples.clear()

    def engine_raw_batch(items: Sequence[Any]) -> None:
        engine.process_items(items)
        engine._pending.clear()
        engine._pending_samples.clear()

    kinds: dict[str, Any] = {}
    for kind in ("identical", "reserialised", "noisy", "defect"):
        pairs = make_pairs(kind, args.pairs)
        size = sum(len(p.primary.body) + len(p.candidate.body) for p in pairs) / (2 * len(pairs))
        ref = rate(reference, pairs, args.seconds)
        got = rate(judge_all, pairs, args.seconds)
        batch = rate(engine_batch, pairs, args.seconds)
        raw_batch = rate(engine_raw_batch, [_Raw.of(p) for p in pairs], args.seconds)
        kinds[kind] = {
            "body_bytes": round(size),
            "judge_per_s": round(got),
            "engine_batch_per_s": round(batch),
            "engine_raw_batch_per_s": round(raw_batch),
            "reference_orjson_loads_eq_per_s": round(ref),
            "judge_vs_reference": round(got / ref, 3),
        }
    engine.close()
    worst = min(k["engine_batch_per_s"] for k in kinds.values())
    print(
        json.dumps(
            {
                "kinds": kinds,
                "goal_per_s": GOAL,
                "worst_engine_batch_per_s": worst,
                "goal_met": worst >= GOAL,
                "cores_used": 1,
                "machine": {
                    "python": platform.python_version(),
                    "cpu": platform.processor() or platform.machine(),
                    "cores": os.cpu_count(),
                },
            },
            indent=2,
        )
    )
    return 0 if worst >= GOAL else 1


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
