"""App configuration."""

from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    """Messages to patients through an outbox, their delivery, and calendar feeds."""

    name = "microneedling.notifications"
    default_auto_field = "django.db.models.BigAutoField"
