"""Server-rendered shop pages; the cart and the customer's orders live in the session."""

from __future__ import annotations

from typing import Any

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from monolith.accounts.services import customer_get_or_create
from monolith.catalog.models import Product
from monolith.catalog.selectors import category_list, product_get, product_list
from monolith.common.errors import ApplicationError, NotFound
from monolith.common.validation import Email, FieldError, String
from monolith.orders.selectors import order_get
from monolith.orders.services import order_place

CART = "cart"
ORDERS = "orders"


def _cart(request: HttpRequest) -> dict[str, int]:
    cart: dict[str, int] = request.session.get(CART, {})
    return cart


def _cart_lines(request: HttpRequest) -> list[dict[str, Any]]:
    cart = _cart(request)
    products = Product.objects.in_bulk([int(pid) for pid in cart])
    return [
        {"product": products[int(pid)], "quantity": qty,
         "line_total": products[int(pid)].price * qty}
        for pid, qty in cart.items() if int(pid) in products
    ]


def _context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    return {"cart_count": sum(_cart(request).values()), **extra}


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return redirect("shop-products")


@require_GET
def products(request: HttpRequest) -> HttpResponse:
    slug = request.GET.get("category") or None
    page = Paginator(product_list(active=True, category_slug=slug), 24).get_page(
        request.GET.get("page"))
    return render(request, "storefront/product_list.html", _context(
        request, page=page, categories=category_list(), category=slug))


@require_GET
def product(request: HttpRequest, product_id: int) -> HttpResponse:
    try:
        item = product_get(product_id=product_id)
    except NotFound:
        raise Http404("no such product") from None
    if not item.active:
        raise Http404("product not available")
    return render(request, "storefront/product_detail.html", _context(request, product=item))


@require_POST
def cart_add(request: HttpRequest) -> HttpResponse:
    try:
        product_id = int(request.POST.get("product_id", ""))
        quantity = int(request.POST.get("quantity", "1"))
    except ValueError:
        return HttpResponse("Bad product or quantity.", status=400)
    if quantity < 1 or not Product.objects.filter(pk=product_id, active=True).exists():
        return HttpResponse("Bad product or quantity.", status=400)
    cart = _cart(request)
    cart[str(product_id)] = cart.get(str(product_id), 0) + quantity
    request.session[CART] = cart
    return redirect("shop-cart")


@require_GET
def cart(request: HttpRequest) -> HttpResponse:
    return _render_cart(request)


def _render_cart(request: HttpRequest, *, error: str = "", status: int = 200,
                 form: dict[str, str] | None = None) -> HttpResponse:
    lines = _cart_lines(request)
    total = sum((line["line_total"] for line in lines), 0)
    return render(request, "storefront/cart.html", _context(
        request, lines=lines, total=total, error=error, form=form or {}), status=status)


@require_POST
def checkout(request: HttpRequest) -> HttpResponse:
    form = {"email": request.POST.get("email", ""), "name": request.POST.get("name", "")}
    problems = []
    try:
        email = Email().clean(form["email"])
    except FieldError as exc:
        problems.append(f"email: {' '.join(map(str, exc.messages))}")
    try:
        name = String(max_length=200).clean(form["name"])
    except FieldError as exc:
        problems.append(f"name: {' '.join(map(str, exc.messages))}")
    if problems:
        return _render_cart(request, error="Check your details — " + "; ".join(problems),
                            status=400, form=form)
    lines = [{"product_id": int(pid), "quantity": qty} for pid, qty in _cart(request).items()]
    if not lines:
        return _render_cart(request, error="Your cart is empty.", status=400, form=form)
    customer = customer_get_or_create(email=email, name=name)
    try:
        placed = order_place(customer_id=customer.pk, lines=lines)
    except ApplicationError as exc:
        return _render_cart(request, error=exc.message, status=exc.status, form=form)
    request.session[CART] = {}
    request.session[ORDERS] = [*request.session.get(ORDERS, []), placed.pk]
    return redirect("shop-order", order_id=placed.pk)


@require_GET
def order(request: HttpRequest, order_id: int) -> HttpResponse:
    if order_id not in request.session.get(ORDERS, []):
        raise Http404("not your order")
    return render(request, "storefront/order_confirmation.html",
                  _context(request, order=order_get(order_id=order_id)))
