"""Noise cancellation in the manner of Diffy (pure).

For a sampled share of safe requests the monolith is asked twice. Per endpoint and
field (path + kind of difference) we count how often the two monolith answers differ
(noise) and how often the candidate differs from the monolith (raw). At report time a
field is cancelled as noise when the candidate's excess over the monolith's own
variation is within the thresholds: ``raw_rate - noise <= max(relative * noise,
absolute / 100)``, where ``noise`` is the upper 95% Wilson bound of the noise rate —
a handful of noise samples must not make an occasional shuffle look like a defect. A
field the monolith never varied on is never cancelled.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class NoiseThresholds:
    """``NoiseThresholds(relative=0.5, absolute=2.0, min_samples=10)``.

    ``relative`` is a share of the noise rate, ``absolute`` is in percentage points,
    ``min_samples`` is how many noise samples an endpoint needs before it is judged.
    """

    relative: float = 0.5
    absolute: float = 2.0
    min_samples: int = 10

    def __post_init__(self) -> None:
        if self.relative < 0 or self.absolute < 0 or self.min_samples < 0:
            raise ValueError("noise thresholds must not be negative")

    def judged(self, noise_samples: int, method: str) -> bool:
        """Whether an endpoint has learnt enough noise to judge its differences (unsafe
        methods are never asked twice, so they are judged at once)."""
        return noise_samples >= self.min_samples or method.upper() not in SAFE_METHODS


@dataclass(frozen=True, slots=True)
class FieldRates:
    raw: int  # candidate differences at this field
    samples: int  # candidate comparisons on the endpoint
    noise: int  # primary-vs-secondary differences at this field
    noise_samples: int  # primary-vs-secondary comparisons on the endpoint

    @property
    def raw_rate(self) -> float:
        return self.raw / self.samples if self.samples else 0.0

    @property
    def noise_rate(self) -> float:
        return self.noise / self.noise_samples if self.noise_samples else 0.0

    @property
    def noise_upper(self) -> float:
        return wilson_upper(self.noise, self.noise_samples)


def wilson_upper(k: int, n: int, z: float = 1.96) -> float:
    """Upper bound of the Wilson score interval for ``k`` successes in ``n`` trials."""
    if n <= 0:
        return 0.0
    p = k / n
    centre = p + z * z / (2 * n)
    margin = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return min(1.0, (centre + margin) / (1 + z * z / n))


def is_noise(rates: FieldRates, thresholds: NoiseThresholds) -> bool:
    if rates.noise == 0 or rates.noise_samples == 0:
        return False
    noise = rates.noise_upper
    excess = rates.raw_rate - noise
    return excess <= max(thresholds.relative * noise, thresholds.absolute / 100)


def cancelled_fields(
    raw: Mapping[str, int],
    samples: int,
    noise: Mapping[str, int],
    noise_samples: int,
    thresholds: NoiseThresholds,
) -> frozenset[str]:
    """The field keys (``"kind path"``) of ``raw`` that are explained by noise."""
    return frozenset(
        key
        for key, count in raw.items()
        if is_noise(FieldRates(count, samples, noise.get(key, 0), noise_samples), thresholds)
    )


def noise_fields(noise: Mapping[str, int]) -> frozenset[str]:
    return frozenset(key for key, count in noise.items() if count > 0)


def flagged_fields(raw: Iterable[str], cancelled: frozenset[str]) -> frozenset[str]:
    return frozenset(key for key in raw if key not in cancelled)
