from collections import Counter

from strangler_proxy.shadow.noise import NoiseThresholds
from strangler_proxy.shadow.observation import Exchange
from strangler_proxy.shadow.records import Endpoint, Sample, Tally, TallyKey, tally_keys
from strangler_proxy.shadow.report import (
    FAIL,
    FLAGGED,
    IGNORED,
    INSUFFICIENT,
    NOISY,
    PASS,
    Gates,
    build_report,
    figures_of,
)
from strangler_proxy.shadow.result import judge
from strangler_proxy.shadow.rules import rules_from_mapping

from .factories import exchange, obs

RULES = rules_from_mapping({"ignore": ["$.request_id"]}).default
EP = Endpoint("svc", "/api/things/{id}", "GET")
T0 = 1_700_000_040.0  # a bucket boundary


def tallies(exchanges: list[Exchange]) -> list[Tally]:
    counts: Counter[TallyKey] = Counter()
    for ex in exchanges:
        for key in tally_keys(EP, ex.request.ts, judge(ex, RULES)):
            counts[key] += 1
    return [Tally(k, n) for k, n in counts.items()]


def traffic(n: int, *, price_bug_every: int = 0, noise_every: int = 2) -> list[Exchange]:
    out = []
    for i in range(n):
        p = {"id": 1, "at": f"t{i}", "request_id": f"p{i}", "price": "10.50"}
        c = {"id": 1, "at": f"t{i}c", "request_id": f"c{i}", "price": "10.50"}
        if price_bug_every and i % price_bug_every == 0:
            c["price"] = "10.60"
        s = {"id": 1, "at": f"t{i}s", "request_id": f"s{i}", "price": "10.50"}
        secondary = obs(s) if noise_every and i % noise_every == 0 else None
        out.append(exchange(obs(p), obs(c), secondary, ts=T0 + i * 10, request_id=f"r{i}"))
    return out


def test_noise_is_cancelled_and_real_difference_flagged() -> None:
    report = build_report("svc", tallies(traffic(300, price_bug_every=3)), now=T0)
    [e] = report.endpoints
    assert e.samples == 300 and e.compared == 300 and e.noise_samples == 150
    assert e.raw_mismatched == 300  # every answer differs at $.at
    assert e.mismatched == 100 and abs(e.mismatch_rate - 1 / 3) < 1e-9
    assert e.flagged == ("$.price",)
    assert e.noise_paths == ("$.at",)
    assert e.ignored_paths == ("$.request_id",)
    status = {f.path: f.status for f in e.fields}
    assert status == {"$.price": FLAGGED, "$.at": NOISY, "$.request_id": IGNORED}
    assert e.fields[0].path == "$.price"  # flagged first
    assert e.verdict == FAIL and report.verdict == FAIL


def test_good_candidate_passes_with_zero_adjusted_mismatches() -> None:
    report = build_report("svc", tallies(traffic(300)), now=T0)
    [e] = report.endpoints
    assert e.raw_mismatch_rate == 1.0 and e.mismatch_rate == 0.0 and e.flagged == ()
    assert report.verdict == PASS
    figures = figures_of(report)
    assert figures.samples == 300 and figures.mismatch_rate == 0.0 and figures.flagged == {}


def test_without_noise_samples_nothing_is_cancelled() -> None:
    no_warmup = NoiseThresholds(min_samples=0)
    rows = tallies(traffic(10, noise_every=0))
    report = build_report("svc", rows, now=T0, thresholds_for=lambda e: no_warmup)
    assert report.endpoints[0].flagged == ("$.at",)


def test_differences_are_pending_until_enough_noise_samples() -> None:
    early = build_report("svc", tallies(traffic(6, price_bug_every=3)), now=T0)
    [e] = early.endpoints
    assert e.noise_samples == 3 and e.flagged == ()
    assert e.pending_paths == ("$.at", "$.price")
    assert e.mismatch_rate == 1.0  # pending errs on the side of the gate
    assert e.verdict == INSUFFICIENT and early.verdict == INSUFFICIENT
    later = build_report("svc", tallies(traffic(20, price_bug_every=3)), now=T0)
    assert later.endpoints[0].flagged == ("$.price",) and later.endpoints[0].pending_paths == ()


def test_unsafe_methods_are_judged_without_noise() -> None:
    post = Endpoint("svc", "/api/things", "POST")
    rows = [Tally(TallyKey(post, 0, "candidate", "mismatched", ("value_changed $.x",)), 3)]
    [e] = build_report("svc", rows, now=T0).endpoints
    assert e.flagged == ("$.x",)


def test_thresholds_come_per_endpoint() -> None:
    # monolith differs at $.at only every other noise sample; candidate always
    rows = tallies(traffic(100))
    noisy: list[Tally] = []
    for t in rows:
        if t.key.source == "noise" and t.key.signature:
            quiet = TallyKey(t.key.endpoint, t.key.bucket, "noise", "matched")
            noisy += [Tally(t.key, t.count - t.count // 2), Tally(quiet, t.count // 2)]
        else:
            noisy.append(t)
    strict = build_report("svc", noisy, now=T0, thresholds_for=lambda e: NoiseThresholds(0.1, 0))
    lax = build_report("svc", noisy, now=T0, thresholds_for=lambda e: NoiseThresholds(1.2, 0))
    assert strict.endpoints[0].flagged == ("$.at",)
    assert lax.endpoints[0].flagged == ()


def test_errors_lag_and_insufficient_samples() -> None:
    exchanges = [
        *traffic(5),
        exchange(obs({"a": 1}), obs(status=None, error="timeout"), ts=T0),
        exchange(obs(status=None, error="connect_error"), obs({"a": 1}), ts=T0),
        exchange(obs({"n": 2}, position="seq:5"), obs({"n": 1}, position="seq:4"), ts=T0),
    ]
    report = build_report("svc", tallies(exchanges), now=T0, gates=Gates(min_samples=200))
    [e] = report.endpoints
    assert e.errors == 1 and e.lag == 1 and e.samples == 7 and e.compared == 6
    assert report.monolith_errors == 1
    assert abs(report.error_rate - 1 / 7) < 1e-9
    assert e.verdict == FAIL  # 14% errors
    quiet = build_report("svc", tallies(traffic(5)), now=T0, gates=Gates(min_samples=200))
    assert quiet.verdict == INSUFFICIENT


def test_timeline_has_raw_and_adjusted_rate_per_bucket() -> None:
    report = build_report("svc", tallies(traffic(30, price_bug_every=2)), now=T0)
    assert len(report.timeline) == 5  # 30 requests, 10 s apart, 60 s buckets
    assert sum(p.compared for p in report.timeline) == 30
    assert all(p.raw_rate == 1.0 for p in report.timeline)
    assert all(0 < p.rate < 1 for p in report.timeline)


def test_other_services_are_left_out_and_examples_attached() -> None:
    rows = tallies(traffic(10, price_bug_every=1))
    other = Tally(TallyKey(Endpoint("other", "/x", "GET"), 0, "candidate", "matched"), 5)
    sample = Sample(EP, "value_changed $.price", "candidate", T0, "r1", {"x": 1})
    unrelated = Sample(EP, "value_changed $.nowhere", "candidate", T0, "r2", {})
    report = build_report("svc", [*rows, other], now=T0, samples=[sample, unrelated])
    assert [str(e.endpoint) for e in report.endpoints] == ["GET /api/things/{id}"]
    assert report.endpoints[0].examples == (sample,)


def test_empty_report() -> None:
    report = build_report("svc", [], now=T0)
    assert report.endpoints == () and report.samples == 0 and report.verdict == INSUFFICIENT
