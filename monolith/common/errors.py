"""Errors the services raise and the API turns into JSON bodies.

    ApplicationError            (status, code, message[, fields])
    ├── ValidationFailed        400 validation_error — field -> [messages]
    ├── MalformedRequest        400 malformed_json / invalid_query
    ├── NotFound                404 not_found
    ├── Conflict                409 insufficient_stock, duplicate, invalid_transition, ...
    ├── PayloadTooLarge         413 payload_too_large
    └── UnsupportedMediaType    415 unsupported_media_type

Body: ``{"error": {"code": ..., "message": ..., "fields": {...}}}`` (``fields`` only
for validation errors).
"""

from __future__ import annotations

from typing import Any


class ApplicationError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None,
                 fields: dict[str, Any] | None = None,
                 extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.fields = fields
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.fields is not None:
            error["fields"] = self.fields
        error.update(self.extra)
        return {"error": error}


class ValidationFailed(ApplicationError):
    status = 400
    code = "validation_error"

    def __init__(self, fields: dict[str, Any], message: str = "Invalid input.") -> None:
        super().__init__(message, fields=fields)

    @classmethod
    def single(cls, field: str, message: str) -> ValidationFailed:
        return cls({field: [message]})


class MalformedRequest(ApplicationError):
    status = 400
    code = "malformed_json"


class NotFound(ApplicationError):
    status = 404
    code = "not_found"


class MethodNotAllowed(ApplicationError):
    status = 405
    code = "method_not_allowed"


class Conflict(ApplicationError):
    status = 409
    code = "conflict"


class PayloadTooLarge(ApplicationError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(ApplicationError):
    status = 415
    code = "unsupported_media_type"
