from __future__ import annotations

import httpx

from tests.monolith.conftest import make_customer, unique


def test_create_get_update_customer(api: httpx.Client) -> None:
    email = f"{unique('Ada')}@Example.com"
    created = api.post("/api/customers", json={"email": email, "name": " Ada ", "phone": "+1"})
    assert created.status_code == 201
    body = created.json()
    assert body["email"] == email.lower()
    assert body["name"] == "Ada"
    assert created.headers["location"] == f"/api/customers/{body['id']}"
    assert set(body) == {"id", "email", "name", "phone", "created_at", "updated_at"}
    assert body["created_at"].endswith("Z")

    assert api.get(f"/api/customers/{body['id']}").json() == body
    patched = api.patch(f"/api/customers/{body['id']}", json={"name": "Ada L."})
    assert patched.status_code == 200
    assert patched.json()["name"] == "Ada L."
    assert api.get(f"/api/customers/{body['id']}").json()["name"] == "Ada L."


def test_duplicate_email_is_409_and_writes_nothing(api: httpx.Client) -> None:
    first = make_customer(api)
    before = api.get("/api/customers", params={"page_size": 1}).json()["count"]
    dup = api.post("/api/customers", json={"email": first["email"].upper(), "name": "Other"})
    assert dup.status_code == 409
    assert dup.json()["error"]["code"] == "duplicate"
    assert dup.json()["error"]["fields"] == {"email": ["Already in use."]}
    assert api.get("/api/customers", params={"page_size": 1}).json()["count"] == before


def test_update_to_taken_email_is_409_and_keeps_the_row(api: httpx.Client) -> None:
    a, b = make_customer(api), make_customer(api)
    response = api.patch(f"/api/customers/{b['id']}", json={"email": a["email"], "name": "X"})
    assert response.status_code == 409
    assert api.get(f"/api/customers/{b['id']}").json() == b


def test_wrong_types_are_field_errors(api: httpx.Client) -> None:
    response = api.post("/api/customers", json={"email": "not-an-email", "name": 5, "age": 3})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert set(error["fields"]) == {"email", "name", "age"}


def test_pagination_filter_and_ordering(api: httpx.Client) -> None:
    tag = unique("pg")
    made = [make_customer(api, name=f"{tag} {n}", email=f"{tag}-{n}@example.com")
            for n in "cab"]
    page1 = api.get("/api/customers", params={"q": tag, "page_size": 2, "ordering": "name"})
    assert page1.status_code == 200
    data = page1.json()
    assert set(data) == {"count", "next", "previous", "results"}
    assert data["count"] == 3
    assert [r["name"] for r in data["results"]] == [f"{tag} a", f"{tag} b"]
    assert data["previous"] is None
    page2 = api.get(data["next"]).json()
    assert [r["name"] for r in page2["results"]] == [f"{tag} c"]
    assert page2["next"] is None and page2["previous"] is not None

    desc = api.get("/api/customers", params={"q": tag, "ordering": "-name"}).json()
    assert [r["name"] for r in desc["results"]] == [f"{tag} c", f"{tag} b", f"{tag} a"]
    exact = api.get("/api/customers", params={"email": made[0]["email"]}).json()
    assert [r["id"] for r in exact["results"]] == [made[0]["id"]]


def test_bad_query_parameters_are_400(api: httpx.Client) -> None:
    for params in ({"ordering": "password"}, {"page": "x"}, {"page": 0}, {"page_size": 1000}):
        response = api.get("/api/customers", params=params)
        assert response.status_code == 400, params
        assert response.json()["error"]["code"] == "validation_error"


def test_unknown_customer_is_404(api: httpx.Client) -> None:
    response = api.get("/api/customers/999999999")
    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": "not_found", "message": "Customer 999999999 not found."}
    }
    assert api.patch("/api/customers/999999999", json={"name": "x"}).status_code == 404
