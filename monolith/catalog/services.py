from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from monolith.catalog.models import Category, Product
from monolith.common.errors import Conflict, NotFound, ValidationFailed


def _category_or_400(category_id: int | None) -> Category | None:
    if category_id is None:
        return None
    category = Category.objects.filter(pk=category_id).first()
    if category is None:
        raise ValidationFailed.single("category_id", f"Unknown category {category_id}.")
    return category


def _duplicate(field: str, value: str, what: str) -> Conflict:
    return Conflict(f"A {what} with {field} {value!r} already exists.", code="duplicate",
                    fields={field: ["Already in use."]})


@transaction.atomic
def category_create(*, name: str, slug: str, description: str = "") -> Category:
    if Category.objects.filter(slug=slug).exists():
        raise _duplicate("slug", slug, "category")
    try:
        with transaction.atomic():
            return Category.objects.create(name=name, slug=slug, description=description)
    except IntegrityError:
        raise _duplicate("slug", slug, "category") from None


@transaction.atomic
def category_update(*, category_id: int, **changes: Any) -> Category:
    category = Category.objects.select_for_update().filter(pk=category_id).first()
    if category is None:
        raise NotFound(f"Category {category_id} not found.")
    slug = changes.get("slug")
    if slug is not None and Category.objects.filter(slug=slug).exclude(pk=category_id).exists():
        raise _duplicate("slug", slug, "category")
    for name, value in changes.items():
        setattr(category, name, value)
    category.updated_at = timezone.now()
    try:
        with transaction.atomic():
            category.save()
    except IntegrityError:
        raise _duplicate("slug", category.slug, "category") from None
    return category


@transaction.atomic
def category_delete(*, category_id: int) -> None:
    category = Category.objects.select_for_update().filter(pk=category_id).first()
    if category is None:
        raise NotFound(f"Category {category_id} not found.")
    if category.products.exists():
        raise Conflict(f"Category {category_id} still has products.", code="in_use")
    category.delete()


@transaction.atomic
def product_create(*, sku: str, name: str, price: Decimal, currency: str = "EUR",
                   description: str = "", category_id: int | None = None, active: bool = True,
                   stock: int = 0) -> Product:
    category = _category_or_400(category_id)
    if Product.objects.filter(sku=sku).exists():
        raise _duplicate("sku", sku, "product")
    try:
        with transaction.atomic():
            return Product.objects.create(
                sku=sku, name=name, price=price, currency=currency, description=description,
                category=category, active=active, stock=stock,
            )
    except IntegrityError:
        raise _duplicate("sku", sku, "product") from None


@transaction.atomic
def product_update(*, product_id: int, **changes: Any) -> Product:
    product = Product.objects.select_for_update().filter(pk=product_id).first()
    if product is None:
        raise NotFound(f"Product {product_id} not found.")
    if "category_id" in changes:
        product.category = _category_or_400(changes.pop("category_id"))
    sku = changes.get("sku")
    if sku is not None and Product.objects.filter(sku=sku).exclude(pk=product_id).exists():
        raise _duplicate("sku", sku, "product")
    for name, value in changes.items():
        setattr(product, name, value)
    product.updated_at = timezone.now()
    try:
        with transaction.atomic():
            product.save()
    except IntegrityError:
        raise _duplicate("sku", product.sku, "product") from None
    return product


@transaction.atomic
def product_delete(*, product_id: int) -> None:
    product = Product.objects.select_for_update().filter(pk=product_id).first()
    if product is None:
        raise NotFound(f"Product {product_id} not found.")
    if product.order_lines.exists():
        raise Conflict(
            f"Product {product_id} appears on orders; deactivate it instead.", code="in_use"
        )
    product.delete()
