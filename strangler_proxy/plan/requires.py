"""``requires:`` between services: names that exist, no cycles, and a warning when a
service stands later on the ladder than a service it requires."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from strangler_proxy.plan.checker import Checker
from strangler_proxy.plan.model import ServicePlan
from strangler_proxy.plan.yamlnodes import Path

__all__ = ["check_requires"]


def check_requires(ctx: Checker, services: dict[str, ServicePlan], raw: Mapping[str, Any]) -> None:
    known = set(raw)
    for name, service in services.items():
        p: Path = ("services", name, "requires")
        for i, dep in enumerate(service.requires):
            if dep == name:
                ctx.error((*p, i), "a service cannot require itself")
            elif dep not in known:
                hint = difflib.get_close_matches(dep, sorted(known), n=1)
                suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
                ctx.error((*p, i), f"unknown service {dep!r}{suggestion}")
            elif dep in services and services[dep].stage.rank < service.stage.rank:
                ctx.warn(
                    (*p, i),
                    f"stage {service.stage} is ahead of required service {dep!r} "
                    f"(stage {services[dep].stage})",
                )
    reported: set[str] = set()
    for start in sorted(services):
        cycle = _find_cycle(start, services)
        if cycle and not reported.intersection(cycle):
            reported.update(cycle)
            ctx.error(
                ("services", cycle[0], "requires"),
                "dependency cycle: " + " -> ".join([*cycle, cycle[0]]),
            )


def _find_cycle(start: str, services: Mapping[str, ServicePlan]) -> list[str] | None:
    stack: list[str] = []
    on_stack: set[str] = set()
    done: set[str] = set()

    def visit(node: str) -> list[str] | None:
        if node in on_stack:
            return stack[stack.index(node) :]
        if node in done or node not in services:
            return None
        stack.append(node)
        on_stack.add(node)
        for dep in services[node].requires:
            if dep != node:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        on_stack.discard(node)
        done.add(node)
        return None

    return visit(start)
