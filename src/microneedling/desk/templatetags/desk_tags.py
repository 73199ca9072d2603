"""Template helpers of the desk."""

from __future__ import annotations

from django import template

from microneedling.desk.visits import ACTIONS

register = template.Library()


@register.filter
def actions_for(status: str) -> list[tuple[str, str]]:
    """The status buttons offered for a visit in ``status``."""
    return ACTIONS.get(status, [])
