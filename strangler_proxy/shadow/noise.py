"""Noise cancellation in the manner of Diffy (pure).

For a sampled share of safe requests the monolith is asked twice. Per endpoint and
field (path + kind of difference) we count how often the two monolith answers differ
(noise) and how often the candidate differs from the monolith (raw). At report time a
field is cancelled as noise when the candidate's excess over the monolith's own
variation is within the thresholds: ``raw_rate - noise_rate <= max(relative *
noise_rate, absolute / 100)``. A field the monolith never varied on is never
cancelled.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NoiseThresholds:
    """``NoiseThresholds(relative=0.5, absolute=2.0)``.

    ``relative`` is a share of the noise rate, ``absolute`` is in percentage points.
    """

    relative: float = 0.5
    absolute: float = 2.0

    def __post_init__(self) -> None:
        if self.relative < 0 or self.absolute < 0:
            raise ValueError("noise thresholds must not be negative")


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


def is_noise(rates: FieldRates, thresholds: NoiseThresholds) -> bool:
    if rates.noise == 0 or rates.noise_samples == 0:
        return False
    excess = rates.raw_rate - rates.noise_rate
    return excess <= max(thresholds.relative * rates.noise_rate, thresholds.absolute / 100)


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
