from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from strangler_proxy.plan import PlanError
from strangler_proxy.plan.io import load_plan
from tests.plan.samples import REPO_PLAN, VALID


def test_load_plan_returns_plan_hash_path_and_mtime(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(VALID)
    loaded = load_plan(path)
    assert loaded.sha256 == hashlib.sha256(VALID.encode()).hexdigest()
    assert loaded.short_hash == loaded.sha256[:12]
    assert loaded.path == path and loaded.mtime == path.stat().st_mtime
    assert loaded.plan.source == "plan.yaml"
    assert set(loaded.plan.services) == {"notifications", "catalog", "orders"}


def test_repo_plan_loads() -> None:
    assert load_plan(REPO_PLAN).plan.services["notifications"].stage == "shadow"


def test_missing_file_and_directory_are_plan_errors(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match=r"^nope\.yaml: cannot read plan file .*No such file"):
        load_plan(tmp_path / "nope.yaml")
    with pytest.raises(PlanError, match="cannot read plan file"):
        load_plan(tmp_path)


def test_non_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_bytes(VALID.encode().replace(b"catalog:", b"cat\xffalog:"))
    with pytest.raises(PlanError) as info:
        load_plan(path)
    assert str(info.value) == "plan.yaml:14: plan file is not valid UTF-8"


def test_errors_use_the_file_name(tmp_path: Path) -> None:
    path = tmp_path / "staging.yaml"
    path.write_text(VALID.replace("percent: 10", "percent: 200"))
    with pytest.raises(PlanError) as info:
        load_plan(path)
    assert str(info.value).startswith("staging.yaml:11: services.notifications.canary.percent:")
