from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.http import HttpRequest, HttpResponse

from monolith.common.api import (
    endpoint,
    format_datetime,
    format_money,
    json_response,
    ordering_from,
    paginate,
    query_choice,
    query_int,
    read_json,
)
from monolith.common.validation import Choice, Integer, ListOf, validate
from monolith.orders import selectors, services
from monolith.orders.models import Order, Payment

PLACE_SPEC = {
    "customer_id": Integer(min_value=1),
    "lines": ListOf(item={
        "product_id": Integer(min_value=1),
        "quantity": Integer(min_value=1, max_value=10_000),
    }),
    "payment_method": Choice(required=False, choices=tuple(Payment.Method.values)),
}
ORDERING = ("id", "created_at", "total", "status")


def payment_json(order: Order) -> dict[str, Any] | None:
    try:
        payment = order.payment
    except ObjectDoesNotExist:
        return None
    return {
        "id": payment.pk,
        "method": payment.method,
        "amount": format_money(payment.amount),
        "currency": payment.currency,
        "status": payment.status,
        "reference": payment.reference,
        "created_at": format_datetime(payment.created_at),
        "updated_at": format_datetime(payment.updated_at),
    }


def order_json(order: Order) -> dict[str, Any]:
    return {
        "id": order.pk,
        "customer_id": order.customer_id,
        "status": order.status,
        "currency": order.currency,
        "total": format_money(order.total),
        "lines": [
            {
                "id": line.pk,
                "product_id": line.product_id,
                "sku": line.sku,
                "name": line.name,
                "quantity": line.quantity,
                "unit_price": format_money(line.unit_price),
                "line_total": format_money(line.line_total),
            }
            for line in order.lines.all()
        ],
        "payment": payment_json(order),
        "created_at": format_datetime(order.created_at),
        "updated_at": format_datetime(order.updated_at),
        "paid_at": format_datetime(order.paid_at),
        "shipped_at": format_datetime(order.shipped_at),
        "cancelled_at": format_datetime(order.cancelled_at),
    }


def _list(request: HttpRequest) -> HttpResponse:
    qs = selectors.order_list(
        customer_id=query_int(request, "customer_id"),
        status=query_choice(request, "status", Order.Status.values),
        ordering=ordering_from(request, ORDERING, "-created_at"),
    )
    return paginate(request, qs, order_json)


def _place(request: HttpRequest) -> HttpResponse:
    order = services.order_place(**validate(read_json(request), PLACE_SPEC))
    return json_response(order_json(selectors.order_get(order_id=order.pk)), status=201,
                         headers={"Location": f"/api/orders/{order.pk}"})


def _detail(request: HttpRequest, order_id: int) -> HttpResponse:
    return json_response(order_json(selectors.order_get(order_id=order_id)))


def _action(service: Callable[..., Order]) -> Callable[..., HttpResponse]:
    def handler(request: HttpRequest, order_id: int) -> HttpResponse:
        service(order_id=order_id)
        return json_response(order_json(selectors.order_get(order_id=order_id)))
    return handler


orders = endpoint(GET=_list, POST=_place)
order = endpoint(GET=_detail)
pay = endpoint(POST=_action(services.order_pay))
ship = endpoint(POST=_action(services.order_ship))
cancel = endpoint(POST=_action(services.order_cancel))
