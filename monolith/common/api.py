"""The JSON API's plumbing: method dispatch, body parsing, errors, pagination."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django.core.exceptions import RequestDataTooBig
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from monolith.common.errors import (
    ApplicationError,
    MalformedRequest,
    MethodNotAllowed,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
)
from monolith.common.validation import FieldError, Money

log = logging.getLogger("monolith.api")

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
BODY_METHODS = {"POST", "PUT", "PATCH"}


def format_datetime(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def format_money(value: Decimal) -> str:
    return f"{value:.2f}"


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format_money(value)
    if isinstance(value, datetime):
        return format_datetime(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None
                  ) -> HttpResponse:
    return HttpResponse(
        json.dumps(data, default=_default, ensure_ascii=False),
        status=status,
        content_type="application/json",
        headers=dict(headers or {}),
    )


def error_response(error: ApplicationError, headers: Mapping[str, str] | None = None
                   ) -> HttpResponse:
    return json_response(error.body(), status=error.status, headers=headers)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def read_json(request: HttpRequest) -> Any:
    """The request's JSON body; 415 unless the content type is JSON, 400 if unparsable."""
    content_type = request.content_type or ""
    if content_type != "application/json" and not (
        content_type.startswith("application/") and content_type.endswith("+json")
    ):
        raise UnsupportedMediaType(
            f"Expected Content-Type: application/json, got {content_type or 'none'!r}."
        )
    try:
        raw = request.body
    except RequestDataTooBig:
        raise PayloadTooLarge("Request body too large.") from None
    if not raw.strip():
        raise MalformedRequest("Request body is empty; expected a JSON object.")
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise MalformedRequest("Request body is not valid UTF-8.") from None
    except json.JSONDecodeError as exc:
        raise MalformedRequest(
            f"Malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}."
        ) from None
    except ValueError as exc:
        raise MalformedRequest(f"Malformed JSON: {exc}.") from None


Handler = Callable[..., HttpResponse]


def endpoint(**handlers: Handler) -> Callable[..., HttpResponse]:
    """One URL, one handler per HTTP method; JSON errors, 405 with ``Allow``, no CSRF."""
    if "GET" in handlers:
        handlers.setdefault("HEAD", handlers["GET"])
    allowed = ", ".join(sorted(handlers))

    @csrf_exempt
    def view(request: HttpRequest, **kwargs: Any) -> HttpResponse:
        handler = handlers.get(request.method or "")
        if handler is None:
            return error_response(
                MethodNotAllowed(f"Method {request.method} not allowed; allowed: {allowed}."),
                headers={"Allow": allowed},
            )
        try:
            return handler(request, **kwargs)
        except ApplicationError as exc:
            return error_response(exc)

    return view


# -- query parameters --------------------------------------------------------------------

def query_int(request: HttpRequest, name: str, *, minimum: int | None = None) -> int | None:
    raw = request.GET.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ValidationFailed.single(name, "Must be an integer.") from None
    if minimum is not None and value < minimum:
        raise ValidationFailed.single(name, f"Must be at least {minimum}.")
    return value


def query_bool(request: HttpRequest, name: str) -> bool | None:
    raw = request.GET.get(name)
    if raw is None or raw == "":
        return None
    lowered = raw.lower()
    if lowered in {"true", "1", "yes"}:
        return True
    if lowered in {"false", "0", "no"}:
        return False
    raise ValidationFailed.single(name, "Must be true or false.")


def query_decimal(request: HttpRequest, name: str) -> Decimal | None:
    raw = request.GET.get(name)
    if raw is None or raw == "":
        return None
    try:
        return Money(min_value=None).clean(raw)
    except FieldError as exc:
        raise ValidationFailed({name: exc.messages}) from None


def query_choice(request: HttpRequest, name: str, choices: Iterable[str]) -> str | None:
    raw = request.GET.get(name)
    if raw is None or raw == "":
        return None
    options = tuple(choices)
    if raw not in options:
        raise ValidationFailed.single(name, f"Must be one of: {', '.join(options)}.")
    return raw


# -- ordering and pagination -------------------------------------------------------------

def ordering_from(request: HttpRequest, allowed: Iterable[str], default: str) -> list[str]:
    """``?ordering=-price,name`` -> order_by arguments, always ending with a tie-break on id."""
    names = set(allowed)
    raw = request.GET.get("ordering") or default
    terms = [t.strip() for t in raw.split(",") if t.strip()]
    for term in terms:
        if term.lstrip("-") not in names:
            raise ValidationFailed.single(
                "ordering", f"Unknown ordering {term!r}; allowed: {', '.join(sorted(names))}."
            )
    if not any(t.lstrip("-") == "id" for t in terms):
        terms.append("-id" if terms and terms[0].startswith("-") else "id")
    return terms


def paginate(request: HttpRequest, queryset: QuerySet[Any],
             serialize: Callable[[Any], dict[str, Any]]) -> HttpResponse:
    page = query_int(request, "page", minimum=1) or 1
    page_size = query_int(request, "page_size", minimum=1) or DEFAULT_PAGE_SIZE
    if page_size > MAX_PAGE_SIZE:
        raise ValidationFailed.single("page_size", f"Must be at most {MAX_PAGE_SIZE}.")
    count = queryset.count()
    start = (page - 1) * page_size
    results = [serialize(item) for item in queryset[start:start + page_size]]
    return json_response({
        "count": count,
        "next": _page_link(request, page + 1) if start + page_size < count else None,
        "previous": _page_link(request, page - 1) if page > 1 else None,
        "results": results,
    })


def _page_link(request: HttpRequest, page: int) -> str:
    params = request.GET.copy()
    params["page"] = str(page)
    return f"{request.path}?{urlencode(sorted(params.items()))}"
