from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse

from monolith.common.api import (
    endpoint,
    format_datetime,
    json_response,
    ordering_from,
    paginate,
    query_bool,
    query_choice,
    query_int,
    read_json,
)
from monolith.common.validation import Boolean, Choice, FlagMap, Integer, String, validate
from monolith.notifications import selectors, services
from monolith.notifications.models import Channel, Notification, NotificationTemplate

CHANNELS = tuple(Channel.values)
STATUSES = tuple(Notification.Status.values)
CREATE_SPEC = {
    "customer_id": Integer(min_value=1),
    "channel": Choice(choices=CHANNELS),
    "subject": String(max_length=200),
    "body": String(),
}
UPDATE_SPEC = {
    "read": Boolean(required=False),
    "status": Choice(required=False, choices=STATUSES),
}
PREFERENCES_SPEC = {"channels": FlagMap(keys=CHANNELS)}
ORDERING = ("id", "created_at", "sent_at")


def notification_json(n: Notification) -> dict[str, Any]:
    return {
        "id": n.pk,
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


def template_json(t: NotificationTemplate) -> dict[str, Any]:
    return {
        "id": t.pk,
        "key": t.key,
        "channel": t.channel,
        "subject": t.subject,
        "body": t.body,
        "created_at": format_datetime(t.created_at),
        "updated_at": format_datetime(t.updated_at),
    }


def _list(request: HttpRequest) -> HttpResponse:
    qs = selectors.notification_list(
        customer_id=query_int(request, "customer_id"),
        channel=query_choice(request, "channel", CHANNELS),
        status=query_choice(request, "status", STATUSES),
        read=query_bool(request, "read"),
        template=request.GET.get("template"),
        ordering=ordering_from(request, ORDERING, "-created_at"),
    )
    return paginate(request, qs, notification_json)


def _create(request: HttpRequest) -> HttpResponse:
    notification = services.notification_create(**validate(read_json(request), CREATE_SPEC))
    return json_response(notification_json(notification), status=201,
                         headers={"Location": f"/api/notifications/{notification.pk}"})


def _detail(request: HttpRequest, notification_id: int) -> HttpResponse:
    return json_response(notification_json(
        selectors.notification_get(notification_id=notification_id)))


def _update(request: HttpRequest, notification_id: int) -> HttpResponse:
    selectors.notification_get(notification_id=notification_id)
    changes = validate(read_json(request), UPDATE_SPEC, partial=True)
    return json_response(notification_json(
        services.notification_update(notification_id=notification_id, **changes)))


def _preferences_json(customer_id: int, channels: dict[str, bool]) -> dict[str, Any]:
    return {"customer_id": customer_id, "channels": channels}


def _preferences(request: HttpRequest, customer_id: int) -> HttpResponse:
    return json_response(_preferences_json(
        customer_id, selectors.preferences_get(customer_id=customer_id)))


def _preferences_update(request: HttpRequest, customer_id: int) -> HttpResponse:
    selectors.preferences_get(customer_id=customer_id)
    channels = validate(read_json(request), PREFERENCES_SPEC)["channels"]
    return json_response(_preferences_json(
        customer_id, services.preferences_update(customer_id=customer_id, channels=channels)))


def _templates(request: HttpRequest) -> HttpResponse:
    return paginate(request, selectors.template_list(), template_json)


notifications = endpoint(GET=_list, POST=_create)
notification = endpoint(GET=_detail, PATCH=_update)
preferences = endpoint(GET=_preferences, PUT=_preferences_update, PATCH=_preferences_update)
templates = endpoint(GET=_templates)
