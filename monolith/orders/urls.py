from django.urls import path

from monolith.orders import apis

urlpatterns = [
    path("api/orders", apis.orders, name="orders"),
    path("api/orders/<int:order_id>", apis.order, name="order"),
    path("api/orders/<int:order_id>/pay", apis.pay, name="order-pay"),
    path("api/orders/<int:order_id>/ship", apis.ship, name="order-ship"),
    path("api/orders/<int:order_id>/cancel", apis.cancel, name="order-cancel"),
]
