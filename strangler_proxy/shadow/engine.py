"""The comparison engine: the :class:`ExchangeSink` the proxy's shadow mirror feeds.

``submit()`` puts the exchange on a bounded queue and returns at once; when the queue
is full the exchange is dropped and counted. One worker thread compares, tallies,
picks samples and writes to the store in batches, off the request path. A store that
fails keeps its tallies pending (merged, bounded by distinct keys) and is retried.
"""

from __future__ import annotations

import base64
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from strangler_proxy.shadow.compare import Difference
from strangler_proxy.shadow.observation import Exchange, Observation
from strangler_proxy.shadow.records import (
    CANDIDATE,
    NOISE,
    DiffKeys,
    Endpoint,
    Sample,
    TallyKey,
    diff_keys,
    tally_keys,
)
from strangler_proxy.shadow.redact import redact_headers
from strangler_proxy.shadow.result import Outcome, Result, judge
from strangler_proxy.shadow.rules import CompareRules
from strangler_proxy.shadow.store import ShadowStore, StoreError

log = logging.getLogger("strangler.shadow")

RulesLookup = Callable[[str, str], CompareRules]  # (service, route) -> rules
MAX_PENDING_SAMPLES = 2000


@dataclass(frozen=True, slots=True)
class EngineStats:
    comparisons: int
    mismatches: int
    errors: int
    drops: int
    queue_depth: int
    store_errors: int


class ShadowEngine:
    """``ShadowEngine(ShadowStore(url), rules_for)`` — call :meth:`close` on shutdown."""

    def __init__(
        self,
        store: ShadowStore,
        rules_for: RulesLookup,
        *,
        queue_size: int = 10_000,
        batch_size: int = 500,
        flush_interval_s: float = 0.5,
        max_samples: int = 20,
        sample_refresh_s: float = 300.0,
        max_body_bytes: int = 1 << 20,
        retention_s: float | None = 14 * 86400,
        prune_interval_s: float = 3600.0,
        clock: Callable[[], float] = time.time,
        registry: Any = None,
        start: bool = True,
    ) -> None:
        self.store = store
        self.rules_for = rules_for
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.max_samples = max_samples
        self.sample_refresh_s = sample_refresh_s
        self.max_body_bytes = max_body_bytes
        self.retention_s = retention_s
        self.prune_interval_s = prune_interval_s
        self.clock = clock
        self._queue: queue.Queue[Exchange] = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()
        self._comparisons = self._mismatches = self._errors = 0
        self._drops = self._store_errors = 0
        self._pending: Counter[TallyKey] = Counter()
        self._pending_samples: list[Sample] = []
        self._sample_counts: dict[tuple[Endpoint, str, str], int] | None = None
        self._sample_last: dict[tuple[Endpoint, str, str], float] = {}
        self._last_prune = 0.0
        self._stop = threading.Event()
        self._outcomes: Counter[str] = Counter()
        if registry is not None:
            registry.register(self)
        self._thread = threading.Thread(target=self._run, name="shadow-engine", daemon=True)
        if start:
            self._thread.start()

    # -- the sink -------------------------------------------------------------------

    def submit(self, exchange: Exchange) -> None:
        if self._stop.is_set():
            self._drop()
            return
        try:
            self._queue.put_nowait(exchange)
        except queue.Full:
            self._drop()

    def _drop(self) -> None:
        with self._lock:
            self._drops += 1

    def stats(self) -> EngineStats:
        with self._lock:
            return EngineStats(
                self._comparisons,
                self._mismatches,
                self._errors,
                self._drops,
                self._queue.qsize(),
                self._store_errors,
            )

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything submitted so far is compared and written."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._queue.unfinished_tasks == 0 and not self._pending:
                return True
            time.sleep(0.01)
        return False

    def close(self, timeout: float = 10.0) -> None:
        """Stop accepting, drain what is queued, write it, stop the worker."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        else:
            self._drain_inline()
        self.store.close()

    def collect(self) -> Iterator[Any]:
        """Prometheus collector: ``registry.register(engine)`` exposes these on scrape."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        stats = self.stats()
        with self._lock:
            outcomes = dict(self._outcomes)
        compared = CounterMetricFamily(
            "strangler_shadow_comparisons", "Shadow comparisons by outcome.", labels=["outcome"]
        )
        for outcome, n in sorted(outcomes.items()):
            compared.add_metric([outcome], n)
        yield compared
        yield CounterMetricFamily(
            "strangler_shadow_compare_drops",
            "Exchanges dropped: comparison queue full.",
            stats.drops,
        )
        yield CounterMetricFamily(
            "strangler_shadow_store_errors", "Failed shadow store writes.", stats.store_errors
        )
        yield GaugeMetricFamily(
            "strangler_shadow_compare_queue_depth",
            "Exchanges waiting for comparison.",
            stats.queue_depth,
        )

    # -- the worker -----------------------------------------------------------------

    def _run(self) -> None:
        while not (self._stop.is_set() and self._queue.empty()):
            batch = self._take_batch()
            try:
                if batch:
                    self.process(batch)
                if batch or self._pending:
                    self._write()
                self._maybe_prune()
            except Exception:  # never let the worker die: count, log, go on
                log.exception("shadow engine batch failed")
                with self._lock:
                    self._store_errors += 1
            finally:
                for _ in batch:
                    self._queue.task_done()
        if self._pending or self._pending_samples:
            self._write()

    def _drain_inline(self) -> None:
        batch: list[Exchange] = []
        while True:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        if batch:
            self.process(batch)
            for _ in batch:
                self._queue.task_done()
        self._write()

    def _take_batch(self) -> list[Exchange]:
        batch: list[Exchange] = []
        deadline = time.monotonic() + self.flush_interval_s
        while len(batch) < self.batch_size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                batch.append(self._queue.get(timeout=min(remaining, 0.05)))
            except queue.Empty:
                if batch or self._stop.is_set():
                    break
        return batch

    def process(self, batch: Sequence[Exchange]) -> int:
        """Compare a batch and add its tallies and samples to what is pending; returns
        how many mismatched (results are not kept: tallies and samples are all we need)."""
        mismatches = errors = 0
        outcomes: Counter[str] = Counter()
        for exchange in batch:
            req = exchange.request
            try:
                result = judge(exchange, self.rules_for(req.service, req.route))
            except Exception as exc:  # a comparison bug must not lose the tally
                log.exception("comparison failed", extra={"request_id": req.request_id})
                result = Result(Outcome.ERROR, error=f"compare: {type(exc).__name__}")
            endpoint = Endpoint(req.service, req.route, req.method)
            keys = diff_keys(result)
            pending = self._pending
            for key in tally_keys(endpoint, req.ts, result, keys):
                pending[key] += 1
            if keys[0] or keys[1] or keys[2] or result.error:
                self._pick_samples(endpoint, exchange, result, keys)
            mismatches += result.outcome is Outcome.MISMATCHED
            errors += result.candidate_failed
            outcomes[result.outcome.value] += 1
        with self._lock:
            self._comparisons += len(batch)
            self._mismatches += mismatches
            self._errors += errors
            self._outcomes.update(outcomes)
        return mismatches

    def _pick_samples(
        self, endpoint: Endpoint, exchange: Exchange, result: Result, keys: DiffKeys
    ) -> None:
        found, ignored, noisy = keys
        wanted = [(k, CANDIDATE) for k in found] + [(k, CANDIDATE) for k in ignored]
        wanted += [(k, NOISE) for k in noisy]
        if result.outcome is Outcome.ERROR and result.error:
            wanted.append((result.error, CANDIDATE))
        if self._sample_counts is None:
            try:
                self._sample_counts = self.store.sample_counts()
            except StoreError:
                self._sample_counts = {}
        now = self.clock()
        payload: dict[str, Any] | None = None
        for field, source in dict.fromkeys(wanted):
            key = (endpoint, field, source)
            have = self._sample_counts.get(key, 0)
            if have >= self.max_samples and now - self._sample_last.get(key, 0.0) < (
                self.sample_refresh_s
            ):
                continue
            if len(self._pending_samples) >= MAX_PENDING_SAMPLES:
                return
            if payload is None:
                payload = sample_payload(exchange, result, self.max_body_bytes)
            self._sample_counts[key] = have + 1
            self._sample_last[key] = now
            req = exchange.request
            self._pending_samples.append(
                Sample(endpoint, field, source, req.ts, req.request_id, payload)
            )

    def _write(self) -> None:
        if not self._pending and not self._pending_samples:
            return
        tallies, samples = dict(self._pending), list(self._pending_samples)
        try:
            self.store.write(tallies, samples)
        except StoreError as exc:
            with self._lock:
                self._store_errors += 1
            log.error("shadow store write failed; will retry", extra={"error": str(exc)})
            del self._pending_samples[: max(0, len(self._pending_samples) - MAX_PENDING_SAMPLES)]
            return
        self._pending.clear()
        self._pending_samples.clear()

    def _maybe_prune(self) -> None:
        now = self.clock()
        if now - self._last_prune < self.prune_interval_s:
            return
        self._last_prune = now
        try:
            self.store.prune(now=now, max_age_s=self.retention_s, max_samples=self.max_samples)
            self._sample_counts = None
        except StoreError as exc:
            log.error("shadow store prune failed", extra={"error": str(exc)})


def sample_payload(exchange: Exchange, result: Result, max_body: int) -> dict[str, Any]:
    """Everything needed to inspect one exchange, credentials redacted."""
    req = exchange.request
    return {
        "request": {
            "method": req.method,
            "path": req.path,
            "query": req.query,
            "headers": redact_headers(req.headers),
            "body": _body(req.body, max_body),
        },
        "primary": _observation(exchange.primary, max_body),
        "candidate": _observation(exchange.candidate, max_body),
        "secondary": _observation(exchange.secondary, max_body) if exchange.secondary else None,
        "outcome": result.outcome.value,
        "differences": _differences(result.differences),
        "ignored": _differences(result.ignored),
        "noise": _differences(result.noise or ()),
        "error": result.error,
    }


def _observation(obs: Observation, max_body: int) -> dict[str, Any]:
    return {
        "target": obs.target,
        "status": obs.status,
        "headers": redact_headers(obs.headers),
        "body": _body(obs.body, max_body),
        "duration_s": obs.duration_s,
        "error": obs.error,
        "source_position": obs.source_position,
    }


def _body(body: bytes, max_body: int) -> dict[str, Any]:
    cut = body[:max_body]
    try:
        return {"text": cut.decode("utf-8"), "truncated": len(body) > max_body}
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(cut).decode(), "truncated": len(body) > max_body}


def _differences(diffs: Sequence[Difference]) -> list[dict[str, Any]]:
    return [
        {"path": d.path, "kind": d.kind.value, "primary": d.primary, "candidate": d.candidate}
        for d in diffs
    ]
