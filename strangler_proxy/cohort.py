"""Sticky cohorts: a stable bucket in [0, 1) from (per-service salt, cohort key).

The hash is BLAKE2b (top 53 bits of a 64-bit digest) of the length-prefixed salt and
the key, so every proxy instance, every restart and every Python version puts a key in
the same bucket (Python's ``hash()`` is randomised per process and is never used). A canary at
``percent`` sends buckets below ``percent / 100`` to the service, so raising the
percentage only adds cohorts — one already on the service never flips back.
"""

from __future__ import annotations

import hashlib
import secrets

__all__ = ["bucket", "in_canary", "new_cohort_id", "sample_roll"]

_SCALE = float(2**53)
_ROLL_SALT = "strangler:sample"


def bucket(salt: str, key: str) -> float:
    """Stable position of ``key`` in [0, 1) for this salt."""
    s = salt.encode()
    digest = hashlib.blake2b(
        len(s).to_bytes(4, "big") + s + key.encode("utf-8", "surrogatepass"), digest_size=8
    ).digest()
    # top 53 bits: exactly representable, so the result is always < 1.0
    return (int.from_bytes(digest, "big") >> 11) / _SCALE


def in_canary(bucket_value: float, percent: float) -> bool:
    """True when a bucket falls inside a canary of ``percent`` (0..100)."""
    return bucket_value < percent / 100.0


def sample_roll(request_id: str) -> float:
    """A reproducible roll in [0, 1) for shadow sampling, derived from the request id."""
    return bucket(_ROLL_SALT, request_id)


def new_cohort_id() -> str:
    """A fresh random cohort id for a client that has none (the caller's job, not
    ``decide``'s, so that routing stays a pure function)."""
    return secrets.token_urlsafe(16)
