"""App configuration."""

from django.apps import AppConfig


class DirectoryConfig(AppConfig):
    """Locations, people and what they offer."""

    name = "microneedling.directory"
    default_auto_field = "django.db.models.BigAutoField"
