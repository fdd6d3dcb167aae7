import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from strangler_proxy.shadow.engine import ShadowEngine
from strangler_proxy.shadow.observation import HeaderBlock
from strangler_proxy.shadow.records import Sample, TallyKey
from strangler_proxy.shadow.rules import CompareRules, rules_from_mapping
from strangler_proxy.shadow.store import ShadowStore, StoreError

from .factories import JSON_RAW, RawPair, exchange, obs

RULES = rules_from_mapping({"ignore": ["$.id"]}).default


def rules_for(service: str, route: str) -> CompareRules:
    return RULES


class StubStore:
    """A store whose writes can be held or made to fail."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.release.set()
        self.fail_next = 0
        self.writes: list[tuple[dict[TallyKey, int], list[Sample]]] = []

    def write(self, tallies: Mapping[TallyKey, int], samples: Sequence[Sample] = ()) -> None:
        self.release.wait(10)
        if self.fail_next:
            self.fail_next -= 1
            raise StoreError("shadow store stub: cannot write comparisons: disk full")
        self.writes.append((dict(tallies), list(samples)))

    def sample_counts(self) -> dict[Any, int]:
        return {}

    def prune(self, **kwargs: Any) -> dict[str, int]:
        return {}

    def close(self) -> None:
        return None

    def total(self) -> int:
        return sum(n for t, _ in self.writes for k, n in t.items() if k.source == "candidate")


def make(store: Any, **kwargs: Any) -> ShadowEngine:
    kwargs.setdefault("flush_interval_s", 0.02)
    return ShadowEngine(store, rules_for, **kwargs)


def pair(i: int = 0, **kw: Any) -> Any:
    kw.setdefault("ts", time.time())
    return exchange(obs({"id": 1, "a": 1}), obs({"id": 2, "a": i}), request_id=f"r{i}", **kw)


def test_full_queue_drops_and_counts_without_blocking() -> None:
    store = StubStore()
    store.release.clear()  # the store hangs: the worker is stuck in write()
    engine = make(store, queue_size=5, batch_size=1)
    try:
        started = time.perf_counter()
        for i in range(200):
            engine.submit(pair(i))
        elapsed = time.perf_counter() - started
        stats = engine.stats()
        assert elapsed < 0.5  # 200 submits while the store is stuck
        assert stats.drops >= 200 - 5 - 2  # queue of 5, at most a batch in flight
        assert stats.queue_depth == 5
    finally:
        store.release.set()
        engine.close()


def test_engine_compares_off_thread_and_writes_batches(tmp_path: Path) -> None:
    store = ShadowStore(f"sqlite:///{tmp_path}/shadow.db")
    engine = make(store, max_samples=3)
    for i in range(10):
        engine.submit(pair(i, headers=(("cookie", "sessionid=secret"),)))
    assert engine.flush()
    stats = engine.stats()
    assert (stats.comparisons, stats.mismatches, stats.drops) == (10, 9, 0)
    engine.close()
    reopened = ShadowStore(f"sqlite:///{tmp_path}/shadow.db")
    counts = {(t.key.outcome, t.key.signature): t.count for t in reopened.tallies("svc")}
    assert counts == {("mismatched", ("value_changed $.a",)): 9, ("ignored", ()): 1}
    samples = reopened.samples("svc", limit=100)
    per_field: dict[str, int] = {}
    for s in samples:
        per_field[s.field] = per_field.get(s.field, 0) + 1
    assert per_field == {"value_changed $.a": 3, "value_changed $.id": 3}
    req = samples[0].payload["request"]
    assert req["headers"] == [["cookie", "[redacted]"]]
    assert "secret" not in str([s.payload for s in samples])
    assert samples[0].payload["candidate"]["body"]["text"].startswith("{")
    reopened.close()


def test_store_failure_keeps_tallies_and_retries() -> None:
    store = StubStore()
    store.fail_next = 2
    engine = make(store)
    for i in range(4):
        engine.submit(pair(i))
    assert engine.flush(5)
    assert engine.stats().store_errors == 2
    assert store.total() == 4
    engine.close()


def test_comparison_bug_is_counted_not_fatal() -> None:
    store = StubStore()

    def broken(service: str, route: str) -> CompareRules:
        raise RuntimeError("boom")

    engine = ShadowEngine(store, broken, flush_interval_s=0.02)  # type: ignore[arg-type]
    engine.submit(pair())
    assert engine.flush(5)
    [(tallies, _)] = store.writes
    [k] = tallies
    assert (k.outcome, k.signature) == ("error", ("compare: RuntimeError",))
    engine.submit(pair(1))
    assert engine.flush(5) and engine.stats().comparisons == 2
    engine.close()


def test_close_drains_and_later_submits_are_dropped() -> None:
    store = StubStore()
    engine = make(store, start=False)
    for i in range(3):
        engine.submit(pair(i))
    engine.close()
    assert store.total() == 3
    engine.submit(pair())
    assert engine.stats().drops == 1


def test_prometheus_collector() -> None:
    registry = CollectorRegistry()
    store = StubStore()
    engine = make(store, registry=registry, queue_size=1, start=False)
    engine.submit(pair())
    engine.submit(pair())
    engine.process([pair()])
    text = generate_latest(registry).decode()
    assert "strangler_shadow_compare_drops_total 1.0" in text
    assert 'strangler_shadow_comparisons_total{outcome="mismatched"} 1.0' in text
    assert "strangler_shadow_compare_queue_depth 1.0" in text
    engine.close()


def test_retention_prunes_old_comparisons(tmp_path: Path) -> None:
    store = ShadowStore(f"sqlite:///{tmp_path}/shadow.db")
    engine = make(store, retention_s=3600, prune_interval_s=0.0)
    engine.submit(pair(1, ts=time.time() - 7200))
    engine.submit(pair(2))
    assert engine.flush()
    time.sleep(0.1)  # a later batch runs the prune
    engine.submit(pair(3))
    assert engine.flush()
    engine.close()
    reopened = ShadowStore(f"sqlite:///{tmp_path}/shadow.db")
    assert sum(t.count for t in reopened.tallies("svc")) == 2
    reopened.close()


# -- raw hand-off: byte-identical pairs are counted without decoding ---------------------

def tallies_of(store: StubStore) -> dict[tuple[str, tuple[str, ...], tuple[str, ...]], int]:
    out: dict[tuple[str, tuple[str, ...], tuple[str, ...]], int] = {}
    for written, _ in store.writes:
        for k, n in written.items():
            key = (f"{k.source}:{k.outcome}", k.signature, k.ignored)
            out[key] = out.get(key, 0) + n
    return out


def test_byte_identical_raw_pairs_are_tallied_matched_without_being_decoded() -> None:
    store = StubStore()
    engine = make(store)
    same = [RawPair(b'{"id": 1, "a": 1}', b'{"id": 1, "a": 1}') for _ in range(5)]
    # headers the rules do not compare may differ
    same.append(RawPair(b"{}", b"{}", candidate_headers=(*JSON_RAW, (b"date", b"x"))))
    for p in same:
        engine.submit_raw(p)
    assert engine.flush(5)
    engine.close()
    assert [p.decoded for p in same] == [0] * 6
    assert tallies_of(store) == {("candidate:matched", (), ()): 6}
    assert engine.stats().comparisons == 6


@pytest.mark.parametrize(
    ("pair", "tally"),
    [
        # only an ignored field differs: ignored (visible), not matched
        (RawPair(b'{"id": 1, "a": 1}', b'{"id": 2, "a": 1}'),
         ("candidate:ignored", (), ("value_changed $.id",))),
        # same body bytes, other status
        (RawPair(b'{"a": 1}', b'{"a": 1}', candidate_status=500),
         ("candidate:mismatched", ("value_changed status",), ())),
        # same body bytes, a compared header differs
        (RawPair(b'{"a": 1}', b'{"a": 1}', candidate_headers=((b"content-type", b"text/x"),)),
         ("candidate:mismatched", ("value_changed headers.content-type",), ())),
        # bytes differ, content equal: the full comparison says matched
        (RawPair(b'{"a": 1, "b": 2}', b'{"b":2,"a":1.0}'), ("candidate:matched", (), ())),
        (RawPair(b'{"a": 1}', b"", candidate_status=None, candidate_error="timeout"),
         ("candidate:error", ("candidate: timeout",), ())),
    ],
)
def test_raw_pairs_that_are_not_byte_identical_are_judged_in_full(
    pair: RawPair, tally: tuple[str, tuple[str, ...], tuple[str, ...]]
) -> None:
    store = StubStore()
    engine = make(store)
    engine.submit_raw(pair)
    assert engine.flush(5)
    engine.close()
    assert pair.decoded == 1
    assert tallies_of(store) == {tally: 1}


def test_a_noise_sample_is_never_short_circuited() -> None:
    store = StubStore()
    engine = make(store)
    secondary = obs({"id": 1, "a": 2}, target="monolith-secondary")
    pair = RawPair(b'{"id": 1, "a": 1}', b'{"id": 1, "a": 1}', secondary=secondary)
    engine.submit_raw(pair)
    assert engine.flush(5)
    engine.close()
    assert pair.decoded == 1
    assert tallies_of(store) == {
        ("candidate:matched", (), ()): 1,
        ("noise:mismatched", ("value_changed $.a",), ()): 1,
    }


def test_raw_and_decoded_hand_offs_give_the_same_tallies() -> None:
    bodies = [
        (b'{"id": 1}', b'{"id": 1}'), (b'{"a": 1}', b'{"a": 2}'), (b'{"id": 1}', b'{"id": 3}')
    ]
    results = []
    for raw_path in (True, False):
        store = StubStore()
        engine = make(store)
        for p, c in bodies:
            pair = RawPair(p, c)
            if raw_path:
                engine.submit_raw(pair)
            else:
                engine.submit(pair.exchange())
        assert engine.flush(5)
        engine.close()
        results.append(tallies_of(store))
    assert results[0] == results[1]


def test_full_inbox_drops_raw_pairs_too() -> None:
    engine = make(StubStore(), queue_size=2, start=False)
    for _ in range(5):
        engine.submit_raw(RawPair(b"{}", b"{}"))
    assert engine.stats().drops == 3 and engine.stats().queue_depth == 2
    engine.close()


def test_identical_pairs_are_counted_by_the_submitting_thread_once_rules_are_known() -> None:
    """The worker publishes the rules of a (service, route) it has seen; from then on a
    byte-identical pair is counted in submit_raw and never reaches the inbox."""
    store = StubStore()
    engine = make(store)
    engine.submit_raw(RawPair(b"{}", b"{}"))
    assert engine.flush(5)  # the worker has seen this route: its rules are published
    same = [RawPair(b'{"a": 1}', b'{"a": 1}', candidate_headers=HeaderBlock(
        b"Content-Type:  application/json\r\nX-Upstream: svc\r\n")) for _ in range(5)]
    differs = RawPair(b'{"a": 1}', b'{"a": 2}')
    other_route = RawPair(b"{}", b"{}", route="/api/other")
    for p in [*same, differs, other_route]:
        engine.submit_raw(p)
    assert engine.stats().queue_depth <= 2  # only those two were queued
    assert engine.flush(5)
    engine.close()
    assert [p.decoded for p in same] == [0] * 5 and differs.decoded == 1
    assert other_route.decoded == 0  # identical too, judged by the worker's own check
    tallies = tallies_of(store)
    assert tallies[("candidate:matched", (), ())] == 7
    assert tallies[("candidate:mismatched", ("value_changed $.a",), ())] == 1
    assert engine.stats().comparisons == 8


def test_published_rules_follow_a_change_of_rules() -> None:
    current = {"rules": rules_from_mapping({}).default}
    engine = ShadowEngine(StubStore(), lambda s, r: current["rules"], flush_interval_s=0.02)
    engine.submit_raw(RawPair(b"{}", b"{}"))
    assert engine.flush(5)
    # from now on the x-v header is compared too (a plan reload)
    current["rules"] = rules_from_mapping({"compare": {"headers": ["content-type", "x-v"]}}).default
    time.sleep(0.2)
    pair = RawPair(b"{}", b"{}", candidate_headers=(*JSON_RAW, (b"x-v", b"2")))
    engine.submit_raw(pair)
    assert engine.flush(5)
    engine.close()
    assert pair.decoded == 1
    assert engine.stats().mismatches == 1


def test_close_counts_what_submit_raw_matched_even_without_a_worker() -> None:
    store = StubStore()
    engine = make(store, start=False)
    engine.process_items([RawPair(b"{}", b"{}")])  # publishes the route's rules
    for _ in range(3):
        engine.submit_raw(RawPair(b"{}", b"{}"))
    assert engine.stats().queue_depth == 0
    engine.close()
    engine.submit_raw(RawPair(b"{}", b"{}"))  # after close: dropped, counted
    assert tallies_of(store) == {("candidate:matched", (), ()): 4}
    assert engine.stats().comparisons == 4 and engine.stats().drops == 1


def test_figures_include_matches_the_worker_has_not_merged_yet() -> None:
    registry = CollectorRegistry()
    engine = make(StubStore(), start=False, registry=registry)
    engine.process_items([RawPair(b"{}", b"{}")])
    for _ in range(3):
        engine.submit_raw(RawPair(b"{}", b"{}"))
    assert engine.stats().comparisons == 4
    text = generate_latest(registry).decode()
    assert 'strangler_shadow_comparisons_total{outcome="matched"} 4.0' in text
    engine.close()
    assert engine.stats().comparisons == 4  # merged once, not counted twice
