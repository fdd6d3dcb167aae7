from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from monolith.accounts.models import Customer
from monolith.common.errors import Conflict, NotFound


def _duplicate_email(email: str) -> Conflict:
    return Conflict(f"A customer with email {email!r} already exists.", code="duplicate",
                    fields={"email": ["Already in use."]})


@transaction.atomic
def customer_create(*, email: str, name: str, phone: str = "") -> Customer:
    if Customer.objects.filter(email=email).exists():
        raise _duplicate_email(email)
    try:
        with transaction.atomic():
            return Customer.objects.create(email=email, name=name, phone=phone)
    except IntegrityError:
        raise _duplicate_email(email) from None


@transaction.atomic
def customer_update(*, customer_id: int, email: str | None = None, name: str | None = None,
                    phone: str | None = None) -> Customer:
    customer = Customer.objects.select_for_update().filter(pk=customer_id).first()
    if customer is None:
        raise NotFound(f"Customer {customer_id} not found.")
    if email is not None and email != customer.email:
        if Customer.objects.filter(email=email).exclude(pk=customer_id).exists():
            raise _duplicate_email(email)
        customer.email = email
    if name is not None:
        customer.name = name
    if phone is not None:
        customer.phone = phone
    customer.updated_at = timezone.now()
    try:
        with transaction.atomic():
            customer.save()
    except IntegrityError:
        raise _duplicate_email(customer.email) from None
    return customer


def customer_get_or_create(*, email: str, name: str) -> Customer:
    existing = Customer.objects.filter(email=email).first()
    if existing is not None:
        return existing
    try:
        return customer_create(email=email, name=name)
    except Conflict:
        return Customer.objects.get(email=email)
