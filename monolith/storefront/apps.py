from django.apps import AppConfig


class StorefrontConfig(AppConfig):
    name = "monolith.storefront"
    label = "storefront"
    default_auto_field = "django.db.models.BigAutoField"
