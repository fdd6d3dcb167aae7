"""The error contract: every class of bad request gets a clear JSON body and writes nothing."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.monolith.conftest import unique
from tests.support.monolith_server import start_monolith

JSON = {"Content-Type": "application/json"}


def count(api: httpx.Client, path: str) -> int:
    return int(api.get(path, params={"page_size": 1}).json()["count"])


@pytest.mark.parametrize(("raw", "fragment"), [
    (b'{"email": "a@b.co", "name": ', "Malformed JSON"),
    (b"{'email': 'a@b.co'}", "Malformed JSON"),
    (b'{"email": "a@b.co", "name": NaN}', "NaN"),
    (b"\xff\xfe{}", "UTF-8"),
    (b"   ", "empty"),
])
def test_malformed_json_is_400(api: httpx.Client, raw: bytes, fragment: str) -> None:
    before = count(api, "/api/customers")
    response = api.post("/api/customers", content=raw, headers=JSON)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "malformed_json"
    assert fragment in error["message"]
    assert count(api, "/api/customers") == before


def test_json_that_is_not_an_object_is_400(api: httpx.Client) -> None:
    response = api.post("/api/customers", json=[{"email": "a@b.co", "name": "n"}])
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"non_field_errors": ["Expected a JSON object."]}


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x"])
def test_non_json_body_is_415(api: httpx.Client, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    email = f"{unique()}@example.com"
    response = api.post("/api/customers", content=f'{{"email":"{email}","name":"n"}}'.encode(),
                        headers=headers)
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"
    assert api.get("/api/customers", params={"email": email}).json()["count"] == 0


def test_json_with_charset_and_vendor_types_are_accepted(api: httpx.Client) -> None:
    for content_type in ("application/json; charset=utf-8", "application/merge-patch+json"):
        email = f"{unique()}@example.com"
        response = api.post("/api/customers", headers={"Content-Type": content_type},
                            content=f'{{"email":"{email}","name":"n"}}'.encode())
        assert response.status_code == 201, response.text


@pytest.mark.parametrize(("method", "path", "allow"), [
    ("DELETE", "/api/customers", "GET, HEAD, POST"),
    ("PUT", "/api/orders", "GET, HEAD, POST"),
    ("GET", "/api/orders/1/pay", "POST"),
    ("DELETE", "/api/notifications/1", "GET, HEAD, PATCH"),
])
def test_wrong_method_is_405_with_allow(api: httpx.Client, method: str, path: str,
                                        allow: str) -> None:
    response = api.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert response.json()["error"]["code"] == "method_not_allowed"


@pytest.mark.parametrize("path", ["/api/nothing-here", "/api/customers/abc", "/api/orders/0/x"])
def test_unknown_api_paths_are_json_404(api: httpx.Client, path: str) -> None:
    response = api.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["code"] == "not_found"


def test_oversized_body_is_413(api: httpx.Client) -> None:
    response = api.post("/api/customers", json={"email": "a@b.co", "name": "x" * 3_000_000})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_partial_update_rejects_empty_and_read_only_fields(api: httpx.Client) -> None:
    created = api.post("/api/customers", json={"email": f"{unique()}@example.com", "name": "n"})
    cid = created.json()["id"]
    assert api.patch(f"/api/customers/{cid}", json={}).status_code == 400
    response = api.patch(f"/api/customers/{cid}", json={"id": 5, "created_at": "x"})
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"id", "created_at"}
    assert api.get(f"/api/customers/{cid}").json() == created.json()


def test_api_errors_stay_json_with_debug_on(tmp_path: Path) -> None:
    with start_monolith(workdir=tmp_path, env={"DEBUG": "1"}) as server:
        missing = httpx.get(f"{server.url}/api/nothing-here")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_found"
        assert httpx.get(f"{server.url}/api/customers/0").json()["error"]["code"] == "not_found"
