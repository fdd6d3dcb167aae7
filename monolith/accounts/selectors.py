from __future__ import annotations

from django.db.models import Q, QuerySet

from monolith.accounts.models import Customer
from monolith.common.errors import NotFound


def customer_get(*, customer_id: int) -> Customer:
    customer = Customer.objects.filter(pk=customer_id).first()
    if customer is None:
        raise NotFound(f"Customer {customer_id} not found.")
    return customer


def customer_list(*, email: str | None = None, q: str | None = None,
                  ordering: list[str] | None = None) -> QuerySet[Customer]:
    qs = Customer.objects.all()
    if email:
        qs = qs.filter(email=email.strip().lower())
    if q:
        qs = qs.filter(Q(name__icontains=q) | Q(email__icontains=q))
    return qs.order_by(*(ordering or ["id"]))
