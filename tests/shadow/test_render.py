import json
import re

import pytest

from strangler_proxy.shadow.engine import sample_payload
from strangler_proxy.shadow.records import Sample
from strangler_proxy.shadow.render import FORMATS, render, render_html, report_to_dict
from strangler_proxy.shadow.render.html import chart_svg, side_by_side
from strangler_proxy.shadow.report import build_report
from strangler_proxy.shadow.result import judge

from .factories import exchange, obs
from .test_report import EP, RULES, T0, tallies, traffic


def sample_report():  # type: ignore[no-untyped-def]
    ex = exchange(
        obs({"id": 1, "price": "10.50", "note": "<script>alert(1)</script>"}),
        obs({"id": 1, "price": "10.60", "note": "<script>alert(1)</script>"}),
        request_id="req-42",
        headers=(("authorization", "Bearer s3cret"),),
    )
    payload = sample_payload(ex, judge(ex, RULES), 1 << 20)
    sample = Sample(EP, "value_changed $.price", "candidate", T0, "req-42", payload)
    return build_report("svc", tallies(traffic(60, price_bug_every=2)), now=T0, samples=[sample])


def test_json_keeps_flagged_noise_and_ignored_apart() -> None:
    data = json.loads(render(sample_report(), "json"))
    [e] = data["endpoints"]
    assert e["flagged"] == ["$.price"]
    assert e["noise"] == ["$.at"]
    assert e["ignored"] == ["$.request_id"]
    assert data["verdict"] == "fail" and data["samples"] == 60
    assert report_to_dict(sample_report())["endpoints"][0]["mismatch_rate"] == 0.5


def test_text_and_markdown_name_the_flagged_field() -> None:
    text = render(sample_report(), "text")
    assert "FAIL" in text and "$.price" in text and "noise (cancelled): $.at" in text
    md = render(sample_report(), "md")
    assert "| `GET /api/things/{id}` | 60 | 50.00% | 100.00% | 0 | `$.price` |" in md
    assert "| `$.at` | value_changed | noise |" in md


def test_html_is_self_contained() -> None:
    page = render_html(sample_report())
    assert page.startswith("<!doctype html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page, re.I)
    assert "http://" not in page and "https://" not in page
    assert "<link" not in page and "@import" not in page
    assert "<svg" in page and "<style>" in page


def test_html_drill_down_shows_side_by_side_sample_escaped_and_redacted() -> None:
    page = render_html(sample_report())
    assert "req-42" in page
    assert "10.60" in page and "class='del'" in page and "class='add'" in page
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;" in page
    assert "s3cret" not in page


def test_empty_report_renders_in_every_format() -> None:
    empty = build_report("svc", [], now=T0)
    for fmt in FORMATS:
        assert render(empty, fmt)
    assert "No comparisons" in render_html(empty)


def test_unknown_format() -> None:
    with pytest.raises(ValueError, match="unknown report format 'pdf'"):
        render(sample_report(), "pdf")


def test_side_by_side_folds_long_equal_runs() -> None:
    left = "\n".join(f"line {i}" for i in range(50))
    right = left.replace("line 25", "LINE 25")
    table = side_by_side(left, right, "a", "b")
    assert "equal lines" in table and "LINE 25" in table


def test_chart_with_no_points() -> None:
    assert "No comparisons" in chart_svg(())


def test_long_timelines_are_merged_for_the_chart() -> None:
    from strangler_proxy.shadow.render.html import downsample
    from strangler_proxy.shadow.report import TimePoint

    points = tuple(TimePoint(60 * i, 10, 5, i % 2) for i in range(1000))
    merged = downsample(points, limit=100)
    assert len(merged) == 100
    assert sum(p.compared for p in merged) == 10_000
    assert sum(p.mismatched for p in merged) == 500
    assert merged[1].bucket == 600
    assert chart_svg(points).count("<circle") <= 2 * 120

