from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "monolith.notifications"
    label = "notifications"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from monolith.notifications import ids

        ids.connect()
