"""Charting: consent, the procedure chart of each session, and outcome scores."""

from django.apps import AppConfig


class ChartingConfig(AppConfig):
    """Consent, procedure charts and outcome scores."""

    name = "microneedling.charting"
    label = "charting"
