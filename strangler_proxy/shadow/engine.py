"""The comparison engine: the :class:`ExchangeSink` the proxy's shadow mirror feeds.

``submit()`` / ``submit_raw()`` append the exchange to a bounded in-memory inbox and
return at once (no lock, no thread wake-up: ~0.2 µs); when the inbox is full the
exchange is dropped and counted. One worker thread polls the inbox, compares whole
batches, tallies, picks samples and writes to the store every ``flush_interval_s``,
off the request path. Raw exchanges whose answers are byte-identical (status, compared
headers, body) are counted as matched without being decoded or parsed — right in
``submit_raw``, in the proxy's thread, once the worker has published the rules of that
(service, route): handing every matched pair to the worker cost the proxy more than
the check itself (the worker thread touching each exchange's memory, and GIL hand-offs:
~5 µs of CPU per mirrored request on the proxy bench, against ~1 µs for the check). A
store that fails keeps its tallies pending (merged, bounded by distinct keys) and is
retried.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from strangler_proxy.shadow.compare import Difference, same_raw
from strangler_proxy.shadow.observation import Exchange, Observation, RawExchange
from strangler_proxy.shadow.records import (
    BUCKET_S,
    CANDIDATE,
    NOISE,
    DiffKeys,
    Endpoint,
    Sample,
    TallyKey,
    bucket_of,
    diff_keys,
    tally_keys,
)
from strangler_proxy.shadow.redact import redact_headers
from strangler_proxy.shadow.result import Outcome, Result, judge
from strangler_proxy.shadow.rules import CompareRules
from strangler_proxy.shadow.store import ShadowStore, StoreError

log = logging.getLogger("strangler.shadow")

RulesLookup = Callable[[str, str], CompareRules]  # (service, route) -> rules
MatchKey = tuple[str, str, str, int]  # (service, route, method, bucket)
MAX_QUICK_RULES = 1024  # (service, route) pairs whose rules submit_raw may use
# (exchange, its non-matched result) -> True when the callable took it over to re-ask
Recheck = Callable[[Exchange, Result], bool]
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
        poll_s: float = 0.01,
        recheck: Recheck | None = None,
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
        self.queue_size = queue_size
        self.poll_s = poll_s
        self.recheck = recheck
        # deque append/popleft are atomic: the proxy's threads append, the worker pops
        self._inbox: deque[Exchange | RawExchange] = deque()
        # rules per (service, route) for submit_raw's byte-identical check: only the
        # worker calls rules_for (rule objects are not shared across threads); it
        # publishes a new dict (never mutated afterwards) and refreshes it every
        # flush_interval_s, so a plan reload reaches this check within that time
        self._quick_rules: dict[tuple[str, str], CompareRules] = {}
        self._next_rules = 0.0
        self._matched_lock = threading.Lock()
        self._matched: dict[MatchKey, int] = {}  # counted by submit_raw, merged by the worker
        self._stopped = False
        self._flush_waiters: deque[threading.Event] = deque()
        self._next_write = 0.0
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
        if len(self._inbox) >= self.queue_size or self._stop.is_set():
            self._drops += 1  # only producers write it; a lost increment is harmless
            return
        self._inbox.append(exchange)

    def submit_raw(self, raw: RawExchange) -> None:
        """Like :meth:`submit`, for a mirrored exchange not yet decoded. A pair whose
        answers are byte-identical is counted as matched here and goes no further."""
        if self._stopped:
            self._drops += 1
            return
        if raw.secondary is None and raw.candidate_error is None:
            rules = self._quick_rules.get((raw.service, raw.route))
            if rules is not None and same_raw(
                rules,
                (raw.primary_status, raw.primary_headers, raw.primary_body),
                (raw.candidate_status, raw.candidate_headers, raw.candidate_body),
            ):
                ts = raw.ts
                key = (raw.service, raw.route, raw.method, int(ts // BUCKET_S) * BUCKET_S)
                with self._matched_lock:
                    matched = self._matched
                    matched[key] = matched.get(key, 0) + 1
                return
        if len(self._inbox) >= self.queue_size:
            self._drops += 1
            return
        self._inbox.append(raw)

    def stats(self) -> EngineStats:
        with self._lock:
            return EngineStats(
                self._comparisons + self._unmerged(),
                self._mismatches,
                self._errors,
                self._drops,
                len(self._inbox),
                self._store_errors,
            )

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything submitted so far is compared and written."""
        if not self._thread.is_alive():
            return not (self._inbox or self._pending or self._pending_samples)
        done = threading.Event()
        self._flush_waiters.append(done)
        return done.wait(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Stop accepting, drain what is queued, write it, stop the worker."""
        close_recheck = getattr(self.recheck, "close", None)
        if callable(close_recheck):
            close_recheck()
        self._stopped = True
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
            unmerged = self._unmerged()
        if unmerged:
            outcomes[Outcome.MATCHED.value] = outcomes.get(Outcome.MATCHED.value, 0) + unmerged
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
        waiting: list[threading.Event] = []
        idle = 0  # empty polls in a row: an idle engine polls less often
        while True:
            stopping = self._stop.is_set()
            while self._flush_waiters:  # taken before the inbox is looked at
                waiting.append(self._flush_waiters.popleft())
            batch = self._take_batch()
            try:
                self._take_matched()
                if batch:
                    self.process_items(batch)
                if self._pending or self._pending_samples:
                    now = time.monotonic()
                    if (
                        stopping
                        or waiting
                        or now >= self._next_write
                        or len(self._pending_samples) >= self.batch_size
                    ):
                        self._next_write = now + self.flush_interval_s
                        self._write()
                self._maybe_prune()
                self._refresh_rules()
            except Exception:  # never let the worker die: count, log, go on
                log.exception("shadow engine batch failed")
                with self._lock:
                    self._store_errors += 1
            if batch:
                idle = 0
                continue
            # matches counted by submit_raw alone are merged at the idle pace: no latency
            # matters for them, and a worker looping while they trickle in would contend
            # with the proxy's thread for the GIL
            if waiting and not (self._pending or self._pending_samples):
                for done in waiting:
                    done.set()
                waiting.clear()
            if stopping:
                break
            idle += 1
            # ~10 s without work: 4 wake-ups a second (an idle proxy should stay idle)
            time.sleep(self.poll_s if idle < 50 or waiting
                       else self.poll_s * 5 if idle < 250 else self.poll_s * 25)
        if self._pending or self._pending_samples:
            self._write()

    def _drain_inline(self) -> None:
        self._take_matched()
        while self._inbox:
            self.process_items(self._take_batch())
        self._write()

    def _unmerged(self) -> int:
        """Matched pairs ``submit_raw`` counted that the worker has not merged yet (the
        caller holds ``_lock``: figures read are exact, never counted twice)."""
        if not self._matched:
            return 0
        with self._matched_lock:
            return sum(self._matched.values())

    def _take_matched(self) -> int:
        """Merge what ``submit_raw`` counted as matched into the pending tallies."""
        if not self._matched:
            return 0
        with self._lock:  # taken and counted at once (see _unmerged)
            with self._matched_lock:
                matched, self._matched = self._matched, {}
            self._count_matched(sum(matched.values()))
        return self._tally_matched(matched)

    def _count_matched(self, total: int) -> None:
        self._comparisons += total
        self._outcomes[Outcome.MATCHED.value] += total

    def _tally_matched(self, matched: dict[MatchKey, int]) -> int:
        pending = self._pending
        total = 0
        for (service, route, method, bucket), n in matched.items():
            endpoint = Endpoint(service, route, method)
            pending[TallyKey(endpoint, bucket, CANDIDATE, Outcome.MATCHED.value)] += n
            total += n
        return total

    def _publish_rules(self, found: dict[tuple[str, str], CompareRules]) -> None:
        """Let ``submit_raw`` use these rules (a new dict: readers never see it change)."""
        quick = self._quick_rules
        if len(quick) < MAX_QUICK_RULES:
            self._quick_rules = {**quick, **found}

    def _refresh_rules(self) -> None:
        """Re-read the published rules every ``flush_interval_s`` (plan reloads)."""
        if not self._quick_rules:
            return
        now = time.monotonic()
        if now < self._next_rules:
            return
        self._next_rules = now + self.flush_interval_s
        fresh: dict[tuple[str, str], CompareRules] = {}
        for service, route in self._quick_rules:
            try:
                fresh[(service, route)] = self.rules_for(service, route)
            except Exception:  # process() counts the error when such an exchange comes
                continue
        self._quick_rules = fresh

    def _take_batch(self) -> list[Exchange | RawExchange]:
        inbox = self._inbox
        n = min(len(inbox), self.batch_size)
        return [inbox.popleft() for _ in range(n)]

    def process_items(self, items: Sequence[Exchange | RawExchange]) -> None:
        """One batch from the inbox: byte-identical raw pairs are tallied as matched
        right here; everything else is decoded and goes through :meth:`process`."""
        rules_memo: dict[tuple[str, str], CompareRules | None] = {}
        matched: dict[MatchKey, int] = {}
        full: list[Exchange] = []
        for item in items:
            if isinstance(item, Exchange):
                full.append(item)
                continue
            key = (item.service, item.route)
            if key in rules_memo:
                rules = rules_memo[key]
            else:
                try:
                    rules = self.rules_for(item.service, item.route)
                except Exception:  # process() counts the error
                    rules = None
                rules_memo[key] = rules
            if (
                rules is not None
                and item.secondary is None
                and item.candidate_error is None
                and same_raw(
                    rules,
                    (item.primary_status, item.primary_headers, item.primary_body),
                    (item.candidate_status, item.candidate_headers, item.candidate_body),
                )
            ):
                key4 = (item.service, item.route, item.method, bucket_of(item.ts))
                matched[key4] = matched.get(key4, 0) + 1
            else:
                full.append(item.exchange())
        found = {k: r for k, r in rules_memo.items() if r is not None}
        if found and not found.keys() <= self._quick_rules.keys():
            self._publish_rules(found)
        if matched:
            total = self._tally_matched(matched)
            with self._lock:
                self._count_matched(total)
        if full:
            self.process(full)

    def process(self, batch: Sequence[Exchange]) -> int:
        """Compare a batch and add its tallies and samples to what is pending; returns
        how many mismatched (results are not kept: tallies and samples are all we need)."""
        mismatches = errors = deferred = 0
        outcomes: Counter[str] = Counter()
        recheck = self.recheck
        for exchange in batch:
            req = exchange.request
            try:
                result = judge(exchange, self.rules_for(req.service, req.route))
            except Exception as exc:  # a comparison bug must not lose the tally
                log.exception("comparison failed", extra={"request_id": req.request_id})
                result = Result(Outcome.ERROR, error=f"compare: {type(exc).__name__}")
            if recheck is not None and result.outcome is not Outcome.MATCHED:
                try:
                    taken = recheck(exchange, result)
                except Exception:
                    log.exception("lag recheck failed", extra={"request_id": req.request_id})
                    taken = False
                if taken:  # it comes back as a new exchange once both sides are re-asked
                    deferred += 1
                    continue
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
        if deferred:
            outcomes["deferred"] += deferred
        with self._lock:
            self._comparisons += len(batch) - deferred
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
