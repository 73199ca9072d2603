"""The patient's own pages: account, intake and verdict, course, care and reports."""

from django.apps import AppConfig


class PortalConfig(AppConfig):
    """Pages a signed-in patient uses."""

    name = "microneedling.portal"
    label = "portal"
