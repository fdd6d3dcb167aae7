"""Collects findings while the parser walks the plan: typed getters that report a bad
value (with file, line and key path) and return a default, so parsing goes on and every
problem is reported at once."""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Mapping
from typing import Any

from strangler_proxy.plan.model import Finding
from strangler_proxy.plan.yamlnodes import Path

__all__ = ["Checker", "describe", "dotted", "fmt", "json_paths"]

_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_$-]+$")


class Checker:
    def __init__(self, source: str, lines: dict[Path, int]) -> None:
        self.source = source
        self.lines = lines
        self.errors: list[Finding] = []
        self.warnings: list[Finding] = []

    def line(self, path: Path) -> int | None:
        p = path
        while True:
            if p in self.lines:
                return self.lines[p]
            if not p:
                return None
            p = p[:-1]

    def error(self, path: Path, message: str) -> None:
        self.errors.append(Finding(self.source, self.line(path), dotted(path), message))

    def error_shown_as(self, path: Path, shown: str, message: str) -> None:
        """An error whose displayed key path is ``shown`` (line looked up from ``path``)."""
        self.errors.append(Finding(self.source, self.line(path), shown, message))

    def warn(self, path: Path, message: str) -> None:
        self.warnings.append(
            Finding(self.source, self.line(path), dotted(path), message, level="warning")
        )

    # ---- typed getters: report and return None (or the default) on bad input ----

    def mapping(self, value: Any, path: Path, allowed: frozenset[str] | None) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.error(path, f"must be a mapping, got {describe(value)}")
            return {}
        if allowed is not None:
            for key in value:
                if key not in allowed:
                    hint = difflib.get_close_matches(key, sorted(allowed), n=1, cutoff=0.6)
                    suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
                    known = ", ".join(sorted(allowed))
                    self.error((*path, key), f"unknown key{suggestion}; allowed: {known}")
        return value

    def number(
        self,
        m: Mapping[str, Any],
        key: str,
        path: Path,
        default: float,
        *,
        lo: float | None = None,
        hi: float | None = None,
        lo_open: bool = False,
        integer: bool = False,
    ) -> float:
        if key not in m:
            return default
        value = self.check_number(
            m[key], (*path, key), lo=lo, hi=hi, lo_open=lo_open, integer=integer
        )
        return default if value is None else value

    def check_number(
        self,
        value: Any,
        p: Path,
        *,
        lo: float | None = None,
        hi: float | None = None,
        lo_open: bool = False,
        integer: bool = False,
    ) -> float | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.error(p, f"must be a {'whole ' if integer else ''}number, got {describe(value)}")
            return None
        if not math.isfinite(value):
            self.error(p, "must be a finite number")
            return None
        if integer and not float(value).is_integer():
            self.error(p, "must be a whole number")
            return None
        too_low = lo is not None and (value <= lo if lo_open else value < lo)
        too_high = hi is not None and value > hi
        if too_low or too_high:
            if lo is not None and hi is not None and lo_open:
                self.error(p, f"must be > {fmt(lo)} and <= {fmt(hi)}, got {fmt(value)}")
            elif lo is not None and hi is not None:
                self.error(p, f"must be {fmt(lo)}..{fmt(hi)}, got {fmt(value)}")
            elif lo is not None:
                op = ">" if lo_open else ">="
                self.error(p, f"must be {op} {fmt(lo)}, got {fmt(value)}")
            else:
                self.error(p, f"must be <= {fmt(hi or 0)}, got {fmt(value)}")
            return None
        return float(value)

    def string(self, m: Mapping[str, Any], key: str, path: Path, default: str | None) -> str | None:
        if key not in m:
            return default
        value = m[key]
        if not isinstance(value, str) or not value:
            self.error((*path, key), f"must be a non-empty string, got {describe(value)}")
            return default
        return value

    def boolean(self, m: Mapping[str, Any], key: str, path: Path, default: bool) -> bool:
        if key not in m:
            return default
        value = m[key]
        if not isinstance(value, bool):
            self.error((*path, key), f"must be true or false, got {describe(value)}")
            return default
        return value

    def strings(self, m: Mapping[str, Any], key: str, path: Path) -> tuple[str, ...] | None:
        if key not in m:
            return None
        value = m[key]
        p = (*path, key)
        if not isinstance(value, list):
            self.error(p, f"must be a list of strings, got {describe(value)}")
            return None
        out: list[str] = []
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item:
                self.error((*p, i), f"must be a non-empty string, got {describe(item)}")
            else:
                out.append(item)
        return tuple(out)

    def required(self, m: Mapping[str, Any], key: str, path: Path) -> bool:
        if key in m:
            return True
        self.error((*path, key), "required key is missing")
        return False


def json_paths(ctx: Checker, m: Mapping[str, Any], path: Path) -> tuple[str, ...] | None:
    ignore = ctx.strings(m, "ignore", path)
    if ignore is None:
        return None
    for i, expr in enumerate(ignore):
        if not expr.startswith("$"):
            ctx.error((*path, "ignore", i), f"must be a JSON path starting with '$', got {expr!r}")
    return ignore


def dotted(path: Path) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not _PLAIN_KEY.match(part):
            out += f"[{json.dumps(part)}]"
        else:
            out += f".{part}" if out else part
    return out


def describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"a number ({fmt(value)})"
    if isinstance(value, str):
        return f"a string ({value!r})" if len(value) < 40 else "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def fmt(value: float) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
