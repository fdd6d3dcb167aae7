from strangler_proxy.shadow.lag import EXPECTED_POSITION_TAG, LagVerdict
from strangler_proxy.shadow.observation import Exchange
from strangler_proxy.shadow.result import Outcome, judge
from strangler_proxy.shadow.rules import rules_from_mapping

from .factories import exchange, obs, request

RULES = rules_from_mapping({"ignore": ["$.id"]}).default


def test_matched() -> None:
    assert judge(exchange(obs({"a": 1}), obs({"a": 1.0})), RULES).outcome is Outcome.MATCHED


def test_mismatched_keeps_ignored_differences_visible() -> None:
    r = judge(exchange(obs({"id": 1, "a": 1}), obs({"id": 2, "a": 2})), RULES)
    assert r.outcome is Outcome.MISMATCHED
    assert [d.path for d in r.differences] == ["$.a"]
    assert [d.path for d in r.ignored] == ["$.id"]


def test_only_ignored_differences() -> None:
    r = judge(exchange(obs({"id": 1}), obs({"id": 2})), RULES)
    assert r.outcome is Outcome.IGNORED and [d.path for d in r.ignored] == ["$.id"]


def test_candidate_failure_is_an_error_on_the_candidate() -> None:
    r = judge(exchange(obs({"a": 1}), obs(status=None, error="timeout")), RULES)
    assert r.outcome is Outcome.ERROR and r.error == "candidate: timeout" and r.candidate_failed


def test_monolith_failure_is_not_the_candidates_error() -> None:
    r = judge(exchange(obs(status=None, error="connect_error"), obs({"a": 1})), RULES)
    assert r.outcome is Outcome.ERROR and not r.candidate_failed


def test_noise_from_secondary_excludes_ignored_paths() -> None:
    r = judge(
        exchange(obs({"id": 1, "at": 1}), obs({"id": 1, "at": 1}), obs({"id": 2, "at": 2})),
        RULES,
    )
    assert r.outcome is Outcome.MATCHED
    assert r.noise is not None and [d.path for d in r.noise] == ["$.at"]
    assert judge(exchange(obs({"a": 1}), obs({"a": 1})), RULES).noise is None


def test_candidate_behind_is_lag_not_regression() -> None:
    r = judge(exchange(obs({"n": 2}, position="seq:20"), obs({"n": 1}, position="seq:19")), RULES)
    assert r.outcome is Outcome.LAG and r.lag is LagVerdict.BEHIND
    current = judge(
        exchange(obs({"n": 2}, position="seq:20"), obs({"n": 1}, position="seq:20")), RULES
    )
    assert current.outcome is Outcome.MISMATCHED


def test_expected_position_tag_is_the_reference() -> None:
    ex = Exchange(
        request(),
        obs({"n": 2}),
        obs({"n": 1}, position="lsn:0/10"),
        tags=((EXPECTED_POSITION_TAG, "lsn:0/20"),),
    )
    assert judge(ex, RULES).outcome is Outcome.LAG
