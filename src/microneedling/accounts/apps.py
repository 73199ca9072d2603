"""App configuration."""

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """API tokens and access decisions."""

    name = "microneedling.accounts"
    default_auto_field = "django.db.models.BigAutoField"
