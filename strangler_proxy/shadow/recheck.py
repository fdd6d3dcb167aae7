"""Re-checking mismatches that might be replication delay, off the hot path.

The comparison engine calls a :class:`LagRecheck` with every result that is not a
match. When :func:`~strangler_proxy.shadow.lag.wants_recheck` says the difference
might be the candidate's data being behind (a safe request; the candidate behind the
monolith's source position, or CDC-fed with no monolith position to compare with),
the exchange is queued here instead of being counted, and a worker thread:

1. asks the monolith the same request again (its answer carries the position it
   reflects, when the monolith reports one);
2. asks the candidate, and keeps asking (every ``poll_s``, backing off to 1 s) while
   its position is behind that answer's — so the pair compared is one where the
   candidate has applied everything the monolith's answer reflects;
3. compares the pair with the same rules: equal → **lag** (the first difference was
   the delay), still different with the candidate caught up → **mismatch**; when
   positions cannot be compared, it pauses (``settle_s``, doubling) and asks both
   again, and a pair still different at ``max_wait_s`` is a mismatch (**unresolved**).

The verdict goes back to the engine as a new exchange tagged with it (the original
exchange for lag, so the report's lag samples show what differed; the caught-up pair
for a mismatch). Lag is only ever claimed when a re-check confirmed it: with the
queue full an exchange is counted as a mismatch at once (``skipped``) — the proxy and
the engine never wait. Counters: :meth:`collect`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

import httpx

from strangler_proxy.shadow.lag import (
    EXPECTED_POSITION_TAG,
    NOT_RECHECKED,
    RECHECKED_BEHIND,
    RECHECKED_CURRENT,
    LagVerdict,
    RecheckStep,
    classify_lag,
    is_rechecked,
    recheck_step,
    wants_recheck,
)
from strangler_proxy.shadow.observation import (
    SOURCE_POSITION_HEADER,
    Exchange,
    Observation,
    ObservedRequest,
)
from strangler_proxy.shadow.result import Outcome, Result, judge
from strangler_proxy.shadow.rules import CompareRules

log = logging.getLogger("strangler.shadow.recheck")

RulesLookup = Callable[[str, str], CompareRules]
# service name -> (monolith base URL, candidate base URL), or None when unknown
UpstreamLookup = Callable[[str], "tuple[str, str] | None"]

_NOT_FORWARDED = frozenset({
    "host", "content-length", "connection", "keep-alive", "transfer-encoding", "te",
    "trailer", "upgrade", "proxy-authorization", "proxy-connection", "expect",
})


@dataclass(frozen=True, slots=True)
class RecheckSettings:
    """Defaults, or ``RecheckSettings.from_env()``: ``STRANGLER_LAG_RECHECK_MAX_WAIT_S``."""

    max_wait_s: float = 10.0  # from deferral to giving up (a mismatch)
    poll_s: float = 0.1  # between candidate asks while it is behind
    settle_s: float = 0.5  # first pause when positions cannot be compared (doubles)
    timeout_s: float = 5.0  # per upstream request
    queue_size: int = 1000
    workers: int = 4

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RecheckSettings:
        raw = env.get("STRANGLER_LAG_RECHECK_MAX_WAIT_S", "").strip()
        if not raw:
            return cls()
        try:
            wait = float(raw)
        except ValueError:
            wait = -1.0
        if not wait > 0:
            raise ValueError(
                f"STRANGLER_LAG_RECHECK_MAX_WAIT_S must be a positive number of seconds: {raw!r}"
            )
        return cls(max_wait_s=wait)


def with_verdict(exchange: Exchange, verdict: str) -> Exchange:
    tags = tuple(t for t in exchange.tags if t[0] != EXPECTED_POSITION_TAG)
    return replace(exchange, tags=(*tags, (EXPECTED_POSITION_TAG, verdict)))


class LagRecheck:
    """``LagRecheck(upstreams, rules_for)``; :meth:`start` with the engine's ``submit``."""

    def __init__(
        self,
        upstreams: UpstreamLookup,
        rules_for: RulesLookup,
        settings: RecheckSettings | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.upstreams = upstreams
        self.rules_for = rules_for
        self.settings = settings or RecheckSettings()
        self.clock = clock
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        # None: a wake-up from close()
        self._queue: queue.Queue[tuple[Exchange, float] | None] = queue.Queue(
            self.settings.queue_size)
        self._stop = threading.Event()
        self._submit: Callable[[Exchange], None] | None = None
        self._threads: list[threading.Thread] = []
        self._client = httpx.Client(
            timeout=self.settings.timeout_s, transport=transport, follow_redirects=False
        )

    # -- the engine's hook ------------------------------------------------------------

    def __call__(self, exchange: Exchange, result: Result) -> bool:
        """Take the exchange for a re-check (True) or leave it to be counted now."""
        if result.outcome not in (Outcome.MISMATCHED, Outcome.LAG) or is_rechecked(
            exchange.tags
        ):
            return False
        if not wants_recheck(
            exchange.request.method, result.lag, exchange.candidate.source_position
        ):
            return False
        if self._submit is None or self._stop.is_set():
            return False
        try:
            self._queue.put_nowait((exchange, self.clock()))
        except queue.Full:  # lag is only ever claimed when a re-check confirmed it
            self._hand_back(with_verdict(exchange, RECHECKED_CURRENT), "skipped")
            return True
        self._count("deferred")
        return True

    def start(self, submit: Callable[[Exchange], None]) -> None:
        self._submit = submit
        for i in range(self.settings.workers):
            thread = threading.Thread(target=self._run, name=f"shadow-recheck-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every deferred exchange has been re-checked and handed back."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._queue.unfinished_tasks == 0:
                return True
            time.sleep(0.01)
        return False

    def close(self, timeout: float = 5.0) -> None:
        """Stop re-checking; what is still queued is handed back to be counted by
        positions alone (``abandoned``)."""
        self._stop.set()
        for _ in self._threads:  # wake idle workers now (busy ones see the stop next)
            try:
                self._queue.put_nowait(None)
            except queue.Full:
                break
        deadline = time.monotonic() + timeout  # one bound for all workers, not one each
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                self._hand_back(with_verdict(item[0], NOT_RECHECKED), "abandoned")
            self._queue.task_done()
        self._client.close()

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        with self._lock:
            counts = dict(self.counts)
        family = CounterMetricFamily(
            "strangler_shadow_lag_rechecks",
            "Mismatches re-checked for replication delay, by result "
            "(deferred, lag, mismatch, unresolved, skipped, abandoned).",
            labels=["result"],
        )
        for name, n in sorted(counts.items()):
            family.add_metric([name], n)
        yield family
        yield GaugeMetricFamily(
            "strangler_shadow_lag_recheck_queue_depth",
            "Mismatches waiting for a replication-delay re-check.",
            self._queue.qsize(),
        )

    # -- the workers ------------------------------------------------------------------

    def _count(self, name: str) -> None:
        with self._lock:
            self.counts[name] += 1

    def _hand_back(self, exchange: Exchange, counted_as: str) -> None:
        self._count(counted_as)
        if self._submit is not None:
            self._submit(exchange)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                item = self._queue.get(timeout=1.0)  # close() wakes an idle worker
            except queue.Empty:
                continue
            if item is None:
                self._queue.task_done()
                continue
            exchange, deferred_at = item
            try:
                step, verdict = self.resolve(exchange, deferred_at + self.settings.max_wait_s)
                gave_up = dict(verdict.tags).get(EXPECTED_POSITION_TAG) == NOT_RECHECKED
                self._hand_back(verdict, "abandoned" if gave_up else step.value)
            except Exception:  # never lose the exchange: count it by positions
                log.exception("lag re-check failed",
                              extra={"request_id": exchange.request.request_id})
                self._hand_back(with_verdict(exchange, NOT_RECHECKED), "abandoned")
            finally:
                self._queue.task_done()

    def resolve(self, exchange: Exchange, deadline: float) -> tuple[RecheckStep, Exchange]:
        """Re-ask both sides until the verdict is clear or ``deadline`` (clock time).

        Every candidate answer is compared at once: agreement is lag, a caught-up
        difference a mismatch. While the candidate is behind the monolith's answer only
        the candidate is asked again (after ``poll_s``, growing by half each time up to
        1 s, so a stuck sink is not hammered); when positions cannot be compared both
        are, after a pause that starts at ``settle_s`` and doubles.
        """
        req = exchange.request
        urls = self.upstreams(req.service)
        if urls is None:
            return RecheckStep.UNRESOLVED, with_verdict(exchange, NOT_RECHECKED)
        monolith_url, candidate_url = urls
        rules = self.rules_for(req.service, req.route)
        s = self.settings
        settle, poll = s.settle_s, s.poll_s
        primary: Observation | None = None
        while True:
            if primary is None:
                primary = self._ask("monolith", monolith_url, req)
            candidate = self._ask("candidate", candidate_url, req)
            verdict = classify_lag(primary.source_position, candidate.source_position)
            pair = Exchange(req, primary, candidate, tags=exchange.tags)
            differs = _differs(judge(pair, rules))
            behind = differs is True and verdict is LagVerdict.BEHIND
            left = deadline - self.clock()
            pause = min(poll if behind else settle, max(0.0, left))  # last ask at the end
            step = recheck_step(differs, verdict, left > 0)
            if step is RecheckStep.LAG:
                return step, with_verdict(exchange, RECHECKED_BEHIND)
            if step is not RecheckStep.RETRY:
                evidence = pair if differs is not None else exchange
                return step, with_verdict(evidence, RECHECKED_CURRENT)
            if self._stop.wait(pause):
                return RecheckStep.UNRESOLVED, with_verdict(exchange, NOT_RECHECKED)
            if behind:
                poll = min(poll * 1.5, max(s.poll_s, 1.0))
            else:
                primary = None
                settle *= 2

    def _ask(self, target: str, base: str, req: ObservedRequest) -> Observation:
        url = base.rstrip("/") + req.path + (f"?{req.query}" if req.query else "")
        headers = [(n, v) for n, v in req.headers if n.lower() not in _NOT_FORWARDED]
        started = time.perf_counter()
        try:
            response = self._client.request(req.method, url, headers=headers)
        except httpx.TimeoutException:
            return Observation(target, None, (), b"", time.perf_counter() - started, "timeout")
        except httpx.HTTPError:
            return Observation(
                target, None, (), b"", time.perf_counter() - started, "connect_error"
            )
        got = tuple((n.decode("latin-1").lower(), v.decode("latin-1"))
                    for n, v in response.headers.raw)
        return Observation(
            target,
            response.status_code,
            got,
            response.content,
            time.perf_counter() - started,
            source_position=response.headers.get(SOURCE_POSITION_HEADER),
        )


def _differs(result: Result) -> bool | None:
    if result.outcome is Outcome.ERROR:
        return None
    return result.outcome not in (Outcome.MATCHED, Outcome.IGNORED)
