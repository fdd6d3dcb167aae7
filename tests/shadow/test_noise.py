import pytest

from strangler_proxy.shadow.noise import (
    FieldRates,
    NoiseThresholds,
    cancelled_fields,
    flagged_fields,
    is_noise,
    noise_fields,
    wilson_upper,
)

T = NoiseThresholds(relative=0.5, absolute=2.0)


def test_field_the_monolith_never_varies_on_is_never_noise() -> None:
    assert not is_noise(FieldRates(raw=1, samples=1000, noise=0, noise_samples=500), T)
    assert not is_noise(FieldRates(raw=5, samples=10, noise=0, noise_samples=0), T)


def test_timestamp_that_always_differs_is_noise() -> None:
    assert is_noise(FieldRates(raw=200, samples=200, noise=100, noise_samples=100), T)


def test_random_order_within_relative_threshold_is_noise() -> None:
    # monolith shuffles half the time; candidate differs 60% of the time
    assert is_noise(FieldRates(raw=120, samples=200, noise=50, noise_samples=100), T)


def test_candidate_far_above_noise_stays_flagged() -> None:
    # monolith differs 10%, candidate differs 100%: a real change on a noisy field
    assert not is_noise(FieldRates(raw=200, samples=200, noise=10, noise_samples=100), T)


def test_absolute_threshold_covers_small_rates() -> None:
    rates = FieldRates(raw=40, samples=1000, noise=10, noise_samples=1000)  # 4% vs 1%
    assert is_noise(rates, NoiseThresholds(relative=0.0, absolute=3.0))
    assert not is_noise(rates, NoiseThresholds(relative=0.0, absolute=1.0))


def test_few_noise_samples_are_read_generously() -> None:
    # the monolith shuffled 4 of 10 times; the candidate 5 of 6 (the same 5/6 process)
    rates = FieldRates(raw=167, samples=200, noise=4, noise_samples=10)
    assert is_noise(rates, T)
    assert wilson_upper(4, 10) > 0.65 and wilson_upper(0, 10) > 0 and wilson_upper(0, 0) == 0
    assert abs(wilson_upper(500, 1000) - 0.531) < 0.001


def test_thresholds_must_not_be_negative() -> None:
    with pytest.raises(ValueError):
        NoiseThresholds(relative=-1)


def test_cancelled_and_flagged_sets() -> None:
    raw = {"value_changed $.at": 100, "value_changed $.price": 30}
    noise = {"value_changed $.at": 50, "list_order $.tags": 10}
    cancelled = cancelled_fields(raw, 100, noise, 50, T)
    assert cancelled == {"value_changed $.at"}
    assert flagged_fields(raw, cancelled) == {"value_changed $.price"}
    assert noise_fields(noise) == {"value_changed $.at", "list_order $.tags"}
