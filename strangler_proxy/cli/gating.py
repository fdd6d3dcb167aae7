"""What ``status`` and ``promote`` share: loading the plan and judging a service.

Commands get their figure sources from :func:`sources_for`: the plan (shadow store,
CDC) and ``--proxy``; tests pass ready-made sources as ``obj={"sources": ...}``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from strangler_proxy.audit import Entry, History, history_path
from strangler_proxy.figures import (
    Collected,
    ServiceCounters,
    Sources,
    SourceUnavailable,
    collect,
    default_sources,
)
from strangler_proxy.gates import GateConfig, Rung, Verdict, evaluate
from strangler_proxy.plan.edit import PlanFile
from strangler_proxy.plan.errors import PlanError
from strangler_proxy.plan.io import LoadedPlan, parse_plan_bytes
from strangler_proxy.plan.model import Plan
from strangler_proxy.promotion import rungs_of

F = TypeVar("F", bound=Callable[..., Any])

EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_CONCURRENT_EDIT = 3

proxy_option: Callable[[F], F] = click.option(
    "--proxy",
    "proxy_url",
    envvar="STRANGLER_PROXY_URL",
    show_envvar=True,
    default=None,
    help="Base URL of the running proxy (its /_strangler/metrics feeds the gates).",
)


class Failure(click.ClickException):
    """A clear error: bad input, an invalid plan, an impossible move (exit 2)."""

    exit_code = EXIT_USAGE


class Refused(Failure):
    """A gate blocked the promotion; nothing was written (exit 1)."""

    exit_code = EXIT_REFUSED


class ConcurrentEdit(Failure):
    """The plan changed while we worked; nothing was written (exit 3)."""

    exit_code = EXIT_CONCURRENT_EDIT


@dataclass(frozen=True, slots=True)
class Loaded:
    file: PlanFile
    plan: LoadedPlan
    history: History


def load(plan_path: Path) -> Loaded:
    """Read the plan once: the text we edit and the plan we judge are the same bytes."""
    try:
        file = PlanFile.read(plan_path)
    except OSError as exc:
        raise Failure(f"cannot read plan {plan_path}: {exc.strerror or exc}") from None
    try:
        loaded = parse_plan_bytes(file.text.encode("utf-8"), plan_path)
    except PlanError as exc:
        raise Failure(f"the plan is invalid; fix it first:\n{exc}") from None
    data = file.data()
    return Loaded(
        file, loaded, History(history_path(plan_path, data if isinstance(data, dict) else None))
    )


def sources_for(ctx: click.Context, loaded: Loaded, proxy_url: str | None) -> Sources:
    injected = (ctx.obj or {}).get("sources") if isinstance(ctx.obj, dict) else None
    if isinstance(injected, Sources):
        return injected
    token = os.environ.get("STRANGLER_ADMIN_TOKEN") or None
    return default_sources(loaded.plan.plan, loaded.file.path, proxy_url=proxy_url, token=token)


@dataclass(frozen=True, slots=True)
class Scrape:
    """One proxy scrape shared by every service being judged."""

    counters: Mapping[str, ServiceCounters] | None
    error: str | None = None


def scrape(sources: Sources) -> Scrape:
    if sources.proxy is None:
        return Scrape(None)
    try:
        return Scrape(sources.proxy.counters())
    except SourceUnavailable as exc:
        return Scrape(None, str(exc))


@dataclass(frozen=True, slots=True)
class Judgement:
    service: str
    rung: Rung
    target: Rung | None
    collected: Collected
    verdicts: tuple[Verdict, ...]
    last_change: Entry | None


def judge(
    plan: Plan,
    name: str,
    *,
    target: Rung | None,
    sources: Sources,
    history: History,
    scraped: Scrape,
) -> Judgement:
    rungs = rungs_of(plan)
    rung = rungs[name]
    entries, _ = history.read(name)
    last = entries[-1] if entries else None
    stage_since: float | None = None
    baseline: ServiceCounters | None = None
    if last is not None and last.to == rung:
        stage_since = datetime.fromisoformat(last.ts).timestamp()
        raw = (last.figures or {}).get("proxy_counters")
        if isinstance(raw, Mapping):
            try:
                baseline = ServiceCounters.from_json(raw)
            except (KeyError, TypeError, ValueError):
                baseline = None
    if scraped.error is not None:
        why = {**sources.why, "proxy": scraped.error}
        sources = Sources(shadow=sources.shadow, proxy=None, cdc=sources.cdc, why=why)
    collected = collect(
        plan,
        name,
        rung,
        sources,
        stage_since=stage_since,
        baseline=baseline,
        proxy_counters=scraped.counters,
    )
    verdicts: tuple[Verdict, ...] = ()
    if target is not None:
        service = plan.services[name]
        try:
            config = GateConfig.from_mapping(service.gates)
        except ValueError as exc:
            raise Failure(f"services.{name}.{exc}") from None
        verdicts = evaluate(
            current=rung,
            target=target,
            config=config,
            figures=collected.figures,
            dependencies={dep: rungs.get(dep) for dep in service.requires},
        )
    return Judgement(name, rung, target, collected, verdicts, last)


def entry_figures(collected: Collected) -> dict[str, Any]:
    """What an audit entry keeps: the figures, their window, and the raw proxy counters
    (the baseline the next stage's figures are measured from)."""
    out: dict[str, Any] = {**collected.figures.to_json(), "window": collected.window}
    if collected.counters is not None:
        out["proxy_counters"] = collected.counters.to_json()
    return out


def fmt_rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def fmt_verdict(verdict: Verdict) -> str:
    return f"{verdict.gate:<14} {verdict.outcome!s:<8} {verdict.reason}"
