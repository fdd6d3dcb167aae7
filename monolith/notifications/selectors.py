from __future__ import annotations

from django.db.models import QuerySet

from monolith.accounts.models import Customer
from monolith.common.errors import NotFound
from monolith.notifications.models import (
    DEFAULT_CHANNELS,
    Notification,
    NotificationPreference,
    NotificationTemplate,
)


def preferences_for(*, customer_id: int) -> dict[str, bool]:
    """Every channel -> enabled, defaults filled in (email on, sms off)."""
    channels = dict(DEFAULT_CHANNELS)
    for channel, enabled in NotificationPreference.objects.filter(
        customer_id=customer_id
    ).values_list("channel", "enabled"):
        channels[channel] = enabled
    return channels


def preferences_get(*, customer_id: int) -> dict[str, bool]:
    if not Customer.objects.filter(pk=customer_id).exists():
        raise NotFound(f"Customer {customer_id} not found.")
    return preferences_for(customer_id=customer_id)


def notification_get(*, notification_id: int) -> Notification:
    notification = Notification.objects.filter(pk=notification_id).first()
    if notification is None:
        raise NotFound(f"Notification {notification_id} not found.")
    return notification


def notification_list(*, customer_id: int | None = None, channel: str | None = None,
                      status: str | None = None, read: bool | None = None,
                      template: str | None = None, ordering: list[str] | None = None
                      ) -> QuerySet[Notification]:
    qs = Notification.objects.all()
    if customer_id is not None:
        qs = qs.filter(customer_id=customer_id)
    if channel:
        qs = qs.filter(channel=channel)
    if status:
        qs = qs.filter(status=status)
    if read is not None:
        qs = qs.filter(read_at__isnull=not read)
    if template:
        qs = qs.filter(template=template)
    return qs.order_by(*(ordering or ["-created_at", "-id"]))


def template_list() -> QuerySet[NotificationTemplate]:
    return NotificationTemplate.objects.order_by("key", "channel")
