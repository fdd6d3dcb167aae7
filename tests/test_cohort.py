from __future__ import annotations

import os
import subprocess
import sys

from hypothesis import given
from hypothesis import strategies as st

from strangler_proxy.cohort import bucket, in_canary, new_cohort_id, sample_roll

# Fixed vectors: changing the hash function moves every cohort in every running canary.
# If this test fails, the change is a breaking change for deployed plans — don't.
KNOWN = [
    ("notifications", "customer-42", 0.3063798888613616),
    ("orders", "customer-42", 0.5645533104596543),
    ("catalog", "", 0.2789981967869042),
    ("x", "ünïcode-ключ", 0.614212216923808),
]


def test_known_vectors() -> None:
    for salt, key, expected in KNOWN:
        assert bucket(salt, key) == expected
    assert sample_roll("req-1") == 0.6398900443165324


def test_identical_in_other_processes_with_other_hash_seeds() -> None:
    code = (
        "from strangler_proxy.cohort import bucket\n"
        "print(repr(bucket('notifications', 'customer-42')), repr(bucket('orders', 'c')))"
    )
    outputs = set()
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        outputs.add(out.stdout)
    assert outputs == {f"{bucket('notifications', 'customer-42')!r} {bucket('orders', 'c')!r}\n"}


@given(st.text(), st.text())
def test_bucket_is_in_unit_interval_and_deterministic(salt: str, key: str) -> None:
    b = bucket(salt, key)
    assert 0.0 <= b < 1.0
    assert bucket(salt, key) == b


@given(
    st.text(),
    st.text(),
    st.floats(min_value=0, max_value=100),
    st.floats(min_value=0, max_value=100),
)
def test_raising_the_percent_never_moves_a_cohort_off_the_service(
    salt: str, key: str, p1: float, p2: float
) -> None:
    low, high = sorted((p1, p2))
    b = bucket(salt, key)
    if in_canary(b, low):
        assert in_canary(b, high)


def test_edges_of_the_percent_range() -> None:
    keys = [f"k{i}" for i in range(2000)]
    assert not any(in_canary(bucket("s", k), 0) for k in keys)
    assert all(in_canary(bucket("s", k), 100) for k in keys)


def test_salt_separates_services_and_spread_is_even() -> None:
    keys = [f"customer-{i}" for i in range(20000)]
    share = sum(in_canary(bucket("notifications", k), 10) for k in keys) / len(keys)
    assert 0.09 < share < 0.11
    same_side = sum(
        in_canary(bucket("notifications", k), 50) == in_canary(bucket("orders", k), 50)
        for k in keys
    ) / len(keys)
    assert 0.45 < same_side < 0.55  # independent salts: no correlation between services


def test_new_cohort_ids_are_random_and_cookie_safe() -> None:
    ids = {new_cohort_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(i.replace("-", "").replace("_", "").isalnum() for i in ids)
