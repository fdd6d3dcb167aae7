from __future__ import annotations

import httpx

from tests.monolith.conftest import make_product, unique


def test_category_crud(api: httpx.Client) -> None:
    slug = unique("cat")
    created = api.post("/api/catalog/categories", json={"name": "Garden", "slug": slug})
    assert created.status_code == 201
    cat = created.json()
    assert api.get(f"/api/catalog/categories/{cat['id']}").json() == cat
    renamed = api.patch(f"/api/catalog/categories/{cat['id']}", json={"name": "Yard"})
    assert renamed.json()["name"] == "Yard"
    dup = api.post("/api/catalog/categories", json={"name": "Again", "slug": slug})
    assert dup.status_code == 409
    bad = api.post("/api/catalog/categories", json={"name": "X", "slug": "Not A Slug"})
    assert bad.status_code == 400 and "slug" in bad.json()["error"]["fields"]

    product = make_product(api, category_id=cat["id"])
    in_use = api.delete(f"/api/catalog/categories/{cat['id']}")
    assert in_use.status_code == 409 and in_use.json()["error"]["code"] == "in_use"
    assert api.delete(f"/api/catalog/products/{product['id']}").status_code == 204
    assert api.delete(f"/api/catalog/categories/{cat['id']}").status_code == 204
    assert api.get(f"/api/catalog/categories/{cat['id']}").status_code == 404


def test_product_fields_and_decimal_price(api: httpx.Client) -> None:
    product = make_product(api, price="19.90", currency="USD", description="d")
    assert product["price"] == "19.90"
    assert set(product) == {"id", "sku", "name", "description", "category_id", "price",
                            "currency", "active", "stock", "created_at", "updated_at"}
    whole = make_product(api, price=5)
    assert whole["price"] == "5.00"
    patched = api.patch(f"/api/catalog/products/{product['id']}",
                        json={"price": "0.10", "stock": 3, "active": False})
    assert patched.status_code == 200
    assert (patched.json()["price"], patched.json()["stock"], patched.json()["active"]) == (
        "0.10", 3, False)


def test_invalid_products_are_rejected_without_writes(api: httpx.Client) -> None:
    sku = unique("SKU")
    cases = [
        {"sku": sku, "name": "x", "price": "-1.00"},
        {"sku": sku, "name": "x", "price": "1.234"},
        {"sku": sku, "name": "x", "price": "abc"},
        {"sku": sku, "name": "x", "price": True},
        {"sku": sku, "name": "x", "price": "1", "stock": -1},
        {"sku": sku, "name": "x", "price": "1", "stock": "5"},
        {"sku": sku, "name": "x", "price": "1", "currency": "euro"},
        {"sku": sku, "name": "x", "price": "1", "category_id": 999999999},
        {"sku": sku, "name": "", "price": "1"},
    ]
    for body in cases:
        response = api.post("/api/catalog/products", json=body)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["error"]["code"] == "validation_error"
    assert api.get("/api/catalog/products", params={"sku": sku}).json()["count"] == 0


def test_duplicate_sku_is_409(api: httpx.Client) -> None:
    product = make_product(api)
    dup = api.post("/api/catalog/products", json={"sku": product["sku"], "name": "n",
                                                  "price": "1.00"})
    assert dup.status_code == 409
    assert dup.json()["error"]["fields"] == {"sku": ["Already in use."]}
    assert api.get("/api/catalog/products", params={"sku": product["sku"]}).json()["count"] == 1


def test_product_filters_and_ordering(api: httpx.Client) -> None:
    cat = api.post("/api/catalog/categories", json={"name": "F", "slug": unique("f")}).json()
    tag = unique("flt")
    cheap = make_product(api, name=f"{tag} cheap", price="1.00", category_id=cat["id"], stock=0)
    mid = make_product(api, name=f"{tag} mid", price="50.00", category_id=cat["id"])
    dear = make_product(api, name=f"{tag} dear", price="99.99", category_id=cat["id"],
                        active=False)

    def ids(**params: object) -> list[int]:
        response = api.get("/api/catalog/products", params={"q": tag, **params})
        assert response.status_code == 200, response.text
        return [p["id"] for p in response.json()["results"]]

    assert ids(ordering="-price") == [dear["id"], mid["id"], cheap["id"]]
    assert ids(ordering="price") == [cheap["id"], mid["id"], dear["id"]]
    assert ids(min_price="10", max_price="60") == [mid["id"]]
    assert ids(in_stock="true", ordering="price") == [mid["id"], dear["id"]]
    assert ids(active="false") == [dear["id"]]
    assert ids(category_id=cat["id"], ordering="id") == [cheap["id"], mid["id"], dear["id"]]
    assert ids(category=cat["slug"], active="true", ordering="id") == [cheap["id"], mid["id"]]
    assert api.get("/api/catalog/products", params={"min_price": "lots"}).status_code == 400
    assert api.get("/api/catalog/products", params={"active": "maybe"}).status_code == 400
