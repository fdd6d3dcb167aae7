"""A shop-like JSON API for the shadow benchmarks: the monolith and deliberately broken
candidates.

``GET /api/<variant>/orders/<id>`` answers an order. Every answer carries what real
monolith answers carry and no two calls share: a microsecond ``generated_at``, a fresh
``request_id`` and ``tags`` in random order. As the monolith (``SHOP_ROLE=monolith``)
the variant segment is ignored; as the candidate it selects one deliberate defect.
Run: ``SHOP_ROLE=candidate uvicorn bench._shadow_shop:app``.
"""

from __future__ import annotations

import json
import os
import random
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

VARIANTS = (
    "good",
    "renamed-field",
    "rounding",
    "wrong-status",
    "missing-list-item",
    "reordered-list",
    "extra-field",
    "changed-type",
)
# the field paths a correct report flags for each variant
EXPECTED: dict[str, tuple[str, ...]] = {
    "good": (),
    "renamed-field": ("$.customer_name", "$.customerName"),
    "rounding": ("$.total",),
    "wrong-status": ("status",),
    "missing-list-item": ("$.items",),
    "reordered-list": ("$.items",),
    "extra-field": ("$.discount",),
    "changed-type": ("$.items[*].quantity",),
}
SKUS = ["MUG-01", "TEE-M", "TEE-L", "CAP-02", "PEN-10", "BAG-07", "SOCK-3", "BOOK-9"]
NAMES = ["Ann Lee", "Bob Roy", "Cleo Park", "Dan Wu", "Eve Holt", "Finn Ortiz"]


def order(order_id: int) -> dict[str, Any]:
    """The deterministic part of an order."""
    rng = random.Random(order_id)
    items = []
    total = Decimal("0")
    for line in range(rng.randint(1, 4)):
        qty = rng.randint(1, 5)
        price = Decimal(rng.randint(199, 9999)) / 100
        total += qty * price
        items.append(
            {"line_id": order_id * 10 + line, "sku": rng.choice(SKUS), "quantity": qty,
             "unit_price": f"{price:.2f}"}
        )
    return {
        "id": order_id,
        "customer_name": rng.choice(NAMES),
        "status": rng.choice(["paid", "shipped", "pending"]),
        "created_at": f"2024-03-{1 + order_id % 28:02d}T10:{order_id % 60:02d}:00Z",
        "items": items,
        "total": f"{total:.2f}",
        "currency": "EUR",
    }


def answer(variant: str, order_id: int, rng: random.Random) -> tuple[int, dict[str, Any]]:
    """(status, document) for one call; ``variant`` "good" is also the monolith."""
    if order_id % 7 == 0:
        return (200 if variant == "wrong-status" else 404), {"detail": "Not found."}
    doc = order(order_id)
    doc["generated_at"] = datetime.now(UTC).isoformat()
    doc["request_id"] = uuid.UUID(int=rng.getrandbits(128)).hex
    tags = ["gift", "priority", "fragile"]
    rng.shuffle(tags)
    doc["tags"] = tags
    if variant == "renamed-field":
        doc["customerName"] = doc.pop("customer_name")
    elif variant == "rounding":
        doc["total"] = f"{Decimal(doc['total']).quantize(Decimal('0.1'))}"
    elif variant == "missing-list-item" and len(doc["items"]) > 1:
        doc["items"] = doc["items"][:-1]
    elif variant == "reordered-list":
        doc["items"] = list(reversed(doc["items"]))
    elif variant == "extra-field":
        doc["discount"] = None
    elif variant == "changed-type":
        for item in doc["items"]:
            item["quantity"] = str(item["quantity"])
    return 200, doc


ROLE = os.environ.get("SHOP_ROLE", "monolith")
_RNG = random.Random()


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    parts = scope["path"].strip("/").split("/")
    if len(parts) != 4 or parts[0] != "api" or parts[2] != "orders" or not parts[3].isdigit():
        status, doc = 404, {"detail": "Not found."}
    else:
        variant = "good" if ROLE == "monolith" else parts[1]
        status, doc = answer(variant, int(parts[3]), _RNG)
    body = json.dumps(doc).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
