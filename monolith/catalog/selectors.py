from __future__ import annotations

from decimal import Decimal

from django.db.models import Q, QuerySet

from monolith.catalog.models import Category, Product
from monolith.common.errors import NotFound


def category_get(*, category_id: int) -> Category:
    category = Category.objects.filter(pk=category_id).first()
    if category is None:
        raise NotFound(f"Category {category_id} not found.")
    return category


def category_list(*, q: str | None = None, ordering: list[str] | None = None
                  ) -> QuerySet[Category]:
    qs = Category.objects.all()
    if q:
        qs = qs.filter(Q(name__icontains=q) | Q(slug__icontains=q))
    return qs.order_by(*(ordering or ["id"]))


def product_get(*, product_id: int) -> Product:
    product = Product.objects.select_related("category").filter(pk=product_id).first()
    if product is None:
        raise NotFound(f"Product {product_id} not found.")
    return product


def product_list(*, category_id: int | None = None, category_slug: str | None = None,
                 active: bool | None = None, in_stock: bool | None = None,
                 min_price: Decimal | None = None, max_price: Decimal | None = None,
                 sku: str | None = None, q: str | None = None,
                 ordering: list[str] | None = None) -> QuerySet[Product]:
    qs = Product.objects.all()
    if category_id is not None:
        qs = qs.filter(category_id=category_id)
    if category_slug:
        qs = qs.filter(category__slug=category_slug)
    if active is not None:
        qs = qs.filter(active=active)
    if in_stock is True:
        qs = qs.filter(stock__gt=0)
    elif in_stock is False:
        qs = qs.filter(stock=0)
    if min_price is not None:
        qs = qs.filter(price__gte=min_price)
    if max_price is not None:
        qs = qs.filter(price__lte=max_price)
    if sku:
        qs = qs.filter(sku=sku)
    if q:
        qs = qs.filter(Q(name__icontains=q) | Q(sku__icontains=q))
    return qs.order_by(*(ordering or ["id"]))
