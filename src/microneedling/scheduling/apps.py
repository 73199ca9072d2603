"""App configuration."""

from django.apps import AppConfig


class SchedulingConfig(AppConfig):
    """Courses, appointments, reservations and requests."""

    name = "microneedling.scheduling"
    default_auto_field = "django.db.models.BigAutoField"
