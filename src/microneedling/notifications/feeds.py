"""Private calendar subscriptions: issuing and revoking a feed, and what a feed holds.

The token is shown once, when issued; only its SHA-256 is stored, so a copy of the database
does not give anyone a working address. A revoked feed answers 404 like an unknown one.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from microneedling.accounts.actors import Actor, acting_user
from microneedling.audit.services import audit_record
from microneedling.directory.models import Provider
from microneedling.notifications.models import CalendarFeed
from microneedling.patients.models import Patient
from microneedling.scheduling.models import Appointment

#: Visits already this far in the past drop out of a feed.
FEED_PAST_DAYS = 60
SHOWN = (
    Appointment.Status.BOOKED,
    Appointment.Status.CHECKED_IN,
    Appointment.Status.IN_PROGRESS,
    Appointment.Status.COMPLETED,
    Appointment.Status.CANCELLED,
    Appointment.Status.NO_SHOW,
)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def calendar_feed_issue(
    *, actor: Actor, patient: Patient | None = None, provider: Provider | None = None
) -> str:
    """A new private feed for the patient or the provider; returns the token (shown once).
    An earlier feed of the same owner stops working: one live address per owner."""
    if (patient is None) == (provider is None):
        raise ValueError("a feed belongs to exactly one patient or one provider")
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        owned = CalendarFeed.objects.filter(
            patient=patient, provider=provider, revoked_at__isnull=True
        )
        owned.update(revoked_at=timezone.now())
        feed = CalendarFeed.objects.create(
            patient=patient,
            provider=provider,
            token_hash=_digest(token),
            created_by=acting_user(actor),
        )
        audit_record(
            actor=actor,
            action="calendar_feed_issue",
            object_type="patient" if patient else "provider",
            object_id=(patient or provider).pk,  # type: ignore[union-attr]
            details={"feed": feed.pk},
        )
    return token


def calendar_feed_revoke(*, feed: CalendarFeed, actor: Actor) -> None:
    """Stop a feed's address working, at once."""
    with transaction.atomic():
        CalendarFeed.objects.filter(pk=feed.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        audit_record(
            actor=actor,
            action="calendar_feed_revoke",
            object_type="feed",
            object_id=feed.pk,
            # A patient's feed is part of their record: the revocation is in their log.
            details={"patient": feed.patient_id} if feed.patient_id else {},
        )


def feed_for_token(token: str) -> CalendarFeed | None:
    """The live feed a token opens, or ``None`` (a provider no longer active has none: their
    diary is nobody's to follow once they have left)."""
    return (
        CalendarFeed.objects.filter(token_hash=_digest(token), revoked_at__isnull=True)
        .exclude(provider__active=False)
        .select_related("patient", "provider")
        .first()
    )


def live_feed(
    *, patient: Patient | None = None, provider: Provider | None = None
) -> CalendarFeed | None:
    """The owner's working feed, if there is one."""
    return CalendarFeed.objects.filter(
        patient=patient, provider=provider, revoked_at__isnull=True
    ).first()


def feed_appointments(feed: CalendarFeed, *, now: datetime | None = None) -> QuerySet[Appointment]:
    """The visits a feed shows: recent and future, cancelled ones included (as cancelled)."""
    since = (now or timezone.now()) - timedelta(days=FEED_PAST_DAYS)
    visits = Appointment.objects.filter(status__in=SHOWN, ends_at__gte=since)
    if feed.patient_id is not None:
        visits = visits.filter(patient_id=feed.patient_id)
    else:
        visits = visits.filter(provider=feed.provider)
    return visits.select_related("location", "service", "patient").order_by("starts_at")
