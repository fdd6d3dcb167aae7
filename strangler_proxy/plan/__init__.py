"""The migration plan: frozen model, parser/validator, loading, watching, stage ladder."""

from strangler_proxy.plan.errors import PlanError
from strangler_proxy.plan.model import (
    CanaryPolicy,
    CohortSource,
    DataPolicy,
    FallbackPolicy,
    Finding,
    Plan,
    ProxySettings,
    Route,
    ServicePlan,
    ShadowPolicy,
    Stage,
    Upstream,
)
from strangler_proxy.plan.parse import parse_plan

__all__ = [
    "CanaryPolicy",
    "CohortSource",
    "DataPolicy",
    "FallbackPolicy",
    "Finding",
    "Plan",
    "PlanError",
    "ProxySettings",
    "Route",
    "ServicePlan",
    "ShadowPolicy",
    "Stage",
    "Upstream",
    "parse_plan",
]
