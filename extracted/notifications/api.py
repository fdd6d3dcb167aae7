"""The monolith's notifications API contract, served from the service's database.

Handlers are plain functions of (session, request values) returning a :class:`Reply`;
:mod:`extracted.notifications.app` runs each in one database transaction, committed —
or rolled back when the request carries the dry-run header.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from sqlalchemy.orm import Session

from extracted.notifications import services
from extracted.notifications.delivery import Backend
from extracted.notifications.errors import (
    MalformedRequest,
    UnsupportedMediaType,
    ValidationFailed,
)
from extracted.notifications.models import Notification, Template
from extracted.notifications.validation import (
    Boolean,
    Choice,
    FlagMap,
    Integer,
    String,
    StringMap,
    validate,
)

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
CREATE_SPEC = {
    "customer_id": Integer(min_value=1),
    "channel": Choice(choices=services.CHANNELS),
    "subject": String(max_length=200),
    "body": String(),
}
UPDATE_SPEC = {
    "read": Boolean(required=False),
    "status": Choice(required=False, choices=services.STATUSES),
}
PREFERENCES_SPEC = {"channels": FlagMap(keys=services.CHANNELS)}
SEND_SPEC = {
    "customer_id": Integer(min_value=1),
    "template": String(max_length=64),
    "context": StringMap(required=False),
    "idempotency_key": String(max_length=64),
}
ORDERING = ("id", "created_at", "sent_at")


@dataclass(frozen=True)
class Req:
    method: str
    path: str
    query: Mapping[str, str]  # last value per name, like Django's QueryDict.get
    content_type: str
    body: bytes
    params: Mapping[str, int]
    backend: Backend | None  # None on dry runs: nothing is delivered


@dataclass
class Reply:
    body: Any
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


def format_datetime(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def notification_json(n: Notification) -> dict[str, Any]:
    return {
        "id": n.id,
        "customer_id": n.customer_id,
        "channel": n.channel,
        "template": n.template,
        "subject": n.subject,
        "body": n.body,
        "status": n.status,
        "read": n.read_at is not None,
        "created_at": format_datetime(n.created_at),
        "sent_at": format_datetime(n.sent_at),
        "read_at": format_datetime(n.read_at),
    }


def template_json(t: Template) -> dict[str, Any]:
    return {
        "id": t.id, "key": t.key, "channel": t.channel, "subject": t.subject, "body": t.body,
        "created_at": format_datetime(t.created_at),
        "updated_at": format_datetime(t.updated_at),
    }


# -- request parsing (the monolith's rules and messages) -------------------------------

def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def read_json(req: Req) -> Any:
    ct = req.content_type
    if ct != "application/json" and not (ct.startswith("application/") and ct.endswith("+json")):
        raise UnsupportedMediaType(
            f"Expected Content-Type: application/json, got {ct or 'none'!r}.")
    if not req.body.strip():
        raise MalformedRequest("Request body is empty; expected a JSON object.")
    try:
        return json.loads(req.body.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise MalformedRequest("Request body is not valid UTF-8.") from None
    except json.JSONDecodeError as exc:
        raise MalformedRequest(
            f"Malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}.") from None
    except ValueError as exc:
        raise MalformedRequest(f"Malformed JSON: {exc}.") from None


def query_int(req: Req, name: str, *, minimum: int | None = None) -> int | None:
    raw = req.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ValidationFailed.single(name, "Must be an integer.") from None
    if minimum is not None and value < minimum:
        raise ValidationFailed.single(name, f"Must be at least {minimum}.")
    return value


def query_bool(req: Req, name: str) -> bool | None:
    raw = req.query.get(name)
    if raw is None or raw == "":
        return None
    lowered = raw.lower()
    if lowered in {"true", "1", "yes"}:
        return True
    if lowered in {"false", "0", "no"}:
        return False
    raise ValidationFailed.single(name, "Must be true or false.")


def query_choice(req: Req, name: str, choices: Sequence[str]) -> str | None:
    raw = req.query.get(name)
    if raw is None or raw == "":
        return None
    if raw not in choices:
        raise ValidationFailed.single(name, f"Must be one of: {', '.join(choices)}.")
    return raw


def ordering_from(req: Req, allowed: Sequence[str], default: str) -> list[str]:
    names = set(allowed)
    raw = req.query.get("ordering") or default
    terms = [t.strip() for t in raw.split(",") if t.strip()]
    for term in terms:
        if term.lstrip("-") not in names:
            raise ValidationFailed.single(
                "ordering", f"Unknown ordering {term!r}; allowed: {', '.join(sorted(names))}.")
    if not any(t.lstrip("-") == "id" for t in terms):
        terms.append("-id" if terms and terms[0].startswith("-") else "id")
    return terms


def paginate(session: Session, req: Req, query: sa.Select[Any],
             serialize: Callable[[Any], dict[str, Any]]) -> Reply:
    page = query_int(req, "page", minimum=1) or 1
    page_size = query_int(req, "page_size", minimum=1) or DEFAULT_PAGE_SIZE
    if page_size > MAX_PAGE_SIZE:
        raise ValidationFailed.single("page_size", f"Must be at most {MAX_PAGE_SIZE}.")
    count = session.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar_one()
    start = (page - 1) * page_size
    items = session.scalars(query.offset(start).limit(page_size)).all()
    return Reply({
        "count": count,
        "next": _page_link(req, page + 1) if start + page_size < count else None,
        "previous": _page_link(req, page - 1) if page > 1 else None,
        "results": [serialize(item) for item in items],
    })


def _page_link(req: Req, page: int) -> str:
    params = dict(req.query)
    params["page"] = str(page)
    return f"{req.path}?{urlencode(sorted(params.items()))}"


# -- handlers --------------------------------------------------------------------------

def list_notifications(session: Session, req: Req) -> Reply:
    query = services.notification_query(
        customer_id=query_int(req, "customer_id"),
        channel=query_choice(req, "channel", services.CHANNELS),
        status=query_choice(req, "status", services.STATUSES),
        read=query_bool(req, "read"),
        template=req.query.get("template"),
        ordering=ordering_from(req, ORDERING, "-created_at"),
    )
    return paginate(session, req, query, notification_json)


def create_notification(session: Session, req: Req) -> Reply:
    data = validate(read_json(req), CREATE_SPEC)
    notification = services.notification_create(session, req.backend, **data)
    return Reply(notification_json(notification), 201,
                 {"Location": f"/api/notifications/{notification.id}"})


def get_notification(session: Session, req: Req) -> Reply:
    return Reply(notification_json(services.notification_get(session, req.params["id"])))


def update_notification(session: Session, req: Req) -> Reply:
    notification = services.notification_get(session, req.params["id"])
    changes = validate(read_json(req), UPDATE_SPEC, partial=True)
    return Reply(notification_json(services.notification_update(session, notification,
                                                                **changes)))


def get_preferences(session: Session, req: Req) -> Reply:
    customer_id = req.params["customer_id"]
    return Reply({"customer_id": customer_id,
                  "channels": services.preferences_get(session, customer_id)})


def update_preferences(session: Session, req: Req) -> Reply:
    customer_id = req.params["customer_id"]
    services.preferences_get(session, customer_id)
    channels = validate(read_json(req), PREFERENCES_SPEC)["channels"]
    return Reply({"customer_id": customer_id,
                  "channels": services.preferences_update(session, customer_id, channels)})


def send_templated(session: Session, req: Req) -> Reply:
    """The monolith's ``notification_send`` as a call: render a template for every channel
    the customer enabled and deliver. Idempotent by ``idempotency_key``."""
    data = validate(read_json(req), SEND_SPEC)
    previous = services.send_request_get(session, data["idempotency_key"])
    if previous is not None:
        return Reply({"results": [notification_json(n) for n in previous]}, 200)
    sent = services.notification_send(session, req.backend, customer_id=data["customer_id"],
                                      template=data["template"],
                                      context=data.get("context") or {})
    services.send_request_record(session, data["idempotency_key"], sent)
    return Reply({"results": [notification_json(n) for n in sent]}, 201)


def list_templates(session: Session, req: Req) -> Reply:
    return paginate(session, req, services.template_query(), template_json)


Handler = Callable[[Session, Req], Reply]

# path template (Starlette syntax) -> method -> handler; HEAD follows GET
ENDPOINTS: dict[str, dict[str, Handler]] = {
    "/api/notifications": {"GET": list_notifications, "POST": create_notification},
    "/api/notifications/templates": {"GET": list_templates},
    "/api/notifications/preferences/{customer_id:int}": {
        "GET": get_preferences, "PUT": update_preferences, "PATCH": update_preferences},
    "/api/notifications/{id:int}": {"GET": get_notification, "PATCH": update_notification},
    "/internal/notifications/send": {"POST": send_templated},
}
