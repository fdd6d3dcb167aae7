from django.urls import path

from monolith.storefront import views

urlpatterns = [
    path("", views.home, name="shop-home"),
    path("shop/", views.products, name="shop-products"),
    path("shop/products/<int:product_id>/", views.product, name="shop-product"),
    path("shop/cart/", views.cart, name="shop-cart"),
    path("shop/cart/add/", views.cart_add, name="shop-cart-add"),
    path("shop/checkout/", views.checkout, name="shop-checkout"),
    path("shop/orders/<int:order_id>/", views.order, name="shop-order"),
]
