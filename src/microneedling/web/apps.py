"""The public pages and the site's shared layout, styles and scripts."""

from django.apps import AppConfig


class WebConfig(AppConfig):
    """Public pages: home, the treatment, finding a location."""

    name = "microneedling.web"
    label = "web"
