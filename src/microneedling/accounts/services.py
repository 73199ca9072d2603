"""Issuing and checking API tokens."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from microneedling.accounts.access import (
    MEMBER_RELATED,
    AccessDenied,
    Can,
    may,
    member_read_with,
    organization_id,
)
from microneedling.accounts.actors import Actor
from microneedling.accounts.models import ApiToken, BreakGlassGrant
from microneedling.core.errors import InputError
from microneedling.patients.models import Patient


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def api_token_issue(*, user: User, label: str = "", days: int | None = None) -> str:
    """Create a token for ``user`` and return its secret (never stored in clear); with
    ``days``, it stops working that many days from now (an integration for a project, say)."""
    if days is not None and not 1 <= days <= MAX_TOKEN_DAYS:
        raise InputError("days", f"give 1 to {MAX_TOKEN_DAYS} days")
    secret = secrets.token_urlsafe(32)
    expires = timezone.now() + timedelta(days=days) if days is not None else None
    ApiToken.objects.create(user=user, digest=_digest(secret), label=label, expires_at=expires)
    return secret


#: The longest life a token may be given (five years): longer is "until revoked".
MAX_TOKEN_DAYS = 5 * 366


def api_token_revoke(*, user: User, actor: Actor, token_id: int | None = None) -> int:
    """Stop ``user``'s token ``token_id`` working (every live one of theirs without it), at
    once and audited; the number stopped. A token id that is not a live one of ``user``'s is
    ``InputError`` naming ``token_id``, so a typo cannot pass for a revocation."""
    from microneedling.audit.services import audit_record  # noqa: PLC0415

    live = ApiToken.objects.filter(user=user, revoked_at__isnull=True)
    if token_id is not None:
        live = live.filter(pk=token_id)
    with transaction.atomic():
        ids = list(live.select_for_update().values_list("pk", flat=True))
        if token_id is not None and not ids:
            raise InputError("token_id", f"{user.username} has no working token #{token_id}")
        ApiToken.objects.filter(pk__in=ids).update(revoked_at=timezone.now())
        if ids:
            audit_record(
                actor=actor,
                action="api_token_revoke",
                object_type="user",
                object_id=user.pk,
                details={"tokens": ids},
            )
    return len(ids)


def api_token_user(secret: str) -> User | None:
    """The active user a token belongs to, or ``None``."""
    token = (
        # The user's staff membership in the same query: every request asks for the role.
        ApiToken.objects.select_related("user", *(f"user__{name}" for name in MEMBER_RELATED))
        .filter(digest=_digest(secret), revoked_at__isnull=True)
        .exclude(expires_at__lte=timezone.now())
        .first()
    )
    if token is None or not token.user.is_active:
        return None
    member_read_with(token.user)
    return token.user


def break_glass_open(*, user: User, patient_id: int, reason: str) -> BreakGlassGrant:
    """Open one patient's record to ``user`` for a short time, in an emergency.

    Refused without the capability or without a real reason; the grant and its reason go in
    the audit trail in the same transaction."""
    from microneedling.audit.services import audit_record  # noqa: PLC0415

    reason = reason.strip()
    if not may(user, Can.BREAK_GLASS):
        raise AccessDenied("your role cannot open records outside your locations")
    if len(reason) < 10:
        raise InputError("reason", "say in a sentence why you need this record now")
    minutes = settings.MICRONEEDLING["BREAK_GLASS_MINUTES"]
    with transaction.atomic():
        patient = Patient.objects.filter(pk=patient_id)
        if not user.is_superuser:
            patient = patient.filter(organization_id=organization_id(user) or 0)
        if not patient.exists():
            raise AccessDenied("no such patient in your organisation")
        grant = BreakGlassGrant.objects.create(
            user=user,
            patient_id=patient_id,
            reason=reason,
            expires_at=timezone.now() + timedelta(minutes=minutes),
        )
        audit_record(
            actor=user,
            action="break_glass",
            object_type="patient",
            object_id=patient_id,
            reason=reason,
            details={"minutes": minutes},
        )
    return grant
