"""LagRecheck: re-asking both sides before a possible replication delay is counted.

Upstreams are in-process (httpx.MockTransport) so each scenario is exact; the whole
path with real servers, the real CDC relay and sink is in
tests/integration/test_shadow_lag_e2e.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from strangler_proxy.plan.io import load_plan
from strangler_proxy.shadow.engine import ShadowEngine
from strangler_proxy.shadow.lag import (
    EXPECTED_POSITION_TAG,
    NOT_RECHECKED,
    RECHECKED_BEHIND,
    RECHECKED_CURRENT,
    RecheckStep,
)
from strangler_proxy.shadow.observation import SOURCE_POSITION_HEADER, Exchange
from strangler_proxy.shadow.recheck import LagRecheck, RecheckSettings
from strangler_proxy.shadow.report import report_from_store
from strangler_proxy.shadow.result import Outcome, judge
from strangler_proxy.shadow.rules import CompareRules
from strangler_proxy.shadow.sink import engine_from_plan
from strangler_proxy.shadow.store import ShadowStore
from tests.shadow.factories import exchange, obs

RULES = CompareRules()
MONOLITH, CANDIDATE = "http://monolith.test", "http://candidate.test"
FAST = RecheckSettings(max_wait_s=2.0, poll_s=0.01, settle_s=0.01, workers=1, queue_size=2)


class Upstreams:
    """Two fake upstreams whose answers (body, position) the test changes over time."""

    def __init__(self) -> None:
        self.answers: dict[str, tuple[dict[str, object], str | None]] = {}
        self.calls: dict[str, int] = {"monolith.test": 0, "candidate.test": 0}
        self.on_call: Callable[[str, int], None] = lambda host, n: None
        self.seen_headers: list[httpx.Headers] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        self.calls[host] += 1
        self.seen_headers.append(request.headers)
        self.on_call(host, self.calls[host])
        body, position = self.answers[host]
        headers = {SOURCE_POSITION_HEADER: position} if position else {}
        return httpx.Response(200, json=body, headers=headers)

    def recheck(self, settings: RecheckSettings = FAST) -> LagRecheck:
        return LagRecheck(lambda service: (MONOLITH, CANDIDATE), lambda s, r: RULES,
                          settings, transport=httpx.MockTransport(self.handler))


def behind_exchange(candidate_position: str | None = "seq:7.7",
                    monolith_position: str | None = "seq:9.9") -> Exchange:
    return exchange(obs({"n": 2}, position=monolith_position),
                    obs({"n": 1}, target="candidate", position=candidate_position),
                    headers=(("x-customer-id", "7"), ("host", "proxy"), ("content-length", "0")))


def verdict_of(ex: Exchange) -> str:
    return dict(ex.tags)[EXPECTED_POSITION_TAG]


def test_candidate_behind_then_caught_up_and_agreeing_is_lag() -> None:
    up = Upstreams()
    up.answers = {"monolith.test": ({"n": 2}, "seq:9.9"), "candidate.test": ({"n": 1}, "seq:7.7")}

    def sink_applies(host: str, n: int) -> None:  # the service catches up on its 3rd answer
        if host == "candidate.test" and n == 3:
            up.answers["candidate.test"] = ({"n": 2}, "seq:9.9")

    up.on_call = sink_applies
    original = behind_exchange()
    step, final = up.recheck().resolve(original, time.monotonic() + 2)
    assert step is RecheckStep.LAG
    assert up.calls == {"monolith.test": 1, "candidate.test": 3}  # only the candidate polled
    # the original exchange goes back (the report's lag sample shows what differed)
    assert final.primary == original.primary and verdict_of(final) == RECHECKED_BEHIND
    result = judge(final, RULES)
    assert result.outcome is Outcome.LAG and result.differences
    # the request went out as the client sent it, minus connection-level headers
    assert up.seen_headers[0]["x-customer-id"] == "7"
    assert up.seen_headers[0]["host"] == "monolith.test"


def test_caught_up_and_still_different_is_a_mismatch() -> None:
    up = Upstreams()
    up.answers = {"monolith.test": ({"n": 2}, "seq:9.9"), "candidate.test": ({"n": 1}, "seq:7.7")}

    def sink_applies(host: str, n: int) -> None:  # caught up, but the field is wrong
        if host == "candidate.test" and n == 2:
            up.answers["candidate.test"] = ({"n": 3}, "seq:10.10")

    up.on_call = sink_applies
    step, final = up.recheck().resolve(behind_exchange(), time.monotonic() + 2)
    assert step is RecheckStep.MISMATCH
    assert verdict_of(final) == RECHECKED_CURRENT
    result = judge(final, RULES)  # the caught-up pair is the evidence
    assert result.outcome is Outcome.MISMATCHED
    assert [(d.primary, d.candidate) for d in result.differences] == [(2, 3)]


def test_never_catching_up_while_different_is_unresolved_and_a_mismatch() -> None:
    up = Upstreams()
    up.answers = {"monolith.test": ({"n": 2}, "seq:9.9"), "candidate.test": ({"n": 1}, "seq:7.7")}
    settings = RecheckSettings(max_wait_s=0.3, poll_s=0.02, settle_s=0.02)
    started = time.monotonic()
    step, final = up.recheck(settings).resolve(behind_exchange(), started + 0.3)
    assert step is RecheckStep.UNRESOLVED
    assert time.monotonic() - started < 1.0
    assert judge(final, RULES).outcome is Outcome.MISMATCHED


def test_without_a_monolith_position_both_sides_are_asked_again_after_a_pause() -> None:
    # PostgreSQL: the monolith sends no position; the candidate (CDC-fed) does.
    up = Upstreams()
    up.answers = {"monolith.test": ({"n": 2}, None), "candidate.test": ({"n": 1}, "lsn:0/10")}

    def sink_applies(host: str, n: int) -> None:
        if host == "candidate.test" and n == 2:
            up.answers["candidate.test"] = ({"n": 2}, "lsn:0/20")

    up.on_call = sink_applies
    original = behind_exchange("lsn:0/10", None)
    assert judge(original, RULES).outcome is Outcome.MISMATCHED  # no positions to compare
    step, final = up.recheck().resolve(original, time.monotonic() + 2)
    assert step is RecheckStep.LAG
    assert up.calls == {"monolith.test": 2, "candidate.test": 2}
    assert judge(final, RULES).outcome is Outcome.LAG


def test_without_positions_a_steady_difference_is_a_mismatch_in_the_end() -> None:
    up = Upstreams()
    up.answers = {"monolith.test": ({"n": 2}, None), "candidate.test": ({"n": 1}, "lsn:0/10")}
    settings = RecheckSettings(max_wait_s=0.5, settle_s=0.05)
    step, final = up.recheck(settings).resolve(behind_exchange("lsn:0/10", None),
                                               time.monotonic() + 0.5)
    assert step is RecheckStep.UNRESOLVED
    assert 2 <= up.calls["monolith.test"] <= 5  # pauses double: 0.05, 0.1, 0.2
    assert judge(final, RULES).outcome is Outcome.MISMATCHED


def test_an_unreachable_side_is_not_taken_for_agreement() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    recheck = LagRecheck(lambda s: (MONOLITH, CANDIDATE), lambda s, r: RULES,
                         RecheckSettings(max_wait_s=0.2, settle_s=0.05),
                         transport=httpx.MockTransport(refuse))
    original = behind_exchange()
    step, final = recheck.resolve(original, time.monotonic() + 0.2)
    assert step is RecheckStep.UNRESOLVED
    assert final.candidate == original.candidate  # no evidence pair: the original, a mismatch
    assert judge(final, RULES).outcome is Outcome.MISMATCHED


class Engine:
    """Stands in for ShadowEngine.submit: collects what the re-check hands back."""

    def __init__(self) -> None:
        self.got: list[Exchange] = []
        self.event = threading.Event()

    def submit(self, ex: Exchange) -> None:
        self.got.append(ex)
        self.event.set()


@pytest.mark.parametrize("method", ["POST", "PATCH", "DELETE"])
def test_the_hook_leaves_writes_alone(method: str) -> None:
    recheck = Upstreams().recheck()
    recheck.start(Engine().submit)
    try:
        ex = behind_exchange()
        ex = replace(ex, request=replace(ex.request, method=method))
        assert recheck(ex, judge(ex, RULES)) is False
    finally:
        recheck.close()


def test_the_hook_takes_only_what_might_be_lag() -> None:
    recheck = Upstreams().recheck()
    engine = Engine()
    recheck.start(engine.submit)
    try:
        caught_up = exchange(obs({"n": 2}, position="seq:9.9"),
                             obs({"n": 1}, target="candidate", position="seq:9.9"))
        assert recheck(caught_up, judge(caught_up, RULES)) is False  # a mismatch at once
        not_cdc_fed = exchange(obs({"n": 2}), obs({"n": 1}, target="candidate"))
        assert recheck(not_cdc_fed, judge(not_cdc_fed, RULES)) is False
        same = exchange(obs({"n": 2}, position="seq:9.9"),
                        obs({"n": 2}, target="candidate", position="seq:1.1"))
        assert recheck(same, judge(same, RULES)) is False  # matched
        rechecked = behind_exchange()
        rechecked = Exchange(rechecked.request, rechecked.primary, rechecked.candidate,
                             tags=((EXPECTED_POSITION_TAG, RECHECKED_BEHIND),))
        assert recheck(rechecked, judge(rechecked, RULES)) is False  # never twice
    finally:
        recheck.close()
    assert engine.got == []


def test_a_full_queue_counts_a_mismatch_at_once_never_unconfirmed_lag() -> None:
    up = Upstreams()
    up.answers = {"monolith.test": ({"n": 2}, "seq:9.9"), "candidate.test": ({"n": 1}, "seq:7.7")}
    recheck = up.recheck()  # queue of 2, not started: nothing drains it
    engine = Engine()
    recheck._submit = engine.submit
    ex = behind_exchange()
    assert judge(ex, RULES).outcome is Outcome.LAG  # positions alone would say lag
    for _ in range(3):
        assert recheck(ex, judge(ex, RULES)) is True
    assert recheck.counts == {"deferred": 2, "skipped": 1}
    assert len(engine.got) == 1 and judge(engine.got[0], RULES).outcome is Outcome.MISMATCHED
    recheck.close()  # what was queued goes back to be counted by positions
    assert recheck.counts["abandoned"] == 2
    assert [verdict_of(e) for e in engine.got[1:]] == [NOT_RECHECKED, NOT_RECHECKED]


def test_worker_hands_back_the_verdict_and_counts_it() -> None:
    up = Upstreams()
    up.answers = {"monolith.test": ({"n": 2}, "seq:9.9"), "candidate.test": ({"n": 2}, "seq:9.9")}
    recheck = up.recheck()
    engine = Engine()
    recheck.start(engine.submit)
    try:
        ex = behind_exchange()
        assert recheck(ex, judge(ex, RULES)) is True
        assert recheck.flush(5)
        assert engine.event.wait(5)
    finally:
        recheck.close()
    assert judge(engine.got[0], RULES).outcome is Outcome.LAG
    assert recheck.counts == {"deferred": 1, "lag": 1}
    families = {f.name: f for f in recheck.collect()}
    samples = {s.labels.get("result"): s.value
               for s in families["strangler_shadow_lag_rechecks"].samples}
    assert samples["lag"] == 1 and samples["deferred"] == 1
    assert "strangler_shadow_lag_recheck_queue_depth" in families


PLAN = """
version: 1
monolith: {url: "http://127.0.0.1:8001"}
shadow_store: {url: "sqlite:///s.db"}
services:
  notifications:
    url: "http://127.0.0.1:8101"
    routes: [{path: /api/notifications, methods: [GET]}]
    stage: shadow
"""


def test_the_plan_engine_rechecks_against_the_plan_upstreams(tmp_path: Path) -> None:
    (tmp_path / "plan.yaml").write_text(PLAN)
    loaded = load_plan(tmp_path / "plan.yaml")
    engine = engine_from_plan(lambda: loaded, flush_interval_s=0.02)
    try:
        recheck = engine.recheck
        assert isinstance(recheck, LagRecheck)
        assert recheck.upstreams("notifications") == ("http://127.0.0.1:8001",
                                                      "http://127.0.0.1:8101")
        assert recheck.upstreams("gone") is None
        # its counters are on the engine's collector, which the proxy registers
        assert "strangler_shadow_lag_rechecks" in {f.name for f in engine.collect()}
    finally:
        engine.close()
    assert engine_from_plan(lambda: loaded, recheck=None).recheck is None


def test_the_last_ask_is_at_the_deadline_not_skipped_by_a_long_pause() -> None:
    up = Upstreams()
    up.answers = {"monolith.test": ({"n": 2}, None), "candidate.test": ({"n": 1}, "lsn:0/10")}
    started = time.monotonic()

    def sink_applies(host: str, n: int) -> None:  # caught up after 0.42 s
        if host == "candidate.test" and time.monotonic() - started > 0.42:
            up.answers["candidate.test"] = ({"n": 2}, "lsn:0/20")

    up.on_call = sink_applies
    # pauses 0.1, 0.2, then 0.4 would overshoot the 0.5 s deadline: capped to reach it
    settings = RecheckSettings(max_wait_s=0.5, settle_s=0.1)
    step, _ = up.recheck(settings).resolve(behind_exchange("lsn:0/10", None), started + 0.5)
    assert step is RecheckStep.LAG


def test_settings_from_the_environment() -> None:
    assert RecheckSettings.from_env({}) == RecheckSettings()
    assert RecheckSettings.from_env({"STRANGLER_LAG_RECHECK_MAX_WAIT_S": "3"}).max_wait_s == 3
    for bad in ("0", "-1", "soon", "nan"):
        with pytest.raises(ValueError, match="STRANGLER_LAG_RECHECK_MAX_WAIT_S"):
            RecheckSettings.from_env({"STRANGLER_LAG_RECHECK_MAX_WAIT_S": bad})


def test_the_plan_engine_without_recheck_when_turned_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "plan.yaml").write_text(PLAN)
    loaded = load_plan(tmp_path / "plan.yaml")
    monkeypatch.setenv("STRANGLER_LAG_RECHECK", "0")
    engine = engine_from_plan(lambda: loaded)
    engine.close()
    assert engine.recheck is None
    monkeypatch.setenv("STRANGLER_LAG_RECHECK", "1")
    monkeypatch.setenv("STRANGLER_LAG_RECHECK_MAX_WAIT_S", "2.5")
    engine = engine_from_plan(lambda: loaded)
    engine.close()
    assert isinstance(engine.recheck, LagRecheck) and engine.recheck.settings.max_wait_s == 2.5


def test_through_the_engine_lag_and_a_regression_land_in_the_report(tmp_path: Path) -> None:
    """The real engine and store: deferred results come back and are tallied once."""
    # the service has caught up since; the regression endpoint stays wrong
    answers = {"/api/things/1": ({"n": 2}, {"n": 2}), "/api/things/2": ({"n": 2}, {"n": 5})}

    def handler(request: httpx.Request) -> httpx.Response:
        monolith, candidate = answers[request.url.path]
        body = monolith if request.url.host == "monolith.test" else candidate
        return httpx.Response(200, json=body, headers={SOURCE_POSITION_HEADER: "seq:9.9"})

    recheck = LagRecheck(lambda s: (MONOLITH, CANDIDATE), lambda s, r: RULES, FAST,
                         transport=httpx.MockTransport(handler))
    store = ShadowStore(f"sqlite:///{tmp_path / 'shadow.db'}")
    engine = ShadowEngine(store, lambda s, r: RULES, flush_interval_s=0.02, recheck=recheck)
    recheck.start(engine.submit)
    lagging = behind_exchange()  # candidate at seq:7.7 answered {"n": 1}
    wrong = behind_exchange()
    wrong = replace(wrong, request=replace(wrong.request, path="/api/things/2",
                                           route="/api/things/2", request_id="r2"))
    for ex in (lagging, wrong):
        engine.submit(replace(ex, request=replace(ex.request, ts=time.time())))
    try:
        deadline = time.monotonic() + 10
        while sum(recheck.counts[k] for k in ("lag", "mismatch")) < 2:
            assert time.monotonic() < deadline, recheck.counts
            time.sleep(0.02)
        assert recheck.flush(5) and engine.flush(5)
        report = report_from_store(ShadowStore(store.url), "svc", now=time.time())
    finally:
        engine.close()
    got = {e.endpoint.route: (e.compared, e.raw_mismatched, e.lag) for e in report.endpoints}
    assert got == {"/api/things/{id}": (1, 0, 1), "/api/things/2": (1, 1, 0)}
    assert recheck.counts == {"deferred": 2, "lag": 1, "mismatch": 1}


def test_a_stuck_candidate_is_polled_with_back_off() -> None:
    up = Upstreams()
    up.answers = {"monolith.test": ({"n": 2}, "seq:9.9"), "candidate.test": ({"n": 1}, "seq:7.7")}
    settings = RecheckSettings(max_wait_s=1.0, poll_s=0.1)
    step, _ = up.recheck(settings).resolve(behind_exchange(), time.monotonic() + 1.0)
    assert step is RecheckStep.UNRESOLVED
    # 0.1, 0.15, 0.225, 0.34 then the rest up to the deadline: not ten asks at 0.1 s
    assert 4 <= up.calls["candidate.test"] <= 7, up.calls
    assert up.calls["monolith.test"] == 1


def test_close_interrupts_a_long_recheck_and_hands_it_back() -> None:
    up = Upstreams()
    up.answers = {"monolith.test": ({"n": 2}, "seq:9.9"), "candidate.test": ({"n": 1}, "seq:7.7")}
    recheck = up.recheck(RecheckSettings(max_wait_s=30, poll_s=0.05))
    engine = Engine()
    recheck.start(engine.submit)
    ex = behind_exchange()
    assert recheck(ex, judge(ex, RULES)) is True
    deadline = time.monotonic() + 5
    while up.calls["candidate.test"] < 2:  # it is polling the stuck candidate
        assert time.monotonic() < deadline
        time.sleep(0.01)
    started = time.monotonic()
    recheck.close()
    assert time.monotonic() - started < 2
    assert [verdict_of(e) for e in engine.got] == [NOT_RECHECKED]  # positions decide
    assert recheck.counts == {"deferred": 1, "abandoned": 1}
