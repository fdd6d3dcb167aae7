"""Turn a response body into a comparable value, by content type.

JSON bodies become plain trees (dict / list / str / int / float / bool / None); numbers
keep their value, so ``10.0`` and ``10`` compare equal later. Text and HTML bodies
become one normalised string. A body that claims JSON but does not parse is kept as
text, so the comparison still sees it.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

_WS = re.compile(r"\s+")
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.S)
_CSRF_INPUT = re.compile(
    r"""(name=["']csrfmiddlewaretoken["'][^>]*?value=["'])[^"']*(["'])""", re.I
)
_CSRF_INPUT_REVERSED = re.compile(
    r"""(value=["'])[^"']*(["'][^>]*?name=["']csrfmiddlewaretoken["'])""", re.I
)
_DECIMAL = re.compile(r"^-?\d+(\.\d+)?$")
_NUMBER_START = frozenset("-0123456789")


@dataclass(frozen=True, slots=True)
class TextRules:
    """How text and HTML bodies are normalised before comparison.

    ``TextRules(replace=(r"\\d{4}-\\d{2}-\\d{2}",))`` masks ISO dates in addition to
    the defaults (whitespace collapsed, HTML comments and CSRF tokens dropped).
    """

    collapse_whitespace: bool = True
    strip_html_comments: bool = True
    mask_csrf_tokens: bool = True
    replace: tuple[str, ...] = ()
    _compiled: tuple[re.Pattern[str], ...] = field(
        default=(), init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "_compiled", tuple(re.compile(p) for p in self.replace))

    def apply(self, text: str, *, html: bool) -> str:
        if html and self.strip_html_comments:
            text = _HTML_COMMENT.sub("", text)
        if html and self.mask_csrf_tokens:
            text = _CSRF_INPUT.sub(r"\1…\2", text)
            text = _CSRF_INPUT_REVERSED.sub(r"\1…\2", text)
        for pattern in self._compiled:
            text = pattern.sub("…", text)
        if self.collapse_whitespace:
            text = _WS.sub(" ", text).strip()
        return text


@dataclass(frozen=True, slots=True)
class Text:
    """A non-JSON body after normalisation."""

    value: str
    media_type: str


@dataclass(frozen=True, slots=True)
class Parsed:
    """A body ready to compare: a JSON tree or a :class:`Text`."""

    value: Any
    is_json: bool


@functools.lru_cache(maxsize=256)
def media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def is_json_type(content_type: str) -> bool:
    mt = media_type(content_type)
    return mt == "application/json" or mt.endswith("+json")


def parse_body(body: bytes, content_type: str, text_rules: TextRules | None = None) -> Parsed:
    mt = media_type(content_type)
    if is_json_type(content_type) or (not mt and body[:1] in (b"{", b"[")):
        try:
            return Parsed(orjson.loads(body), True)
        except orjson.JSONDecodeError:
            pass
    text = body.decode("utf-8", errors="replace")
    rules = text_rules or DEFAULT_TEXT_RULES
    normalised = rules.apply(text, html="html" in mt)
    return Parsed(Text(normalised, mt or "application/octet-stream"), False)


def decimal_value(text: str) -> Decimal | None:
    """The number a decimal string spells (``"10.50"``), else None."""
    if not text or text[0] not in _NUMBER_START or len(text) > 64 or not _DECIMAL.match(text):
        return None
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the regex admits only valid numbers
        return None


DEFAULT_TEXT_RULES = TextRules()
