from django.db import models
from django.utils import timezone

from monolith.accounts.models import Customer


class Channel(models.TextChoices):
    EMAIL = "email"
    SMS = "sms"


DEFAULT_CHANNELS = {Channel.EMAIL.value: True, Channel.SMS.value: False}


class NotificationTemplate(models.Model):
    """Subject/body with ``$placeholders`` (string.Template), one per (key, channel)."""

    key = models.CharField(max_length=64)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    subject = models.CharField(max_length=200)
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["key", "channel"], name="template_unique_key_channel"),
        ]


class NotificationPreference(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE,
                                 related_name="notification_preferences")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    enabled = models.BooleanField()
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["customer", "channel"],
                                    name="preference_unique_customer_channel"),
        ]


class Notification(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        SENT = "sent"
        FAILED = "failed"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="notifications")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    template = models.CharField(max_length=64, blank=True, default="")
    subject = models.CharField(max_length=200)
    body = models.TextField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING,
                              db_index=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["customer", "created_at"])]


class PendingSend(models.Model):
    """A ``notification_send`` the notifications service did not confirm yet; retried with
    the same idempotency key until it does (see ``monolith.notifications.remote``)."""

    key = models.CharField(max_length=64, unique=True)
    customer_id = models.BigIntegerField()
    template = models.CharField(max_length=64)
    context = models.JSONField(default=dict)
    attempts = models.IntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now, db_index=True)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
