"""App configuration."""

from django.apps import AppConfig


class AuditConfig(AppConfig):
    """Append-only record of sensitive actions."""

    name = "microneedling.audit"
    default_auto_field = "django.db.models.BigAutoField"
