from django.urls import include, path

from monolith.common.health import healthz
from monolith.common.metrics import metrics_view

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
    path("", include("monolith.accounts.urls")),
    path("", include("monolith.catalog.urls")),
    path("", include("monolith.orders.urls")),
    path("", include("monolith.notifications.urls")),
    path("", include("monolith.storefront.urls")),
]

handler404 = "monolith.common.middleware.handler404"
handler500 = "monolith.common.middleware.handler500"
