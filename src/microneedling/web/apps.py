"""The public pages and the site's shared layout, styles and scripts."""

from django.apps import AppConfig


class WebConfig(AppConfig):
    """Public pages: home, the treatment, finding a location."""

    name = "microneedling.web"
    label = "web"

    def ready(self) -> None:
        """Register the project's deploy checks."""
        from microneedling.config import checks  # noqa: F401, PLC0415
