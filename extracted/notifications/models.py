"""The service's own tables (SQLAlchemy 2), mirroring the monolith's columns.

No foreign keys: rows of different tables arrive from different topics in no common
order. The sink's bookkeeping tables live in the same metadata so Alembic creates them.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from cdc.sinks.sqlalchemy_applier import sink_tables


class Base(DeclarativeBase):
    pass


class Customer(Base):
    """The slice of ``accounts_customer`` notifications need: who and where to send."""

    __tablename__ = "customer"
    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"),
                                    primary_key=True, autoincrement=False)
    email: Mapped[str] = mapped_column(sa.String(254))
    name: Mapped[str] = mapped_column(sa.String(200))
    phone: Mapped[str] = mapped_column(sa.String(32), default="")
    created_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime, nullable=True)
    updated_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime, nullable=True)


class Preference(Base):
    __tablename__ = "preference"
    __table_args__ = (sa.UniqueConstraint("customer_id", "channel",
                                          name="preference_unique_customer_channel"),)
    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"),
                                    primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.BigInteger, index=True)
    channel: Mapped[str] = mapped_column(sa.String(16))
    enabled: Mapped[bool] = mapped_column(sa.Boolean)
    updated_at: Mapped[dt.datetime] = mapped_column(sa.DateTime)


class Template(Base):
    __tablename__ = "template"
    __table_args__ = (sa.UniqueConstraint("key", "channel", name="template_unique_key_channel"),)
    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"),
                                    primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(64))
    channel: Mapped[str] = mapped_column(sa.String(16))
    subject: Mapped[str] = mapped_column(sa.String(200))
    body: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(sa.DateTime)


class Notification(Base):
    __tablename__ = "notification"
    __table_args__ = (sa.Index("notification_customer_created", "customer_id", "created_at"),)
    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"),
                                    primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.BigInteger)
    channel: Mapped[str] = mapped_column(sa.String(16))
    template: Mapped[str] = mapped_column(sa.String(64), default="")
    subject: Mapped[str] = mapped_column(sa.String(200))
    body: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(16), default="pending", index=True)
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime, index=True)
    sent_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime, nullable=True)
    read_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime, nullable=True)


class SendRequest(Base):
    """Idempotency record of ``POST /internal/notifications/send``: a retried call with the
    same key gets the first answer back instead of sending twice."""

    __tablename__ = "send_request"
    key: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime)
    notification_ids: Mapped[str] = mapped_column(sa.Text)  # JSON list


OFFSETS, ROWS = sink_tables(Base.metadata)

# The monolith tables this service's data comes from; the plan's
# ``services.notifications.data.tables`` should list the same (short form: same columns).
DEFAULT_TABLES = {
    "notifications_notification": "notification",
    "notifications_notificationpreference": "preference",
    "notifications_notificationtemplate": "template",
    "accounts_customer": "customer",
}
