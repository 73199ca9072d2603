"""Who performs an action: a signed-in user, an anonymous visitor, or the system (None)."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User

Actor = User | AnonymousUser | None


def acting_user(actor: Actor) -> User | None:
    """The user to record as having acted, or ``None`` for visitors and the system."""
    return actor if isinstance(actor, User) and actor.is_authenticated else None
