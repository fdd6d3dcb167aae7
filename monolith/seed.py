"""Deterministic demo data: the same ``seed`` gives the same rows, ids and timestamps.

Writes with ``bulk_create`` in batches inside one transaction (all or nothing) and
bypasses the services on purpose: seeded history does not move stock or send messages.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db import transaction

from monolith.accounts.models import Customer
from monolith.catalog.models import Category, Product
from monolith.notifications.models import Notification
from monolith.orders.models import Order, OrderLine, Payment

BASE_TIME = datetime(2024, 1, 1, tzinfo=UTC)
BATCH = 2000
CATEGORIES = [
    "Books", "Music", "Garden", "Kitchen", "Toys", "Outdoor", "Office", "Games",
    "Tools", "Lighting", "Bathroom", "Pets",
]
ADJECTIVES = ["Classic", "Compact", "Deluxe", "Eco", "Handmade", "Modern", "Rustic",
              "Smart", "Sturdy", "Vintage", "Wireless", "Premium"]
NOUNS = ["Lamp", "Kettle", "Chair", "Notebook", "Backpack", "Speaker", "Mug", "Planter",
         "Puzzle", "Blanket", "Drill", "Bowl", "Candle", "Clock", "Frame"]
FIRST = ["Ada", "Ben", "Chloe", "Dario", "Emma", "Femi", "Greta", "Hugo", "Ines", "Jonas",
         "Kira", "Luca", "Mia", "Noah", "Olga", "Pia", "Quinn", "Rosa", "Sami", "Tara"]
LAST = ["Novak", "Schmidt", "Rossi", "Dubois", "Okafor", "Berg", "Silva", "Kowalski",
        "Jensen", "Moreau", "Fischer", "Ito", "Larsen", "Costa", "Weber"]
STATUSES = [("placed", 20), ("paid", 30), ("shipped", 40), ("cancelled", 10)]


class DatabaseNotEmpty(RuntimeError):
    pass


@dataclass(frozen=True)
class SeedSizes:
    customers: int = 100
    products: int = 50
    orders: int = 200

    @property
    def units(self) -> int:
        return self.customers + self.products + self.orders


def is_empty() -> bool:
    return not (Customer.objects.exists() or Product.objects.exists() or Order.objects.exists())


def _batches(total: int) -> list[range]:
    return [range(start, min(start + BATCH, total)) for start in range(0, total, BATCH)]


@transaction.atomic
def seed_database(sizes: SeedSizes, *, seed: int = 42,
                  progress: Callable[[int], None] = lambda n: None) -> dict[str, int]:
    if not is_empty():
        raise DatabaseNotEmpty("the database already has shop data; seed needs an empty one")
    if sizes.orders and not (sizes.customers and sizes.products):
        raise ValueError("orders need at least one customer and one product")
    rng = random.Random(seed)
    counts = {"customers": 0, "categories": 0, "products": 0, "orders": 0, "order_lines": 0,
              "payments": 0, "notifications": 0}

    customer_ids: list[int] = []
    for chunk in _batches(sizes.customers):
        rows = []
        for i in chunk:
            first, last = rng.choice(FIRST), rng.choice(LAST)
            at = BASE_TIME + timedelta(minutes=i)
            rows.append(Customer(
                email=f"customer{i + 1:06d}@example.com", name=f"{first} {last}",
                phone=f"+49 170 {rng.randrange(10**6, 10**7)}", created_at=at, updated_at=at,
            ))
        customer_ids += [c.pk for c in Customer.objects.bulk_create(rows)]
        progress(len(rows))
    counts["customers"] = len(customer_ids)

    categories: list[Category] = []
    if sizes.products:
        categories = Category.objects.bulk_create([
            Category(name=name, slug=name.lower(), description=f"All things {name.lower()}.",
                     created_at=BASE_TIME, updated_at=BASE_TIME)
            for name in CATEGORIES
        ])
        counts["categories"] = len(categories)

    products: list[Product] = []
    for chunk in _batches(sizes.products):
        rows = []
        for i in chunk:
            at = BASE_TIME + timedelta(seconds=30 * i)
            name = f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} {i + 1}"
            rows.append(Product(
                sku=f"SKU-{i + 1:06d}", name=name, description=f"A {name.lower()}.",
                category=categories[i % len(categories)],
                price=Decimal(rng.randrange(199, 50_000)) / 100, currency="EUR",
                active=rng.random() > 0.03, stock=rng.randrange(20, 500),
                created_at=at, updated_at=at,
            ))
        products += Product.objects.bulk_create(rows)
        progress(len(rows))
    counts["products"] = len(products)

    statuses = [s for s, _ in STATUSES]
    weights = [w for _, w in STATUSES]
    for chunk in _batches(sizes.orders):
        orders: list[Order] = []
        basket: list[list[tuple[Product, int]]] = []
        for i in chunk:
            items = [(p, rng.randint(1, 3)) for p in rng.sample(products, min(len(products),
                                                                             rng.randint(1, 4)))]
            status = rng.choices(statuses, weights)[0]
            at = BASE_TIME + timedelta(minutes=5 * i, seconds=rng.randrange(300))
            total = sum((p.price * q for p, q in items), Decimal("0"))
            orders.append(Order(
                customer_id=rng.choice(customer_ids), status=status, currency="EUR",
                total=total, created_at=at, updated_at=at,
                paid_at=at + timedelta(minutes=3) if status in ("paid", "shipped") else None,
                shipped_at=at + timedelta(days=1) if status == "shipped" else None,
                cancelled_at=at + timedelta(hours=2) if status == "cancelled" else None,
            ))
            basket.append(items)
        orders = Order.objects.bulk_create(orders)
        lines, payments, notes = [], [], []
        for order, items in zip(orders, basket, strict=True):
            lines += [
                OrderLine(order_id=order.pk, product_id=p.pk, sku=p.sku, name=p.name,
                          quantity=q, unit_price=p.price, line_total=p.price * q)
                for p, q in items
            ]
            payment_status = {"placed": "pending", "paid": "captured", "shipped": "captured",
                              "cancelled": "voided"}[order.status]
            payments.append(Payment(
                order_id=order.pk, method=rng.choice(["card", "card", "invoice", "bank_transfer"]),
                amount=order.total, currency="EUR", status=payment_status,
                reference=f"PAY-{order.pk:08d}" if payment_status == "captured" else "",
                created_at=order.created_at, updated_at=order.paid_at or order.created_at,
            ))
            notes.append(Notification(
                customer_id=order.customer_id, channel="email", template="order_placed",
                subject=f"Order #{order.pk} confirmed",
                body=f"Thank you for your order #{order.pk} of {order.total:.2f} EUR.",
                status="sent", created_at=order.created_at,
                sent_at=order.created_at + timedelta(seconds=1),
                read_at=order.created_at + timedelta(hours=1) if rng.random() < 0.4 else None,
            ))
        OrderLine.objects.bulk_create(lines, batch_size=BATCH)
        Payment.objects.bulk_create(payments, batch_size=BATCH)
        Notification.objects.bulk_create(notes, batch_size=BATCH)
        counts["orders"] += len(orders)
        counts["order_lines"] += len(lines)
        counts["payments"] += len(payments)
        counts["notifications"] += len(notes)
        progress(len(orders))
    return counts
