"""Writes of the notifications context.

:func:`notification_send` is the one entry point other contexts use; keep every caller
on it so the call can later be routed to the extracted notifications service.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from string import Template

from django.db import transaction
from django.utils import timezone

from monolith.accounts.models import Customer
from monolith.common.errors import Conflict, NotFound, ValidationFailed
from monolith.common.metrics import NOTIFICATIONS_SENT
from monolith.notifications import remote
from monolith.notifications.backends import DeliveryError, OutgoingMessage, get_backend
from monolith.notifications.models import (
    Notification,
    NotificationPreference,
    NotificationTemplate,
)
from monolith.notifications.selectors import preferences_for

log = logging.getLogger("monolith.notifications")


def _customer_or_400(customer_id: int) -> Customer:
    customer = Customer.objects.filter(pk=customer_id).first()
    if customer is None:
        raise ValidationFailed.single("customer_id", f"Unknown customer {customer_id}.")
    return customer


def _recipient(customer: Customer, channel: str) -> str:
    return customer.email if channel == "email" else customer.phone


def _deliver(notification: Notification, customer: Customer) -> Notification:
    message = OutgoingMessage(
        notification_id=notification.pk, channel=notification.channel,
        recipient=_recipient(customer, notification.channel),
        subject=notification.subject, body=notification.body,
    )
    try:
        get_backend().deliver(message)
    except DeliveryError as exc:
        log.warning("notification delivery failed",
                    extra={"notification_id": notification.pk, "error": str(exc)})
        notification.status = Notification.Status.FAILED
    else:
        notification.status = Notification.Status.SENT
        notification.sent_at = timezone.now()
    notification.save(update_fields=["status", "sent_at"])
    NOTIFICATIONS_SENT.labels(notification.channel, notification.status).inc()
    return notification


def notification_send(*, customer_id: int, template: str, context: Mapping[str, str]
                      ) -> list[Notification]:
    """Render ``template`` for every channel the customer has enabled and deliver it.

    Channels the customer switched off get nothing (no log entry either). Once the plan
    moves notifications to the extracted service, the service does this instead (see
    ``monolith.notifications.remote``) and the result here is empty.
    """
    route = remote.PLAN.current()
    if route.remote and route.url:
        remote.send(url=route.url, customer_id=customer_id, template=template, context=context)
        return []
    customer = Customer.objects.filter(pk=customer_id).first()
    if customer is None:
        raise NotFound(f"Customer {customer_id} not found.")
    enabled = preferences_for(customer_id=customer_id)
    values = {"customer_name": customer.name, "customer_email": customer.email, **context}
    created = []
    with transaction.atomic():
        for tpl in NotificationTemplate.objects.filter(key=template).order_by("channel"):
            if not enabled.get(tpl.channel, False):
                continue
            created.append(Notification.objects.create(
                customer=customer, channel=tpl.channel, template=tpl.key,
                subject=Template(tpl.subject).safe_substitute(values),
                body=Template(tpl.body).safe_substitute(values),
            ))
    return [_deliver(n, customer) for n in created]


def notification_create(*, customer_id: int, channel: str, subject: str, body: str
                        ) -> Notification:
    """Send an ad-hoc message on one channel; 409 if the customer switched it off."""
    customer = _customer_or_400(customer_id)
    if not preferences_for(customer_id=customer_id).get(channel, False):
        raise Conflict(
            f"Customer {customer_id} has disabled the {channel} channel.",
            code="channel_disabled",
        )
    notification = Notification.objects.create(
        customer=customer, channel=channel, subject=subject, body=body
    )
    return _deliver(notification, customer)


@transaction.atomic
def notification_update(*, notification_id: int, read: bool | None = None,
                        status: str | None = None) -> Notification:
    notification = Notification.objects.select_for_update().filter(pk=notification_id).first()
    if notification is None:
        raise NotFound(f"Notification {notification_id} not found.")
    now = timezone.now()
    if read is True and notification.read_at is None:
        notification.read_at = now
    elif read is False:
        notification.read_at = None
    if status is not None and status != notification.status:
        notification.status = status
        notification.sent_at = now if status == Notification.Status.SENT else None
    notification.save(update_fields=["read_at", "status", "sent_at"])
    return notification


@transaction.atomic
def preferences_update(*, customer_id: int, channels: Mapping[str, bool]) -> dict[str, bool]:
    if not Customer.objects.filter(pk=customer_id).exists():
        raise NotFound(f"Customer {customer_id} not found.")
    now = timezone.now()
    for channel, enabled in channels.items():
        NotificationPreference.objects.update_or_create(
            customer_id=customer_id, channel=channel,
            defaults={"enabled": enabled, "updated_at": now},
        )
    return preferences_for(customer_id=customer_id)

