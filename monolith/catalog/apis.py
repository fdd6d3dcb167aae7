from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse

from monolith.catalog import selectors, services
from monolith.catalog.models import Category, Product
from monolith.common.api import (
    endpoint,
    format_datetime,
    format_money,
    json_response,
    ordering_from,
    paginate,
    query_bool,
    query_decimal,
    query_int,
    read_json,
)
from monolith.common.validation import Boolean, Currency, Integer, Money, Slug, String, validate

CATEGORY_SPEC = {
    "name": String(max_length=120),
    "slug": Slug(),
    "description": String(required=False, allow_blank=True),
}
PRODUCT_SPEC = {
    "sku": String(max_length=64),
    "name": String(max_length=200),
    "price": Money(),
    "currency": Currency(required=False),
    "description": String(required=False, allow_blank=True),
    "category_id": Integer(required=False, nullable=True, min_value=1),
    "active": Boolean(required=False),
    "stock": Integer(required=False, min_value=0, max_value=2_147_483_647),
}
CATEGORY_ORDERING = ("id", "name", "slug", "created_at")
PRODUCT_ORDERING = ("id", "sku", "name", "price", "stock", "created_at", "updated_at")


def category_json(category: Category) -> dict[str, Any]:
    return {
        "id": category.pk,
        "name": category.name,
        "slug": category.slug,
        "description": category.description,
        "created_at": format_datetime(category.created_at),
        "updated_at": format_datetime(category.updated_at),
    }


def product_json(product: Product) -> dict[str, Any]:
    return {
        "id": product.pk,
        "sku": product.sku,
        "name": product.name,
        "description": product.description,
        "category_id": product.category_id,
        "price": format_money(product.price),
        "currency": product.currency,
        "active": product.active,
        "stock": product.stock,
        "created_at": format_datetime(product.created_at),
        "updated_at": format_datetime(product.updated_at),
    }


def _categories(request: HttpRequest) -> HttpResponse:
    qs = selectors.category_list(
        q=request.GET.get("q"), ordering=ordering_from(request, CATEGORY_ORDERING, "id")
    )
    return paginate(request, qs, category_json)


def _category_create(request: HttpRequest) -> HttpResponse:
    category = services.category_create(**validate(read_json(request), CATEGORY_SPEC))
    return json_response(category_json(category), status=201,
                         headers={"Location": f"/api/catalog/categories/{category.pk}"})


def _category(request: HttpRequest, category_id: int) -> HttpResponse:
    return json_response(category_json(selectors.category_get(category_id=category_id)))


def _category_update(request: HttpRequest, category_id: int) -> HttpResponse:
    selectors.category_get(category_id=category_id)
    changes = validate(read_json(request), CATEGORY_SPEC, partial=True)
    return json_response(category_json(services.category_update(category_id=category_id,
                                                                 **changes)))


def _category_delete(request: HttpRequest, category_id: int) -> HttpResponse:
    services.category_delete(category_id=category_id)
    return HttpResponse(status=204)


def _products(request: HttpRequest) -> HttpResponse:
    qs = selectors.product_list(
        category_id=query_int(request, "category_id"),
        category_slug=request.GET.get("category"),
        active=query_bool(request, "active"),
        in_stock=query_bool(request, "in_stock"),
        min_price=query_decimal(request, "min_price"),
        max_price=query_decimal(request, "max_price"),
        sku=request.GET.get("sku"),
        q=request.GET.get("q"),
        ordering=ordering_from(request, PRODUCT_ORDERING, "id"),
    )
    return paginate(request, qs, product_json)


def _product_create(request: HttpRequest) -> HttpResponse:
    product = services.product_create(**validate(read_json(request), PRODUCT_SPEC))
    return json_response(product_json(product), status=201,
                         headers={"Location": f"/api/catalog/products/{product.pk}"})


def _product(request: HttpRequest, product_id: int) -> HttpResponse:
    return json_response(product_json(selectors.product_get(product_id=product_id)))


def _product_update(request: HttpRequest, product_id: int) -> HttpResponse:
    selectors.product_get(product_id=product_id)
    changes = validate(read_json(request), PRODUCT_SPEC, partial=True)
    return json_response(product_json(services.product_update(product_id=product_id, **changes)))


def _product_delete(request: HttpRequest, product_id: int) -> HttpResponse:
    services.product_delete(product_id=product_id)
    return HttpResponse(status=204)


categories = endpoint(GET=_categories, POST=_category_create)
category = endpoint(GET=_category, PATCH=_category_update, DELETE=_category_delete)
products = endpoint(GET=_products, POST=_product_create)
product = endpoint(GET=_product, PATCH=_product_update, DELETE=_product_delete)
