from __future__ import annotations

import pytest

from strangler_proxy.plan import parse_plan
from strangler_proxy.plan.model import Route
from strangler_proxy.plan.routes import index_routes, parse_route_template
from tests.plan.samples import VALID


def test_route_templates_compile() -> None:
    assert parse_route_template("/") == ()
    assert parse_route_template("/a/b/") == ((Route.LITERAL, "a"), (Route.LITERAL, "b"))
    assert parse_route_template("/a%20b/{id}/{rest:path}") == (
        (Route.LITERAL, "a b"),
        (Route.PARAM, "id"),
        (Route.CATCH_ALL, "rest"),
    )
    for bad in ["a", "/a?b", "/a b", "/{1x}", "/a/{x}{y}"]:
        with pytest.raises(ValueError):
            parse_route_template(bad)


def test_routes_are_indexed_by_first_segment_and_length_most_specific_first() -> None:
    plan = parse_plan(
        VALID.replace(
            "      - /api/orders\n",
            '      - /api/orders\n      - "/{any:path}"\n      - /\n      - "/api/{x}"\n',
        )
    )
    index = index_routes(plan.routes)
    assert dict(plan.route_index) == index
    assert [r.path_template for r in index[("api", 4)]] == ["/api/catalog/products/{id}"]
    assert [r.path_template for r in index[("api", 3)]] == ["/api/notifications/{id}"]
    assert [r.path_template for r in index[("api", 2)]] == [
        "/api/notifications",
        "/api/orders",
        "/api/{x}",
    ]
    assert [r.path_template for r in index[(None, -1)]] == ["/{any:path}"]
    assert [r.path_template for r in index[(None, 0)]] == ["/"]
