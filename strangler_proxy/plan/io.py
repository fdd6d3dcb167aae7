"""Reading a plan file: the whole file in one read, hashed, parsed, validated."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from strangler_proxy.plan.errors import PlanError
from strangler_proxy.plan.model import Plan
from strangler_proxy.plan.parse import parse_plan

__all__ = ["LoadedPlan", "load_plan", "parse_plan_bytes", "read_plan_file"]


@dataclass(frozen=True, slots=True)
class LoadedPlan:
    """A parsed plan with where it came from: ``sha256`` is the hex digest of the exact
    bytes parsed (what ``status`` reports as the plan hash); ``mtime`` is the file's
    modification time when read (0.0 for plans not read from a file)."""

    plan: Plan
    sha256: str
    path: Path
    mtime: float

    @property
    def short_hash(self) -> str:
        return self.sha256[:12]


def read_plan_file(path: str | os.PathLike[str]) -> tuple[bytes, float]:
    """The file's bytes and mtime, or PlanError naming the file."""
    p = Path(path)
    try:
        with p.open("rb") as f:
            mtime = os.fstat(f.fileno()).st_mtime
            data = f.read()
    except OSError as exc:
        raise PlanError.single(
            p.name, f"cannot read plan file {str(p)!r}: {exc.strerror}"
        ) from None
    return data, mtime


def parse_plan_bytes(data: bytes, path: str | os.PathLike[str], mtime: float = 0.0) -> LoadedPlan:
    p = Path(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise PlanError.single(p.name, "plan file is not valid UTF-8", line) from None
    plan = parse_plan(text, p.name)
    return LoadedPlan(plan, hashlib.sha256(data).hexdigest(), p, mtime)


def load_plan(path: str | os.PathLike[str]) -> LoadedPlan:
    """Load and validate a plan file; raises :class:`PlanError` on any problem."""
    data, mtime = read_plan_file(path)
    return parse_plan_bytes(data, path, mtime)
