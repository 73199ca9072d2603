"""Reads of the audit trail: the auditor's search, and a patient's own access log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.db.models import Q, QuerySet

from microneedling.audit.models import AuditEvent


@dataclass(frozen=True)
class AuditQuery:
    """What an auditor searches by; empty fields do not filter."""

    patient_id: int | None = None
    actor: str = ""
    action: str = ""
    ip: str = ""
    since: date | None = None
    until: date | None = None


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def audit_search(query: AuditQuery) -> QuerySet[AuditEvent]:
    """Events matching ``query``, newest first (``until`` includes its whole day, in UTC)."""
    rows = AuditEvent.objects.select_related("actor")
    if query.patient_id is not None:
        rows = rows.filter(
            Q(object_type="patient", object_id=str(query.patient_id))
            | Q(details__patient=query.patient_id)
        )
    if query.actor:
        rows = rows.filter(actor__username__iexact=query.actor)
    if query.action:
        rows = rows.filter(action=query.action)
    if query.ip:
        rows = rows.filter(ip=query.ip)
    if query.since:
        rows = rows.filter(at__gte=_day_start(query.since))
    if query.until:
        rows = rows.filter(at__lt=_day_start(query.until + timedelta(days=1)))
    return rows.order_by("-at", "-id")


def patient_access_log(patient_id: int) -> QuerySet[AuditEvent]:
    """Who opened or changed this patient's record: staff only (their own reads are not
    listed), newest first."""
    return (
        audit_search(AuditQuery(patient_id=patient_id))
        .exclude(actor__isnull=True)
        .exclude(actor__patient__id=patient_id)
    )
