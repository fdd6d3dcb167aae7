"""The real monolith behind the real proxy in shadow stage, a candidate that differs in
exactly one field, the real comparison engine as the proxy's sink: the report, in every
format, names exactly that field."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from strangler_proxy.cli import cli
from strangler_proxy.shadow.store import ShadowStore
from tests.support.monolith_server import MonolithServer, Seed, start_monolith
from tests.support.servers import Server, start_proxy, start_uvicorn

PLAN = """
version: 1
monolith: {url: "MONOLITH"}
shadow_store: {url: "sqlite:///state/shadow.db", max_samples: 5}
services:
  catalog:
    url: "CANDIDATE"
    routes:
      - {path: "/api/catalog/products/{id}", methods: [GET]}
    stage: shadow
    shadow: {sample: 1.0, noise_sample: 1.0, ignore: ["$.updated_at"]}
    gates: {min_samples: 20, max_mismatch_rate: 0.01, max_error_rate: 0.01}
"""
REQUESTS = 40


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Path, Server, MonolithServer]]:
    tmp = tmp_path_factory.mktemp("shadow-e2e")
    (tmp / "mono").mkdir()
    monolith = start_monolith(seed=Seed(customers=3, products=5, orders=3), workdir=tmp / "mono")
    try:
        candidate = start_uvicorn(
            "tests.support.tampering_candidate:app",
            {"UPSTREAM_URL": monolith.url, "TAMPER_FIELD": "stock", "TAMPER_VALUE": "-1"},
        )
        try:
            plan = tmp / "migration_plan.yaml"
            plan.write_text(
                PLAN.replace("MONOLITH", monolith.url).replace("CANDIDATE", candidate.url)
            )
            # No STRANGLER_SINK: the comparison engine is the proxy's default sink.
            proxy = start_proxy(plan, {"STRANGLER_ACCESS_LOG": "0"})
            try:
                yield plan, proxy, monolith
            finally:
                proxy.stop()
        finally:
            candidate.stop()
    finally:
        monolith.stop()


def report(plan: Path, fmt: str) -> str:
    result = CliRunner().invoke(
        cli, ["report", "catalog", "--plan", str(plan), "--format", fmt], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture(scope="module")
def traffic(stack: tuple[Path, Server, MonolithServer]) -> Path:
    plan, proxy, monolith = stack
    with httpx.Client(timeout=10) as client:
        for i in range(REQUESTS):
            path = f"/api/catalog/products/{1 + i % 5}"
            got = client.get(proxy.url + path)
            assert got.status_code == 200
            assert got.json()["stock"] != -1  # the client always gets the monolith's answer
            assert got.content == client.get(monolith.url + path).content
    store = ShadowStore(f"sqlite:///{plan.parent}/state/shadow.db")
    deadline = time.monotonic() + 30
    compared = 0
    while time.monotonic() < deadline:
        compared = sum(t.count for t in store.tallies("catalog") if t.key.source == "candidate")
        if compared >= REQUESTS:
            break
        time.sleep(0.1)
    store.close()
    assert compared == REQUESTS
    return plan


def test_proxy_metrics_expose_the_engine_counters(
    stack: tuple[Path, Server, MonolithServer], traffic: Path
) -> None:
    _, proxy, _ = stack
    text = httpx.get(proxy.url + "/_strangler/metrics", timeout=10).text
    mismatched = [
        line for line in text.splitlines()
        if line.startswith('strangler_shadow_comparisons_total{outcome="mismatched"}')
    ]
    assert mismatched, text
    assert float(mismatched[0].rsplit(" ", 1)[1]) >= REQUESTS


def test_json_report_flags_exactly_the_changed_field(traffic: Path) -> None:
    data = json.loads(report(traffic, "json"))
    [endpoint] = data["endpoints"]
    assert endpoint["endpoint"] == "GET /api/catalog/products/{id}"
    assert endpoint["samples"] == REQUESTS and endpoint["errors"] == 0
    assert endpoint["noise_samples"] >= 10
    assert endpoint["flagged"] == ["$.stock"]
    assert "$.stock" not in endpoint["noise"] + endpoint["ignored"] + endpoint["pending"]
    assert endpoint["mismatch_rate"] == 1.0 and data["verdict"] == "fail"
    [field] = [f for f in endpoint["fields"] if f["status"] == "flagged"]
    assert (field["path"], field["kind"], field["count"]) == ("$.stock", "value_changed", REQUESTS)


def test_text_report_names_exactly_the_changed_field(traffic: Path) -> None:
    text = report(traffic, "text")
    lines = text.splitlines()
    start = lines.index("  flagged fields:")
    flagged = [ln.split()[0] for ln in lines[start + 1 :] if ln.startswith("    ")]
    assert flagged == ["$.stock"]
    assert "FAIL" in text


def test_markdown_report_names_exactly_the_changed_field(traffic: Path) -> None:
    md = report(traffic, "md")
    row = next(ln for ln in md.splitlines() if ln.startswith("| `GET /api/catalog/products/{id}`"))
    assert row.split("|")[6].strip() == "`$.stock`"
    flagged_rows = [ln for ln in md.splitlines() if "**flagged**" in ln]
    assert len(flagged_rows) == 1 and flagged_rows[0].startswith("| `$.stock` | value_changed")


def test_html_report_names_exactly_the_changed_field(traffic: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = CliRunner().invoke(
        cli,
        ["report", "catalog", "--plan", str(traffic), "--format", "html", "-o", str(out)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0
    page = out.read_text()
    assert re.findall(r"<tr class='flagged'><td><code>([^<]*)</code>", page) == ["$.stock"]
    assert "<td><code>$.stock</code></td>" in page  # the endpoints table's flagged cell
    assert "http://" not in page and "https://" not in page
    assert "-1" in page  # the side-by-side sample shows the candidate's value
