"""Issuing and checking API tokens."""

from __future__ import annotations

import hashlib
import secrets

from django.contrib.auth.models import User

from microneedling.accounts.models import ApiToken


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def api_token_issue(*, user: User, label: str = "") -> str:
    """Create a token for ``user`` and return its secret (never stored in clear)."""
    secret = secrets.token_urlsafe(32)
    ApiToken.objects.create(user=user, digest=_digest(secret), label=label)
    return secret


def api_token_user(secret: str) -> User | None:
    """The active user a token belongs to, or ``None``."""
    token = (
        ApiToken.objects.select_related("user")
        .filter(digest=_digest(secret), revoked_at__isnull=True)
        .first()
    )
    if token is None or not token.user.is_active:
        return None
    return token.user
