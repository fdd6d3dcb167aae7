"""Reads and writes of the notifications context, on a SQLAlchemy session.

Same rules as the monolith's ``monolith.notifications`` services. Delivery happens only
through :class:`Delivery`, which a dry-run request replaces with one that sends nothing.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from string import Template as StringTemplate
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from extracted.notifications.config import id_base
from extracted.notifications.delivery import Backend, DeliveryError, OutgoingMessage, log
from extracted.notifications.errors import Conflict, NotFound, ValidationFailed
from extracted.notifications.models import (
    Customer,
    Notification,
    Preference,
    SendRequest,
    Template,
)

CHANNELS = ("email", "sms")
STATUSES = ("pending", "sent", "failed")
DEFAULT_CHANNELS = {"email": True, "sms": False}


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def preferences_for(session: Session, customer_id: int) -> dict[str, bool]:
    channels = dict(DEFAULT_CHANNELS)
    for channel, enabled in session.execute(
        sa.select(Preference.channel, Preference.enabled).where(
            Preference.customer_id == customer_id)
    ):
        channels[channel] = enabled
    return channels


def _customer(session: Session, customer_id: int) -> Customer | None:
    return session.get(Customer, customer_id)


def preferences_get(session: Session, customer_id: int) -> dict[str, bool]:
    if _customer(session, customer_id) is None:
        raise NotFound(f"Customer {customer_id} not found.")
    return preferences_for(session, customer_id)


def notification_get(session: Session, notification_id: int) -> Notification:
    notification = session.get(Notification, notification_id)
    if notification is None:
        raise NotFound(f"Notification {notification_id} not found.")
    return notification


_ORDER_COLUMNS = {"id": Notification.id, "created_at": Notification.created_at,
                  "sent_at": Notification.sent_at}


def notification_query(*, customer_id: int | None, channel: str | None, status: str | None,
                       read: bool | None, template: str | None,
                       ordering: list[str]) -> sa.Select[Notification]:
    query = sa.select(Notification)
    if customer_id is not None:
        query = query.where(Notification.customer_id == customer_id)
    if channel:
        query = query.where(Notification.channel == channel)
    if status:
        query = query.where(Notification.status == status)
    if read is not None:
        query = query.where(
            Notification.read_at.is_not(None) if read else Notification.read_at.is_(None))
    if template:
        query = query.where(Notification.template == template)
    order: list[Any] = []
    for term in ordering:
        column = _ORDER_COLUMNS[term.lstrip("-")]
        order.append(column.desc() if term.startswith("-") else column.asc())
    return query.order_by(*order)


def template_query() -> sa.Select[Template]:
    return sa.select(Template).order_by(Template.key, Template.channel)


def _next_id(session: Session, model: type[Notification] | type[Preference]) -> int:
    """The next id in the service's own range (see :data:`config.DEFAULT_ID_BASE`): after
    the highest id at or above the base, never among the monolith's ids synced here."""
    base = id_base()
    column = model.__table__.c.id  # type: ignore[attr-defined]
    highest = session.execute(
        sa.select(sa.func.max(column)).where(column >= base)).scalar_one()
    return base if highest is None else int(highest) + 1


def _insert(session: Session, **values: Any) -> Notification:
    for _attempt in range(5):
        notification = Notification(id=_next_id(session, Notification), **values)
        nested = session.begin_nested()
        session.add(notification)
        try:
            nested.commit()
        except IntegrityError:
            continue  # a concurrent writer took the id
        return notification
    raise Conflict("Could not allocate a notification id; retry.", code="busy")


def _deliver(session: Session, backend: Backend | None, notification: Notification,
             customer: Customer) -> Notification:
    message = OutgoingMessage(
        notification_id=notification.id, channel=notification.channel,
        recipient=customer.email if notification.channel == "email" else customer.phone,
        subject=notification.subject, body=notification.body,
    )
    try:
        if backend is not None:
            backend.deliver(message)
    except DeliveryError as exc:
        log.warning("notification delivery failed",
                    extra={"notification_id": notification.id, "error": str(exc)})
        notification.status = "failed"
    else:
        notification.status = "sent"
        notification.sent_at = now()
    session.flush()
    return notification


def notification_create(session: Session, backend: Backend | None, *, customer_id: int,
                        channel: str, subject: str, body: str) -> Notification:
    """Send an ad-hoc message on one channel; 409 if the customer switched it off.

    ``backend=None`` is a dry run: everything happens except the delivery.
    """
    customer = _customer(session, customer_id)
    if customer is None:
        raise ValidationFailed.single("customer_id", f"Unknown customer {customer_id}.")
    if not preferences_for(session, customer_id).get(channel, False):
        raise Conflict(f"Customer {customer_id} has disabled the {channel} channel.",
                       code="channel_disabled")
    notification = _insert(session, customer_id=customer_id, channel=channel, template="",
                           subject=subject, body=body, status="pending", created_at=now())
    return _deliver(session, backend, notification, customer)


def notification_send(session: Session, backend: Backend | None, *, customer_id: int,
                      template: str, context: Mapping[str, str]) -> list[Notification]:
    customer = _customer(session, customer_id)
    if customer is None:
        raise NotFound(f"Customer {customer_id} not found.")
    enabled = preferences_for(session, customer_id)
    values = {"customer_name": customer.name, "customer_email": customer.email, **context}
    created = []
    for tpl in session.scalars(
        sa.select(Template).where(Template.key == template).order_by(Template.channel)
    ):
        if not enabled.get(tpl.channel, False):
            continue
        created.append(_insert(
            session, customer_id=customer_id, channel=tpl.channel, template=tpl.key,
            subject=StringTemplate(tpl.subject).safe_substitute(values),
            body=StringTemplate(tpl.body).safe_substitute(values),
            status="pending", created_at=now(),
        ))
    return [_deliver(session, backend, n, customer) for n in created]


def notification_update(session: Session, notification: Notification, *,
                        read: bool | None = None, status: str | None = None) -> Notification:
    stamp = now()
    if read is True and notification.read_at is None:
        notification.read_at = stamp
    elif read is False:
        notification.read_at = None
    if status is not None and status != notification.status:
        notification.status = status
        notification.sent_at = stamp if status == "sent" else None
    session.flush()
    return notification


def preferences_update(session: Session, customer_id: int, channels: Mapping[str, bool]
                       ) -> dict[str, bool]:
    stamp = now()
    for channel, enabled in channels.items():
        existing = session.scalars(sa.select(Preference).where(
            Preference.customer_id == customer_id, Preference.channel == channel)).first()
        if existing is None:
            session.add(Preference(id=_next_id(session, Preference), customer_id=customer_id,
                                   channel=channel, enabled=enabled, updated_at=stamp))
        else:
            existing.enabled = enabled
            existing.updated_at = stamp
    session.flush()
    return preferences_for(session, customer_id)


def send_request_get(session: Session, key: str) -> list[Notification] | None:
    record = session.get(SendRequest, key)
    if record is None:
        return None
    ids = json.loads(record.notification_ids)
    found = {n.id: n for n in session.scalars(sa.select(Notification).where(
        Notification.id.in_(ids)))}
    return [found[i] for i in ids if i in found]


def send_request_record(session: Session, key: str, sent: list[Notification]) -> None:
    session.add(SendRequest(key=key, created_at=now(),
                            notification_ids=json.dumps([n.id for n in sent])))
    session.flush()
