"""Property-based: random damage to a valid plan is either accepted or rejected with a
PlanError that names a line and key path — never any other exception — and every plan
the parser accepts is valid against the published JSON Schema."""

from __future__ import annotations

import copy
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strangler_proxy.plan import PlanError, parse_plan
from strangler_proxy.plan import keys as K
from strangler_proxy.plan.schema import plan_schema
from strangler_proxy.plan.yamlnodes import load_with_lines
from strangler_proxy.routing import RequestFacts, decide
from tests.plan.samples import REPO_PLAN, VALID
from tests.plan.schema_check import errors as schema_errors

BASES = [load_with_lines(VALID)[0], load_with_lines(REPO_PLAN.read_text())[0]]
ALL_KEYS = sorted(
    K.PLAN | K.SERVICE | K.CANARY | K.SHADOW | K.FALLBACK | K.ROUTE | K.GATES | K.PROXY
)
SCHEMA = plan_schema()

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-5, max_value=200),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(
        [
            "http://127.0.0.1:9",
            "https://h/p",
            "GET",
            "canary",
            "service",
            "shadow",
            "dry-run",
            "off",
            "monolith",
            "header:X-A",
            "client",
            "/a/{id}",
            "/api/notifications",
            "/x/{r:path}",
            "catalog",
            "orders",
            "notifications",
            "$.a",
            "5xx",
        ]
    ),
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(ALL_KEYS) | st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=6,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


def _get(node: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        node = node[p]
    return node


@st.composite
def mutated_plans(draw: st.DrawFn) -> Any:
    data = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        paths = _paths(data)
        path = draw(st.sampled_from(paths))
        op = draw(st.sampled_from(["replace", "delete", "add", "duplicate"]))
        if not path:
            if op == "replace":
                data = draw(values)
            continue
        parent, last = _get(data, path[:-1]), path[-1]
        if op == "replace":
            parent[last] = draw(values)
        elif op == "delete":
            del parent[last]
        elif op == "add" and isinstance(parent, dict):
            parent[draw(st.sampled_from(ALL_KEYS))] = draw(values)
        elif op == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[last]))
    return data


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_plans())
def test_mutated_plans_are_accepted_or_rejected_cleanly(data: Any) -> None:
    text = yaml.safe_dump(data, sort_keys=False)
    try:
        plan = parse_plan(text, "migration_plan.yaml")
    except PlanError as exc:
        assert exc.findings
        for finding in exc.findings:
            assert finding.source == "migration_plan.yaml"
            assert finding.line is not None and finding.line >= 1
            assert finding.path or not isinstance(data, dict), finding
            assert str(finding).startswith(f"migration_plan.yaml:{finding.line}: ")
        return
    assert schema_errors(SCHEMA, data) == [], text
    # an accepted plan always routes
    for route in plan.routes:
        for method in route.methods:
            decide(plan, RequestFacts(method, route.path_template, new_cohort_id="x"))


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_damaged_text_never_raises_anything_but_plan_error(data: st.DataObject) -> None:
    text = REPO_PLAN.read_text()
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        at = data.draw(st.integers(min_value=0, max_value=len(text)))
        cut = data.draw(st.integers(min_value=0, max_value=20))
        insert = data.draw(
            st.sampled_from(["", ":", "-", " ", "\n", "{", "[", "&a", "*a", "'", "\t"])
        )
        text = text[:at] + insert + text[at + cut :]
    try:
        parse_plan(text, "migration_plan.yaml")
    except PlanError as exc:
        assert all(f.line is None or f.line >= 1 for f in exc.findings)
        assert str(exc).startswith("migration_plan.yaml")
