from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from strangler_proxy.plan import keys as K
from strangler_proxy.plan import parse_plan
from strangler_proxy.plan.schema import plan_schema, plan_schema_json
from strangler_proxy.plan.yamlnodes import load_with_lines
from tests.plan.samples import REPO_PLAN, VALID
from tests.plan.schema_check import errors

PUBLISHED = Path(__file__).resolve().parents[2] / "strangler_proxy/plan/plan.schema.json"


def test_published_schema_file_is_current() -> None:
    assert PUBLISHED.read_text() == plan_schema_json()
    assert json.loads(PUBLISHED.read_text())["$schema"].endswith("2020-12/schema")


def test_repo_plan_and_sample_validate_against_the_schema() -> None:
    schema = plan_schema()
    for text in (REPO_PLAN.read_text(), VALID):
        parse_plan(text)
        assert errors(schema, load_with_lines(text)[0]) == []


def test_schema_lists_exactly_the_parser_keys() -> None:
    s = plan_schema()
    service = s["properties"]["services"]["additionalProperties"]
    assert set(s["properties"]) == K.PLAN
    assert set(service["properties"]) == K.SERVICE
    assert set(service["properties"]["canary"]["properties"]) == K.CANARY
    assert set(service["properties"]["shadow"]["properties"]) == K.SHADOW
    assert set(service["properties"]["gates"]["properties"]) == K.GATES


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(version=2),
        lambda d: d.pop("monolith"),
        lambda d: d.update(extra=1),
        lambda d: d["services"]["notifications"].update(stage="shaddow"),
        lambda d: d["services"]["notifications"]["canary"].update(percent=101),
        lambda d: d["services"]["notifications"]["shadow"].update(sample=1.5),
        lambda d: d["services"]["notifications"]["shadow"].update(writes="always"),
        lambda d: d["services"]["notifications"].update(url="ftp://x"),
        lambda d: d["services"]["notifications"]["routes"][0].update(methods=[]),
        lambda d: d["services"]["notifications"]["fallback"].update(on=["boom"]),
        lambda d: d["services"]["catalog"].pop("url"),
        lambda d: d["services"].update(Bad={"url": "http://x"}),
        lambda d: d["services"].update(monolith={"url": "http://x"}),
    ],
)
def test_schema_and_parser_both_reject(mutate: Any) -> None:
    data = load_with_lines(VALID)[0]  # keys as written (yaml.safe_load reads `on:` as True)
    mutate(data)
    assert errors(plan_schema(), data) != []
    with pytest.raises(ValueError):
        parse_plan(yaml.safe_dump(data))
