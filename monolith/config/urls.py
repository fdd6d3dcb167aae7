from django.urls import include, path, re_path

from monolith.common.health import healthz
from monolith.common.metrics import metrics_view
from monolith.common.middleware import api_not_found

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
    path("", include("monolith.accounts.urls")),
    path("", include("monolith.catalog.urls")),
    path("", include("monolith.orders.urls")),
    path("", include("monolith.notifications.urls")),
    re_path(r"^api/", api_not_found),  # JSON 404 under /api/ even with DEBUG on
    path("", include("monolith.storefront.urls")),
]

handler404 = "monolith.common.middleware.handler404"
handler500 = "monolith.common.middleware.handler500"
