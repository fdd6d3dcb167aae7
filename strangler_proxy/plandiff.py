"""What changed between two plans, in the plan's own terms (pure).

A text diff shows moved bytes; reviewers want "orders: canary 10% -> canary 50%",
"catalog: routes +GET /api/products/{id}". Used by ``strangle plan diff``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from strangler_proxy.plan.model import Plan, ServicePlan, thaw
from strangler_proxy.promotion import rungs_of

__all__ = ["Change", "diff_plans"]


@dataclass(frozen=True, slots=True)
class Change:
    """One difference: ``where`` is ``plan`` or a service name; ``what`` the key."""

    where: str
    what: str
    before: Any
    after: Any

    def __str__(self) -> str:
        if self.what == "service":
            sign = "+" if self.before is None else "-"
            return f"{sign} service {self.where} ({self.before or self.after})"
        if self.what == "routes":
            added = [f"+{r}" for r in self.after if r not in self.before]
            removed = [f"-{r}" for r in self.before if r not in self.after]
            return f"{self.where}: routes {', '.join(added + removed)}"
        return f"{self.where}: {self.what} {_show(self.before)} -> {_show(self.after)}"

    def to_json(self) -> dict[str, Any]:
        return {"where": self.where, "what": self.what, "before": self.before, "after": self.after}


def _show(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


def _facts(service: ServicePlan, rung: str) -> dict[str, Any]:
    return {
        "stage": rung,
        "url": [u.url for u in service.upstreams],
        "routes": sorted(
            f"{'|'.join(sorted(r.methods))} {r.path_template}" for r in service.routes
        ),
        "canary.steps": [f"{s:g}" for s in service.canary.steps],
        "canary.cohort": None if service.canary.cohort is None else str(service.canary.cohort),
        "shadow.sample": service.shadow.sample,
        "shadow.writes": service.shadow.writes,
        "shadow.ignore": list(service.shadow.ignore),
        "fallback": None if service.fallback is None else sorted(service.fallback.on),
        "requires": list(service.requires),
        "gates": thaw(service.gates),
        "data.owner": service.data.owner,
        "data.tables": thaw(service.data.tables),
    }


def diff_plans(old: Plan, new: Plan) -> list[Change]:
    """Every difference that matters to routing, gates or data, services in name order."""
    changes: list[Change] = []
    if old.monolith.url != new.monolith.url:
        changes.append(Change("plan", "monolith.url", old.monolith.url, new.monolith.url))
    old_rungs, new_rungs = rungs_of(old), rungs_of(new)
    for name in sorted({*old.services, *new.services}):
        if name not in new.services:
            changes.append(Change(name, "service", str(old_rungs[name]), None))
            continue
        if name not in old.services:
            changes.append(Change(name, "service", None, str(new_rungs[name])))
            continue
        before = _facts(old.services[name], str(old_rungs[name]))
        after = _facts(new.services[name], str(new_rungs[name]))
        for key in before:
            if before[key] != after[key]:
                changes.append(Change(name, key, before[key], after[key]))
    return changes
