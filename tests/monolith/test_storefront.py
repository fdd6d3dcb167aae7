"""The HTML shop: pages, CSRF-protected forms, a session cookie carrying cart and orders."""

from __future__ import annotations

import re

import httpx

from tests.monolith.conftest import make_product, stock_of, unique
from tests.support.monolith_server import MonolithServer


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def test_product_pages_render_html(api: httpx.Client) -> None:
    product = make_product(api, name=f"{unique('Lamp')}", price="42.00")
    home = api.get("/")
    assert home.status_code == 302 and home.headers["location"] == "/shop/"
    listing = api.get("/shop/")
    assert listing.status_code == 200
    assert listing.headers["content-type"].startswith("text/html")
    detail = api.get(f"/shop/products/{product['id']}/")
    assert detail.status_code == 200
    assert product["name"] in detail.text and "42.00 EUR" in detail.text
    assert "csrftoken=" in detail.headers["set-cookie"]
    missing = api.get("/shop/products/987654321/")
    assert missing.status_code == 404 and "text/html" in missing.headers["content-type"]


def test_cart_checkout_and_confirmation_use_the_session(monolith: MonolithServer) -> None:
    with httpx.Client(base_url=monolith.url) as setup:
        product = make_product(setup, price="3.50", stock=4)
    with httpx.Client(base_url=monolith.url) as browser:
        page = browser.get(f"/shop/products/{product['id']}/")
        token = csrf_token(page.text)
        no_csrf = httpx.post(f"{monolith.url}/shop/cart/add/",
                             data={"product_id": product["id"], "quantity": 1})
        assert no_csrf.status_code == 403

        added = browser.post("/shop/cart/add/", data={
            "product_id": product["id"], "quantity": 3, "csrfmiddlewaretoken": token})
        assert added.status_code == 302
        assert "sessionid=" in added.headers["set-cookie"]
        assert "HttpOnly" in added.headers["set-cookie"]
        cart = browser.get("/shop/cart/")
        assert "Cart (3)" in cart.text and "10.50" in cart.text

        email = f"{unique('shopper')}@example.com"
        placed = browser.post("/shop/checkout/", data={
            "email": email, "name": "Shopper", "csrfmiddlewaretoken": csrf_token(cart.text)})
        assert placed.status_code == 302
        confirmation_path = placed.headers["location"]
        assert re.fullmatch(r"/shop/orders/\d+/", confirmation_path)
        confirmation = browser.get(confirmation_path)
        assert confirmation.status_code == 200
        assert "10.50 EUR" in confirmation.text
        assert "Cart (0)" in confirmation.text
    with httpx.Client(base_url=monolith.url) as stranger:
        assert stranger.get(confirmation_path).status_code == 404
        assert stock_of(stranger, product["id"]) == 1


def test_checkout_without_stock_shows_the_error(monolith: MonolithServer) -> None:
    with httpx.Client(base_url=monolith.url) as browser:
        product = make_product(browser, stock=1)
        token = csrf_token(browser.get(f"/shop/products/{product['id']}/").text)
        browser.post("/shop/cart/add/", data={"product_id": product["id"], "quantity": 2,
                                              "csrfmiddlewaretoken": token})
        invalid = browser.post("/shop/checkout/", data={
            "email": "not-an-email", "name": "", "csrfmiddlewaretoken": token})
        assert invalid.status_code == 400
        assert "email: Enter a valid email address." in invalid.text
        assert "name: May not be blank." in invalid.text
        response = browser.post("/shop/checkout/", data={
            "email": f"{unique()}@example.com", "name": "N", "csrfmiddlewaretoken": token})
        assert response.status_code == 409
        assert "Insufficient stock" in response.text
        assert stock_of(browser, product["id"]) == 1
