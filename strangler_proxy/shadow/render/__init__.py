"""Renderers of a :class:`~strangler_proxy.shadow.report.Report`: text, md, json, html."""

from __future__ import annotations

from collections.abc import Callable

from strangler_proxy.shadow.render.html import render_html
from strangler_proxy.shadow.render.json_format import render_json, report_to_dict
from strangler_proxy.shadow.render.markdown import render_markdown
from strangler_proxy.shadow.render.terminal import render_text
from strangler_proxy.shadow.report import Report

__all__ = [
    "FORMATS",
    "render",
    "render_html",
    "render_json",
    "render_markdown",
    "render_text",
    "report_to_dict",
]

FORMATS: dict[str, Callable[[Report], str]] = {
    "text": render_text,
    "md": render_markdown,
    "json": render_json,
    "html": render_html,
}


def render(report: Report, fmt: str) -> str:
    try:
        renderer = FORMATS[fmt]
    except KeyError:
        choices = ", ".join(FORMATS)
        raise ValueError(f"unknown report format {fmt!r}; choose from {choices}") from None
    return renderer(report)
