"""Order placement and lifecycle: placed -> paid -> shipped; placed|paid -> cancelled.

Stock is checked and decremented under row locks (``SELECT ... FOR UPDATE`` on
PostgreSQL, taken in product-id order so concurrent orders cannot deadlock; SQLite
serialises writers with IMMEDIATE transactions). Notifications go out after commit.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from monolith.accounts.models import Customer
from monolith.catalog.models import Product
from monolith.common.errors import Conflict, NotFound, ValidationFailed
from monolith.common.metrics import ORDERS_PLACED
from monolith.notifications.services import notification_send
from monolith.orders.models import Order, OrderLine, Payment

log = logging.getLogger("monolith.orders")

TRANSITIONS: dict[str, tuple[str, ...]] = {
    "pay": (Order.Status.PLACED,),
    "ship": (Order.Status.PAID,),
    "cancel": (Order.Status.PLACED, Order.Status.PAID),
}


def _check_lines(lines: list[Mapping[str, int]]) -> None:
    seen: dict[int, int] = {}
    for index, line in enumerate(lines):
        if line["product_id"] in seen:
            raise ValidationFailed({"lines": {str(index): {"product_id": [
                f"Product {line['product_id']} already on line {seen[line['product_id']]}; "
                "combine the quantities."]}}})
        seen[line["product_id"]] = index


def _notify(order_id: int, customer_id: int, template: str, context: Mapping[str, str]) -> None:
    try:
        notification_send(customer_id=customer_id, template=template, context=context)
    except Exception:
        log.exception("notification failed", extra={"order_id": order_id, "template": template})


def _notify_on_commit(order: Order, template: str) -> None:
    context = {"order_id": str(order.pk), "total": f"{order.total:.2f}",
               "currency": order.currency, "status": order.status}
    order_id, customer_id = order.pk, order.customer_id
    transaction.on_commit(lambda: _notify(order_id, customer_id, template, context))


def _locked_products(ids: Iterable[int]) -> dict[int, Product]:
    qs = Product.objects.select_for_update().filter(pk__in=sorted(set(ids))).order_by("pk")
    return {p.pk: p for p in qs}


@transaction.atomic
def order_place(*, customer_id: int, lines: list[Mapping[str, int]],
                payment_method: str = Payment.Method.CARD) -> Order:
    _check_lines(lines)
    if not Customer.objects.filter(pk=customer_id).exists():
        raise ValidationFailed.single("customer_id", f"Unknown customer {customer_id}.")
    products = _locked_products(line["product_id"] for line in lines)
    errors: dict[str, Any] = {}
    for index, line in enumerate(lines):
        if line["product_id"] not in products:
            errors[str(index)] = {"product_id": [f"Unknown product {line['product_id']}."]}
    if errors:
        raise ValidationFailed({"lines": errors})
    inactive = [p.pk for p in products.values() if not p.active]
    if inactive:
        raise Conflict(f"Products not available: {inactive}.", code="product_unavailable",
                       extra={"product_ids": inactive})
    currencies = {p.currency for p in products.values()}
    if len(currencies) > 1:
        raise ValidationFailed.single("lines", f"Products in different currencies: "
                                               f"{sorted(currencies)}.")
    shortages = [
        {"product_id": line["product_id"], "requested": line["quantity"],
         "available": products[line["product_id"]].stock}
        for line in lines if products[line["product_id"]].stock < line["quantity"]
    ]
    if shortages:
        raise Conflict("Insufficient stock.", code="insufficient_stock",
                       extra={"shortages": shortages})

    now = timezone.now()
    for line in lines:
        product = products[line["product_id"]]
        product.stock -= line["quantity"]
        product.updated_at = now
        product.save(update_fields=["stock", "updated_at"])
    total = sum(
        (products[line["product_id"]].price * line["quantity"] for line in lines), Decimal("0")
    )
    currency = currencies.pop()
    order = Order.objects.create(customer_id=customer_id, currency=currency, total=total,
                                 created_at=now, updated_at=now)
    OrderLine.objects.bulk_create([
        OrderLine(order=order, product_id=line["product_id"],
                  sku=products[line["product_id"]].sku, name=products[line["product_id"]].name,
                  quantity=line["quantity"], unit_price=products[line["product_id"]].price,
                  line_total=products[line["product_id"]].price * line["quantity"])
        for line in lines
    ])
    Payment.objects.create(order=order, method=payment_method, amount=total, currency=currency,
                           created_at=now, updated_at=now)
    ORDERS_PLACED.inc()
    _notify_on_commit(order, "order_placed")
    return order


def _locked_order(order_id: int, action: str) -> Order:
    order = Order.objects.select_for_update().filter(pk=order_id).first()
    if order is None:
        raise NotFound(f"Order {order_id} not found.")
    if order.status not in TRANSITIONS[action]:
        raise Conflict(f"Cannot {action} an order that is {order.status}.",
                       code="invalid_transition",
                       extra={"status": order.status, "action": action})
    return order


@transaction.atomic
def order_pay(*, order_id: int) -> Order:
    order = _locked_order(order_id, "pay")
    now = timezone.now()
    order.status, order.paid_at, order.updated_at = Order.Status.PAID, now, now
    order.save(update_fields=["status", "paid_at", "updated_at"])
    Payment.objects.filter(order=order).update(
        status=Payment.Status.CAPTURED, reference=f"PAY-{order.pk:08d}", updated_at=now
    )
    return order


@transaction.atomic
def order_ship(*, order_id: int) -> Order:
    order = _locked_order(order_id, "ship")
    now = timezone.now()
    order.status, order.shipped_at, order.updated_at = Order.Status.SHIPPED, now, now
    order.save(update_fields=["status", "shipped_at", "updated_at"])
    _notify_on_commit(order, "order_shipped")
    return order


@transaction.atomic
def order_cancel(*, order_id: int) -> Order:
    order = _locked_order(order_id, "cancel")
    now = timezone.now()
    lines = list(order.lines.all())
    products = _locked_products(line.product_id for line in lines)
    for line in lines:
        product = products[line.product_id]
        product.stock += line.quantity
        product.updated_at = now
        product.save(update_fields=["stock", "updated_at"])
    was_paid = order.status == Order.Status.PAID
    order.status, order.cancelled_at, order.updated_at = Order.Status.CANCELLED, now, now
    order.save(update_fields=["status", "cancelled_at", "updated_at"])
    Payment.objects.filter(order=order).update(
        status=Payment.Status.REFUNDED if was_paid else Payment.Status.VOIDED, updated_at=now
    )
    _notify_on_commit(order, "order_cancelled")
    return order
