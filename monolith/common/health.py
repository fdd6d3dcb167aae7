from __future__ import annotations

from django.db import connection
from django.db.utils import Error as DatabaseError
from django.http import HttpRequest, HttpResponse

from monolith.common.api import json_response


def healthz(request: HttpRequest) -> HttpResponse:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        return json_response({"status": "error", "database": str(exc)}, status=503)
    return json_response({"status": "ok", "database": connection.vendor})
