"""Values every page's layout needs."""

from __future__ import annotations

from django.http import HttpRequest

#: Bumped with the vendored file's name, so browsers never keep a stale copy.
HTMX = "vendor/htmx-2.0.11.min.js"


def site(request: HttpRequest) -> dict[str, object]:
    """The site name and the script the layout loads."""
    return {"site_name": "Microneedling Clinic", "htmx_script": HTMX}
