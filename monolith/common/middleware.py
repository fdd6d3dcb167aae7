"""JSON errors for everything under /api/, even ones raised outside our views."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from monolith.common.api import error_response
from monolith.common.errors import ApplicationError, NotFound

log = logging.getLogger("monolith.api")


class ApiErrorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not request.path.startswith("/api/"):
            return None
        if isinstance(exception, ApplicationError):
            return error_response(exception)
        log.exception("unhandled error", extra={"path": request.path, "method": request.method})
        return error_response(ApplicationError("Internal server error."))


@csrf_exempt
def api_not_found(request: HttpRequest) -> HttpResponse:
    return error_response(NotFound(f"No API endpoint at {request.path}."))


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if request.path.startswith("/api/"):
        return error_response(NotFound(f"No API endpoint at {request.path}."))
    return HttpResponse(
        "<!doctype html><title>Not found</title><h1>Not found</h1>",
        status=404, content_type="text/html; charset=utf-8",
    )


def handler500(request: HttpRequest) -> HttpResponse:
    if request.path.startswith("/api/"):
        return error_response(ApplicationError("Internal server error."))
    return HttpResponse(
        "<!doctype html><title>Server error</title><h1>Server error</h1>",
        status=500, content_type="text/html; charset=utf-8",
    )
