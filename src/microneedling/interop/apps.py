"""App configuration."""

from django.apps import AppConfig


class InteropConfig(AppConfig):
    """Sharing the clinic's data: the FHIR R4 API (and, later, bulk export and import)."""

    name = "microneedling.interop"
    default_auto_field = "django.db.models.BigAutoField"
