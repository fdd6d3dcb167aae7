from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest
import yaml

from strangler_proxy.plan import edit
from strangler_proxy.plan.edit import EditError, PlanChanged, PlanFile, set_values

PLAN = """\
# Migration plan for the shop — edited by hand AND by `strangle promote`.
version: 1
monolith: {url: http://127.0.0.1:8000}   # the Django monolith

services:
  notifications:
    url: http://127.0.0.1:8101
    routes:
      - {path: /api/notifications, methods: [GET, POST]}
    stage:   shadow     # odd spacing kept on purpose
    canary:  { steps: [1, 10, 50],  cohort: "header:X-Customer-Id" }
    gates: {min_samples: 200}

  # catalog is next
  catalog:
    url: 'http://127.0.0.1:8102'
    stage: 'monolith'
    data:
      owner: monolith
      tables:
        catalog_product: product
    # trailing comment inside catalog
"""


def changed_span(before: str, after: str) -> tuple[str, str, str, str]:
    """(common prefix, removed, added, common suffix)."""
    i = 0
    while i < min(len(before), len(after)) and before[i] == after[i]:
        i += 1
    j = 0
    while (
        j < min(len(before), len(after)) - i
        and before[len(before) - 1 - j] == after[len(after) - 1 - j]
    ):
        j += 1
    return (
        before[:i],
        before[i : len(before) - j],
        after[i : len(after) - j],
        before[len(before) - j :],
    )


def test_changing_a_value_touches_only_that_value() -> None:
    after = set_values(PLAN, {("services", "notifications", "stage"): "canary"})
    prefix, removed, added, suffix = changed_span(PLAN, after)
    assert (removed, added) == ("shadow", "canary")
    assert prefix.endswith("stage:   ")
    assert suffix.startswith("     # odd spacing kept on purpose\n")
    assert after.replace("stage:   canary", "stage:   shadow") == PLAN


def test_quoted_values_keep_their_quotes() -> None:
    after = set_values(PLAN, {("services", "catalog", "stage"): "shadow"})
    assert "    stage: 'shadow'\n" in after
    assert after.replace("'shadow'", "'monolith'") == PLAN


def test_missing_key_in_flow_mapping_is_appended_inside_it() -> None:
    after = set_values(PLAN, {("services", "notifications", "canary", "percent"): 1.0})
    old_line = '    canary:  { steps: [1, 10, 50],  cohort: "header:X-Customer-Id" }\n'
    new_line = '    canary:  { steps: [1, 10, 50],  cohort: "header:X-Customer-Id", percent: 1 }\n'
    assert after == PLAN.replace(old_line, new_line)
    assert yaml.safe_load(after)["services"]["notifications"]["canary"]["percent"] == 1


def test_missing_key_in_block_mapping_is_one_new_line_after_the_last_content() -> None:
    after = set_values(PLAN, {("services", "catalog", "canary", "percent"): 10})
    expected = PLAN.replace(
        "        catalog_product: product\n",
        "        catalog_product: product\n    canary: {percent: 10}\n",
    )
    assert after == expected
    assert "# trailing comment inside catalog" in after


def test_several_changes_at_once_and_data_reads_back() -> None:
    after = set_values(
        PLAN,
        {
            ("services", "notifications", "stage"): "canary",
            ("services", "notifications", "canary", "percent"): 10,
            ("services", "catalog", "data", "owner"): "catalog",
        },
    )
    data = yaml.safe_load(after)
    assert data["services"]["notifications"]["stage"] == "canary"
    assert data["services"]["notifications"]["canary"]["percent"] == 10
    assert data["services"]["catalog"]["data"]["owner"] == "catalog"
    assert after.count("#") == PLAN.count("#")


def test_crlf_line_endings_are_kept() -> None:
    crlf = PLAN.replace("\n", "\r\n")
    after = set_values(crlf, {("services", "catalog", "canary", "percent"): 10})
    assert "\n" not in after.replace("\r\n", "")
    assert after.replace("    canary: {percent: 10}\r\n", "") == crlf


def test_values_that_need_quoting_are_quoted() -> None:
    after = set_values(PLAN, {("services", "notifications", "stage"): "on"})
    assert yaml.safe_load(after)["services"]["notifications"]["stage"] == "on"


def test_refuses_to_replace_a_collection() -> None:
    with pytest.raises(EditError, match="collection"):
        set_values(PLAN, {("services", "notifications", "routes"): "x"})


def test_refuses_invalid_yaml() -> None:
    with pytest.raises(EditError, match="not valid YAML"):
        set_values("services: [unclosed\n", {("version",): 2})


def write_plan(tmp_path: Path, text: str = PLAN) -> Path:
    path = tmp_path / "migration_plan.yaml"
    path.write_text(text)
    return path


def test_write_replaces_file_atomically_and_keeps_mode(tmp_path: Path) -> None:
    path = write_plan(tmp_path)
    path.chmod(0o640)
    inode = path.stat().st_ino
    plan = PlanFile.read(path)
    new_hash = plan.write(set_values(plan.text, {("services", "catalog", "stage"): "shadow"}))
    assert path.stat().st_ino != inode  # renamed into place, never written in place
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert PlanFile.read(path).sha256 == new_hash
    assert [p.name for p in tmp_path.iterdir()] == ["migration_plan.yaml"]


def test_refuses_when_the_file_changed_since_it_was_read(tmp_path: Path) -> None:
    path = write_plan(tmp_path)
    plan = PlanFile.read(path)
    new_text = set_values(plan.text, {("services", "catalog", "stage"): "shadow"})
    hand_edit = PLAN.replace("# catalog is next", "# catalog is next (hand edit)")
    path.write_text(hand_edit)
    with pytest.raises(PlanChanged, match="changed since it was read"):
        plan.write(new_text)
    assert path.read_text() == hand_edit


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_plan(tmp_path)
    plan = PlanFile.read(path)

    def broken_replace(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(edit.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        plan.write(set_values(plan.text, {("services", "catalog", "stage"): "shadow"}))
    assert path.read_text() == PLAN
    assert [p.name for p in tmp_path.iterdir()] == ["migration_plan.yaml"]


def test_symlinked_plan_keeps_its_link(tmp_path: Path) -> None:
    target = write_plan(tmp_path)
    link = tmp_path / "link.yaml"
    link.symlink_to(target)
    plan = PlanFile.read(link)
    plan.write(set_values(plan.text, {("services", "catalog", "stage"): "shadow"}))
    assert link.is_symlink()
    assert "stage: 'shadow'" in target.read_text()


def test_concurrent_writers_from_the_same_read_exactly_one_wins(tmp_path: Path) -> None:
    path = write_plan(tmp_path)
    plan = PlanFile.read(path)
    texts = [
        set_values(plan.text, {("services", "catalog", "stage"): s}) for s in ("shadow", "retired")
    ]
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def writer(text: str) -> None:
        barrier.wait()
        try:
            plan.write(text)
            outcomes.append("written")
        except PlanChanged:
            outcomes.append("refused")

    threads = [threading.Thread(target=writer, args=(t,)) for t in texts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused", "written"]
    assert path.read_text() in texts
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
