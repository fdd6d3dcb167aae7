from django.urls import path

from monolith.notifications import apis

urlpatterns = [
    path("api/notifications", apis.notifications, name="notifications"),
    path("api/notifications/<int:notification_id>", apis.notification, name="notification"),
    path("api/notifications/preferences/<int:customer_id>", apis.preferences,
         name="notification-preferences"),
    path("api/notifications/templates", apis.templates, name="notification-templates"),
]
