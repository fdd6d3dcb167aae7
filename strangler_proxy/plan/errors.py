"""``PlanError`` — raised for any plan that cannot be used; carries every finding."""

from __future__ import annotations

from strangler_proxy.plan.model import Finding

__all__ = ["PlanError"]


class PlanError(ValueError):
    """The plan is invalid. ``str()`` lists every error, one per line, each naming file,
    line and key path: ``migration_plan.yaml:14: services.orders.canary.percent: must be
    0..100``. ``findings`` holds them as values (errors only)."""

    def __init__(self, findings: list[Finding] | tuple[Finding, ...]) -> None:
        self.findings: tuple[Finding, ...] = tuple(findings)
        super().__init__("\n".join(str(f) for f in self.findings))

    @classmethod
    def single(
        cls, source: str, message: str, line: int | None = None, path: str = ""
    ) -> PlanError:
        return cls([Finding(source, line, path, message)])
