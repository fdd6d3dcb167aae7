from django.urls import include, path

from monolith.common.health import healthz
from monolith.common.metrics import metrics_view

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
    path("api/customers", include("monolith.accounts.urls")),
    path("api/catalog/", include("monolith.catalog.urls")),
    path("api/orders", include("monolith.orders.urls")),
    path("api/notifications", include("monolith.notifications.urls")),
    path("", include("monolith.storefront.urls")),
]

handler404 = "monolith.common.middleware.handler404"
handler500 = "monolith.common.middleware.handler500"
