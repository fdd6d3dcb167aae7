"""Aggregate tallies into the report teams decide by (pure, except :func:`service_summary`).

Per endpoint: samples, raw and noise-adjusted mismatch rates, every differing field
with its counts and status — ``flagged`` (differs beyond what the monolith does to
itself), ``noise`` (the monolith varies there too), ``ignored`` (a plan rule) or
``pending`` (too few noise samples yet to tell flagged from noise) — and a verdict
against the service's gates. A result counts as a noise-adjusted mismatch when it
carried at least one flagged or pending field (pending errs on the side of the gate).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from strangler_proxy.shadow.noise import FieldRates, NoiseThresholds, is_noise
from strangler_proxy.shadow.records import CANDIDATE, NOISE, Endpoint, Sample, Tally
from strangler_proxy.shadow.result import Outcome

if TYPE_CHECKING:
    from strangler_proxy.shadow.rules import ServiceRules
    from strangler_proxy.shadow.store import ShadowStore

FLAGGED, NOISY, IGNORED, PENDING = "flagged", "noise", "ignored", "pending"
PASS, FAIL, INSUFFICIENT = "pass", "fail", "insufficient"
_COMPARED = frozenset(
    {Outcome.MATCHED.value, Outcome.MISMATCHED.value, Outcome.IGNORED.value, Outcome.LAG.value}
)


@dataclass(frozen=True, slots=True)
class Gates:
    """``Gates(min_samples=200, max_mismatch_rate=0.01, max_error_rate=0.01)``."""

    min_samples: int = 200
    max_mismatch_rate: float = 0.01
    max_error_rate: float = 0.01

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None) -> Gates:
        raw = raw or {}
        d = cls()
        return cls(
            int(raw.get("min_samples", d.min_samples)),
            float(raw.get("max_mismatch_rate", d.max_mismatch_rate)),
            float(raw.get("max_error_rate", d.max_error_rate)),
        )


@dataclass(frozen=True, slots=True)
class FieldStat:
    key: str  # "<kind> <path>"
    status: str  # FLAGGED, NOISY, IGNORED or PENDING
    raw: int  # results where the candidate differed here
    raw_rate: float
    noise: int  # primary-vs-secondary differences here
    noise_rate: float

    @property
    def kind(self) -> str:
        return self.key.split(" ", 1)[0]

    @property
    def path(self) -> str:
        return self.key.split(" ", 1)[1]


@dataclass(frozen=True, slots=True)
class EndpointReport:
    endpoint: Endpoint
    samples: int  # candidate comparisons attempted
    compared: int  # both sides answered
    matched: int
    raw_mismatched: int  # carried a difference not covered by an ignore rule
    mismatched: int  # carried a flagged difference (noise-adjusted)
    ignored_only: int
    lag: int
    errors: int  # the candidate did not answer
    noise_samples: int
    fields: tuple[FieldStat, ...]
    verdict: str
    examples: tuple[Sample, ...] = ()

    @property
    def raw_mismatch_rate(self) -> float:
        return self.raw_mismatched / self.compared if self.compared else 0.0

    @property
    def mismatch_rate(self) -> float:
        return self.mismatched / self.compared if self.compared else 0.0

    @property
    def error_rate(self) -> float:
        return self.errors / self.samples if self.samples else 0.0

    def paths(self, status: str) -> tuple[str, ...]:
        return tuple(sorted({f.path for f in self.fields if f.status == status}))

    @property
    def flagged(self) -> tuple[str, ...]:
        return self.paths(FLAGGED)

    @property
    def noise_paths(self) -> tuple[str, ...]:
        flagged = set(self.flagged)
        return tuple(p for p in self.paths(NOISY) if p not in flagged)

    @property
    def ignored_paths(self) -> tuple[str, ...]:
        return self.paths(IGNORED)

    @property
    def pending_paths(self) -> tuple[str, ...]:
        return self.paths(PENDING)


@dataclass(frozen=True, slots=True)
class TimePoint:
    bucket: int
    compared: int
    raw_mismatched: int
    mismatched: int

    @property
    def raw_rate(self) -> float:
        return self.raw_mismatched / self.compared if self.compared else 0.0

    @property
    def rate(self) -> float:
        return self.mismatched / self.compared if self.compared else 0.0


@dataclass(frozen=True, slots=True)
class Report:
    service: str
    generated_at: float
    gates: Gates
    endpoints: tuple[EndpointReport, ...]
    timeline: tuple[TimePoint, ...]
    monolith_errors: int = 0

    @property
    def samples(self) -> int:
        return sum(e.samples for e in self.endpoints)

    @property
    def compared(self) -> int:
        return sum(e.compared for e in self.endpoints)

    @property
    def mismatch_rate(self) -> float:
        c = self.compared
        return sum(e.mismatched for e in self.endpoints) / c if c else 0.0

    @property
    def raw_mismatch_rate(self) -> float:
        c = self.compared
        return sum(e.raw_mismatched for e in self.endpoints) / c if c else 0.0

    @property
    def error_rate(self) -> float:
        s = self.samples
        return sum(e.errors for e in self.endpoints) / s if s else 0.0

    @property
    def verdict(self) -> str:
        verdicts = {e.verdict for e in self.endpoints}
        if FAIL in verdicts:
            return FAIL
        judged = not any(e.pending_paths for e in self.endpoints)
        return _verdict(self.samples, self.mismatch_rate, self.error_rate, self.gates, judged)


@dataclass(frozen=True, slots=True)
class ServiceFigures:
    """What promotion gates need from the shadow store for one service."""

    samples: int
    compared: int
    mismatch_rate: float  # noise-adjusted
    raw_mismatch_rate: float
    error_rate: float
    lag: int
    flagged: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # endpoint -> paths


def _verdict(
    samples: int, mismatch_rate: float, error_rate: float, gates: Gates, judged: bool = True
) -> str:
    if error_rate > gates.max_error_rate or (judged and mismatch_rate > gates.max_mismatch_rate):
        return FAIL
    return PASS if judged and samples >= gates.min_samples else INSUFFICIENT


def build_report(
    service: str,
    tallies: Iterable[Tally],
    *,
    now: float,
    gates: Gates | None = None,
    thresholds_for: Callable[[Endpoint], NoiseThresholds] | None = None,
    samples: Sequence[Sample] = (),
) -> Report:
    gates = gates or Gates()
    thresholds_for = thresholds_for or (lambda _e: NoiseThresholds())
    by_endpoint: dict[Endpoint, list[Tally]] = defaultdict(list)
    monolith_errors = 0
    for t in tallies:
        if t.key.endpoint.service != service:
            continue
        if t.key.outcome == Outcome.ERROR.value and _monolith_failed(t):
            monolith_errors += t.count
            continue
        by_endpoint[t.key.endpoint].append(t)

    endpoints: list[EndpointReport] = []
    timeline: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
    for endpoint in sorted(by_endpoint, key=lambda e: (e.route, e.method)):
        report, points = _endpoint(
            endpoint, by_endpoint[endpoint], gates, thresholds_for(endpoint)
        )
        flagged_keys = {f.key for f in report.fields if f.status == FLAGGED}
        examples = tuple(s for s in samples if s.endpoint == endpoint and _shown(s, report))
        endpoints.append(_with_examples(report, examples, flagged_keys))
        for bucket, (c, r, m) in points.items():
            acc = timeline[bucket]
            acc[0] += c
            acc[1] += r
            acc[2] += m
    points_out = tuple(TimePoint(b, *timeline[b]) for b in sorted(timeline))
    return Report(service, now, gates, tuple(endpoints), points_out, monolith_errors)


def _monolith_failed(t: Tally) -> bool:
    return bool(t.key.signature) and t.key.signature[0].startswith("monolith")


def _shown(sample: Sample, report: EndpointReport) -> bool:
    return any(f.key == sample.field for f in report.fields) or sample.field.startswith(
        "candidate"
    )


def _with_examples(
    report: EndpointReport, examples: tuple[Sample, ...], flagged: set[str]
) -> EndpointReport:
    ordered = tuple(sorted(examples, key=lambda s: (s.field not in flagged, s.source, -s.ts)))
    return EndpointReport(
        report.endpoint,
        report.samples,
        report.compared,
        report.matched,
        report.raw_mismatched,
        report.mismatched,
        report.ignored_only,
        report.lag,
        report.errors,
        report.noise_samples,
        report.fields,
        report.verdict,
        ordered,
    )


def _endpoint(
    endpoint: Endpoint, tallies: list[Tally], gates: Gates, thresholds: NoiseThresholds
) -> tuple[EndpointReport, dict[int, tuple[int, int, int]]]:
    outcomes: Counter[str] = Counter()
    raw: Counter[str] = Counter()
    noise: Counter[str] = Counter()
    ignored: Counter[str] = Counter()
    noise_samples = 0
    for t in tallies:
        k = t.key
        if k.source == NOISE:
            noise_samples += t.count
            for key in k.signature:
                noise[key] += t.count
            continue
        outcomes[k.outcome] += t.count
        if k.outcome == Outcome.MISMATCHED.value:
            for key in k.signature:
                raw[key] += t.count
        for key in k.ignored:
            ignored[key] += t.count

    compared = sum(outcomes[o] for o in _COMPARED)
    judged = thresholds.judged(noise_samples, endpoint.method)
    cancelled = {
        key
        for key, count in raw.items()
        if is_noise(FieldRates(count, compared, noise[key], noise_samples), thresholds)
    }
    flagged_keys = set(raw) - cancelled
    counted = flagged_keys if judged else set(raw)

    per_bucket: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
    mismatched = 0
    for t in tallies:
        k = t.key
        if k.source != CANDIDATE or k.outcome not in _COMPARED:
            continue
        acc = per_bucket[k.bucket]
        acc[0] += t.count
        if k.outcome == Outcome.MISMATCHED.value:
            acc[1] += t.count
            if any(key in counted for key in k.signature):
                acc[2] += t.count
                mismatched += t.count

    fields: list[FieldStat] = []
    for key in set(raw) | set(noise):
        pending = not judged and key in raw
        status = PENDING if pending else FLAGGED if key in flagged_keys else NOISY
        fields.append(_stat(key, status, raw[key], compared, noise[key], noise_samples))
    for key, count in ignored.items():
        fields.append(_stat(key, IGNORED, count, compared, noise[key], noise_samples))
    order = {FLAGGED: 0, PENDING: 1, NOISY: 2, IGNORED: 3}
    fields.sort(key=lambda f: (order[f.status], -f.raw, -f.noise, f.key))

    samples = compared + outcomes[Outcome.ERROR.value]
    errors = outcomes[Outcome.ERROR.value]
    rate = mismatched / compared if compared else 0.0
    report = EndpointReport(
        endpoint=endpoint,
        samples=samples,
        compared=compared,
        matched=outcomes[Outcome.MATCHED.value],
        raw_mismatched=outcomes[Outcome.MISMATCHED.value],
        mismatched=mismatched,
        ignored_only=outcomes[Outcome.IGNORED.value],
        lag=outcomes[Outcome.LAG.value],
        errors=errors,
        noise_samples=noise_samples,
        fields=tuple(fields),
        verdict=_verdict(samples, rate, errors / samples if samples else 0.0, gates, judged),
    )
    return report, {b: (v[0], v[1], v[2]) for b, v in per_bucket.items()}


def _stat(
    key: str, status: str, raw: int, samples: int, noise: int, noise_samples: int
) -> FieldStat:
    return FieldStat(
        key,
        status,
        raw,
        raw / samples if samples else 0.0,
        noise,
        noise / noise_samples if noise_samples else 0.0,
    )


def report_from_store(
    store: ShadowStore,
    service: str,
    *,
    now: float,
    rules: ServiceRules | None = None,
    gates: Gates | None = None,
    since: float | None = None,
    examples: int = 3,
) -> Report:
    tallies = store.tallies(service, since=since)
    samples = store.samples(service, limit=examples) if examples else []
    if since is not None:
        samples = [s for s in samples if s.ts >= since]
    thresholds_for = None
    if rules is not None:
        found = rules

        def thresholds_for(e: Endpoint) -> NoiseThresholds:
            return found.for_route(e.route).noise

    return build_report(
        service, tallies, now=now, gates=gates, thresholds_for=thresholds_for, samples=samples
    )


def service_summary(
    store: ShadowStore,
    service: str,
    *,
    rules: ServiceRules | None = None,
    since: float | None = None,
    now: float | None = None,
) -> ServiceFigures:
    """The shadow figures promotion gates judge (noise-adjusted mismatch rate, error rate)."""
    import time

    report = report_from_store(
        store, service, now=now or time.time(), rules=rules, since=since, examples=0
    )
    return figures_of(report)


def figures_of(report: Report) -> ServiceFigures:
    return ServiceFigures(
        samples=report.samples,
        compared=report.compared,
        mismatch_rate=report.mismatch_rate,
        raw_mismatch_rate=report.raw_mismatch_rate,
        error_rate=report.error_rate,
        lag=sum(e.lag for e in report.endpoints),
        flagged={str(e.endpoint): e.flagged for e in report.endpoints if e.flagged},
    )
