from __future__ import annotations

import httpx
import pytest

from tests.monolith.conftest import make_customer, make_product, place_order, stock_of


def order_count(api: httpx.Client, customer_id: int) -> int:
    return int(api.get("/api/orders", params={"customer_id": customer_id}).json()["count"])


def test_place_order_computes_totals_and_decrements_stock(api: httpx.Client) -> None:
    customer = make_customer(api)
    a = make_product(api, price="19.99", stock=5)
    b = make_product(api, price="0.10", stock=3)
    response = place_order(api, customer["id"], (a["id"], 3), (b["id"], 3))
    assert response.status_code == 201, response.text
    order = response.json()
    assert response.headers["location"] == f"/api/orders/{order['id']}"
    assert order["status"] == "placed"
    assert order["total"] == "60.27"
    assert [(line["product_id"], line["quantity"], line["unit_price"], line["line_total"])
            for line in order["lines"]] == [(a["id"], 3, "19.99", "59.97"),
                                            (b["id"], 3, "0.10", "0.30")]
    assert order["payment"]["status"] == "pending"
    assert order["payment"]["amount"] == "60.27"
    assert (stock_of(api, a["id"]), stock_of(api, b["id"])) == (2, 0)
    assert api.get(f"/api/orders/{order['id']}").json() == order


def test_insufficient_stock_is_409_and_nothing_changes(api: httpx.Client) -> None:
    customer = make_customer(api)
    plenty = make_product(api, stock=10)
    scarce = make_product(api, stock=1)
    response = place_order(api, customer["id"], (plenty["id"], 2), (scarce["id"], 2))
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "insufficient_stock"
    assert error["shortages"] == [{"product_id": scarce["id"], "requested": 2, "available": 1}]
    assert (stock_of(api, plenty["id"]), stock_of(api, scarce["id"])) == (10, 1)
    assert order_count(api, customer["id"]) == 0


@pytest.mark.parametrize(("line", "field"), [
    ({"product_id": 1, "quantity": 0}, "quantity"),
    ({"product_id": 1, "quantity": -2}, "quantity"),
    ({"product_id": 1, "quantity": "1"}, "quantity"),
    ({"product_id": 1, "quantity": 1.5}, "quantity"),
    ({"product_id": "1", "quantity": 1}, "product_id"),
    ({"quantity": 1}, "product_id"),
])
def test_bad_lines_are_field_errors(api: httpx.Client, line: dict[str, object],
                                    field: str) -> None:
    customer = make_customer(api)
    response = api.post("/api/orders", json={"customer_id": customer["id"], "lines": [line]})
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]["lines"]["0"]
    assert order_count(api, customer["id"]) == 0


def test_unknown_product_or_customer_writes_nothing(api: httpx.Client) -> None:
    customer = make_customer(api)
    real = make_product(api, stock=4)
    response = place_order(api, customer["id"], (real["id"], 1), (987654321, 1))
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "lines": {"1": {"product_id": ["Unknown product 987654321."]}}
    }
    assert stock_of(api, real["id"]) == 4
    assert order_count(api, customer["id"]) == 0
    nobody = place_order(api, 987654321, (real["id"], 1))
    assert nobody.status_code == 400
    assert "customer_id" in nobody.json()["error"]["fields"]
    assert stock_of(api, real["id"]) == 4


def test_empty_duplicate_and_inactive_lines(api: httpx.Client) -> None:
    customer = make_customer(api)
    product = make_product(api, stock=4)
    empty = api.post("/api/orders", json={"customer_id": customer["id"], "lines": []})
    assert empty.status_code == 400
    dup = place_order(api, customer["id"], (product["id"], 1), (product["id"], 2))
    assert dup.status_code == 400
    hidden = make_product(api, stock=4, active=False)
    inactive = place_order(api, customer["id"], (hidden["id"], 1))
    assert inactive.status_code == 409
    assert inactive.json()["error"]["code"] == "product_unavailable"
    assert (stock_of(api, product["id"]), stock_of(api, hidden["id"])) == (4, 4)
    assert order_count(api, customer["id"]) == 0


def test_lifecycle_placed_paid_shipped(api: httpx.Client) -> None:
    customer = make_customer(api)
    product = make_product(api, stock=2)
    order = place_order(api, customer["id"], (product["id"], 1)).json()
    assert api.post(f"/api/orders/{order['id']}/ship").status_code == 409
    paid = api.post(f"/api/orders/{order['id']}/pay")
    assert paid.status_code == 200
    assert paid.json()["status"] == "paid"
    assert paid.json()["paid_at"] is not None
    assert paid.json()["payment"]["status"] == "captured"
    assert paid.json()["payment"]["reference"] == f"PAY-{order['id']:08d}"
    again = api.post(f"/api/orders/{order['id']}/pay")
    assert again.status_code == 409
    assert again.json()["error"] == {
        "code": "invalid_transition", "message": "Cannot pay an order that is paid.",
        "status": "paid", "action": "pay",
    }
    shipped = api.post(f"/api/orders/{order['id']}/ship").json()
    assert shipped["status"] == "shipped" and shipped["shipped_at"] is not None
    assert api.post(f"/api/orders/{order['id']}/cancel").status_code == 409
    assert stock_of(api, product["id"]) == 1
    assert api.post("/api/orders/987654321/pay").status_code == 404


@pytest.mark.parametrize(("pay_first", "payment_status"), [(False, "voided"),
                                                           (True, "refunded")])
def test_cancel_restocks(api: httpx.Client, pay_first: bool, payment_status: str) -> None:
    customer = make_customer(api)
    a, b = make_product(api, stock=3), make_product(api, stock=1)
    order = place_order(api, customer["id"], (a["id"], 2), (b["id"], 1)).json()
    assert (stock_of(api, a["id"]), stock_of(api, b["id"])) == (1, 0)
    if pay_first:
        api.post(f"/api/orders/{order['id']}/pay").raise_for_status()
    cancelled = api.post(f"/api/orders/{order['id']}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["payment"]["status"] == payment_status
    assert (stock_of(api, a["id"]), stock_of(api, b["id"])) == (3, 1)
    assert api.post(f"/api/orders/{order['id']}/cancel").status_code == 409
    assert (stock_of(api, a["id"]), stock_of(api, b["id"])) == (3, 1)


def test_order_list_filters_and_ordering(api: httpx.Client) -> None:
    customer = make_customer(api)
    product = make_product(api, price="1.00", stock=10)
    first = place_order(api, customer["id"], (product["id"], 3)).json()
    second = place_order(api, customer["id"], (product["id"], 1)).json()
    api.post(f"/api/orders/{second['id']}/pay").raise_for_status()
    listing = api.get("/api/orders", params={"customer_id": customer["id"]}).json()
    assert [o["id"] for o in listing["results"]] == [second["id"], first["id"]]
    by_total = api.get("/api/orders", params={"customer_id": customer["id"],
                                              "ordering": "total"}).json()
    assert [o["id"] for o in by_total["results"]] == [second["id"], first["id"]]
    paid = api.get("/api/orders", params={"customer_id": customer["id"], "status": "paid"})
    assert [o["id"] for o in paid.json()["results"]] == [second["id"]]
    assert api.get("/api/orders", params={"status": "lost"}).status_code == 400
