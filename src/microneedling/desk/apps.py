"""The staff's pages: queues, the day sheet, charting."""

from django.apps import AppConfig


class DeskConfig(AppConfig):
    """Pages for front desk and providers."""

    name = "microneedling.desk"
    label = "desk"
