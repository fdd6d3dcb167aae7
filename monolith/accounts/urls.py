from django.urls import path

from monolith.accounts import apis

urlpatterns = [
    path("api/customers", apis.customers, name="customers"),
    path("api/customers/<int:customer_id>", apis.customer, name="customer"),
]
