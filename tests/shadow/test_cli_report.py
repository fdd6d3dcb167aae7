import json
import time
from pathlib import Path

from click.testing import CliRunner

from strangler_proxy.cli import cli
from strangler_proxy.cli.report import parse_since
from strangler_proxy.shadow.engine import ShadowEngine
from strangler_proxy.shadow.rules import rules_from_mapping
from strangler_proxy.shadow.store import ShadowStore

from .factories import exchange, obs

PLAN = """\
version: 1
monolith: {url: http://127.0.0.1:8000}
shadow_store: {url: "sqlite:///state/shadow.db", max_samples: 5}
services:
  notifications:
    url: http://127.0.0.1:8101
    routes:
      - {path: "/api/notifications/{id}", methods: [GET]}
    stage: shadow
    shadow: {ignore: ["$.id"], noise_sample: 1.0}
    gates: {min_samples: 10, max_mismatch_rate: 0.01, max_error_rate: 0.01}
"""


def populate(plan_dir: Path) -> None:
    store = ShadowStore(f"sqlite:///{plan_dir}/state/shadow.db")
    rules = rules_from_mapping({"ignore": ["$.id"]})
    engine = ShadowEngine(store, lambda s, r: rules.for_route(r), flush_interval_s=0.02)
    now = time.time()
    for i in range(20):
        p = {"id": 1, "at": f"{i}a", "title": "Hi"}
        c = {"id": 9, "at": f"{i}b", "title": "Hi" if i % 2 else "Hello"}
        s = {"id": 1, "at": f"{i}c", "title": "Hi"}
        engine.submit(
            exchange(
                obs(p),
                obs(c),
                obs(s),
                service="notifications",
                route="/api/notifications/{id}",
                ts=now - 600,
                request_id=f"r{i}",
            )
        )
    assert engine.flush()
    engine.close()


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_report_formats_from_the_plans_store(tmp_path: Path) -> None:
    (tmp_path / "plan.yaml").write_text(PLAN)
    populate(tmp_path)
    plan = str(tmp_path / "plan.yaml")
    code, out, _ = run("report", "notifications", "--plan", plan)
    assert code == 0 and "FAIL" in out and "$.title" in out

    code, out, _ = run("report", "notifications", "--plan", plan, "--json")
    data = json.loads(out)
    [e] = data["endpoints"]
    assert (e["flagged"], e["noise"], e["ignored"]) == (["$.title"], ["$.at"], ["$.id"])
    assert e["samples"] == 20 and e["mismatch_rate"] == 0.5

    code, out, _ = run("report", "notifications", "--plan", plan, "--format", "md")
    assert code == 0 and "`$.title`" in out

    target = tmp_path / "out" / "report.html"
    code, _, err = run(
        "report", "notifications", "--plan", plan, "--format", "html", "-o", str(target)
    )
    assert code == 0 and "wrote html report" in err
    assert "$.title" in target.read_text()

    code, out, _ = run("report", "notifications", "--plan", plan, "--json", "--since", "2m")
    assert json.loads(out)["samples"] == 0


def test_unknown_service_and_invalid_plan(tmp_path: Path) -> None:
    (tmp_path / "plan.yaml").write_text(PLAN)
    code, _, err = run("report", "nope", "--plan", str(tmp_path / "plan.yaml"))
    assert code == 2 and "no service 'nope'" in err and "notifications" in err
    (tmp_path / "bad.yaml").write_text("version: 1\nservices: [\n")
    code, _, err = run("report", "x", "--plan", str(tmp_path / "bad.yaml"))
    assert code == 2 and "invalid plan" in err


def test_unreachable_store_is_a_clear_error(tmp_path: Path) -> None:
    plan = PLAN.replace("sqlite:///state/shadow.db", "postgresql://u:pw@127.0.0.1:1/x")
    (tmp_path / "plan.yaml").write_text(plan)
    code, _, err = run("report", "notifications", "--plan", str(tmp_path / "plan.yaml"))
    assert code == 1 and "shadow store" in err and "pw" not in err


def test_bad_since(tmp_path: Path) -> None:
    (tmp_path / "plan.yaml").write_text(PLAN)
    code, _, err = run(
        "report", "notifications", "--plan", str(tmp_path / "plan.yaml"), "--since", "soon"
    )
    assert code == 2 and "--since" in err


def test_parse_since() -> None:
    assert parse_since("30m", 10_000.0) == 10_000.0 - 1800
    assert parse_since("2d", 200_000.0) == 200_000.0 - 172_800
    assert parse_since("2024-01-01T00:00:00", 0) == 1_704_067_200.0
    assert parse_since("2024-01-01T01:00:00+01:00", 0) == 1_704_067_200.0
