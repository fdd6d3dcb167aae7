from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse

from monolith.accounts import selectors, services
from monolith.accounts.models import Customer
from monolith.common.api import (
    endpoint,
    format_datetime,
    json_response,
    ordering_from,
    paginate,
    read_json,
)
from monolith.common.validation import Email, String, validate

CUSTOMER_SPEC = {
    "email": Email(),
    "name": String(max_length=200),
    "phone": String(max_length=32, required=False, allow_blank=True),
}
ORDERING = ("id", "email", "name", "created_at")


def customer_json(customer: Customer) -> dict[str, Any]:
    return {
        "id": customer.pk,
        "email": customer.email,
        "name": customer.name,
        "phone": customer.phone,
        "created_at": format_datetime(customer.created_at),
        "updated_at": format_datetime(customer.updated_at),
    }


def _list(request: HttpRequest) -> HttpResponse:
    qs = selectors.customer_list(
        email=request.GET.get("email"),
        q=request.GET.get("q"),
        ordering=ordering_from(request, ORDERING, "id"),
    )
    return paginate(request, qs, customer_json)


def _create(request: HttpRequest) -> HttpResponse:
    data = validate(read_json(request), CUSTOMER_SPEC)
    customer = services.customer_create(**data)
    return json_response(customer_json(customer), status=201,
                         headers={"Location": f"/api/customers/{customer.pk}"})


def _detail(request: HttpRequest, customer_id: int) -> HttpResponse:
    return json_response(customer_json(selectors.customer_get(customer_id=customer_id)))


def _update(request: HttpRequest, customer_id: int) -> HttpResponse:
    selectors.customer_get(customer_id=customer_id)
    data = validate(read_json(request), CUSTOMER_SPEC, partial=True)
    return json_response(customer_json(services.customer_update(customer_id=customer_id, **data)))


customers = endpoint(GET=_list, POST=_create)
customer = endpoint(GET=_detail, PATCH=_update)
