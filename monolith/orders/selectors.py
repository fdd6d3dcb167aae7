from __future__ import annotations

from django.db.models import QuerySet

from monolith.common.errors import NotFound
from monolith.orders.models import Order


def _with_details(qs: QuerySet[Order]) -> QuerySet[Order]:
    return qs.select_related("payment").prefetch_related("lines")


def order_get(*, order_id: int) -> Order:
    order = _with_details(Order.objects.filter(pk=order_id)).first()
    if order is None:
        raise NotFound(f"Order {order_id} not found.")
    return order


def order_list(*, customer_id: int | None = None, status: str | None = None,
               ordering: list[str] | None = None) -> QuerySet[Order]:
    qs = Order.objects.all()
    if customer_id is not None:
        qs = qs.filter(customer_id=customer_id)
    if status:
        qs = qs.filter(status=status)
    return _with_details(qs.order_by(*(ordering or ["-created_at", "-id"])))
