"""Reads of the audit trail: the auditor's search, and a patient's own access log.

Events carry no organisation of their own, so whose an event is follows from what it names:

- an event that names a patient (``object_type="patient"``, or ``details["patient"]`` as a
  number) belongs to the patient's organisation, whoever acted: a patient's record is their
  clinic's, and a reason written about them (a break-glass, say) is health data of theirs;
- any other event belongs to the organisation of the member of staff (or patient) who acted,
  or of the organisation, location or provider it is about.

Deciding by the patient first is the robust choice: the actor's organisation alone would
show a chain's auditor what its staff wrote about another organisation's patient, and would
hide a superuser's or the system's changes to the chain's own patients.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db.models import Case, CharField, F, Func, Q, QuerySet, When
from django.db.models.functions import Cast

from microneedling.accounts.access import Role, organization_id, role_of
from microneedling.audit.models import AuditEvent
from microneedling.directory.models import Location, Provider
from microneedling.patients.models import Patient


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


class _PatientInDetails(Func):
    """``details["patient"]`` as text when it is a JSON integer, else NULL.

    Only numbers name a patient: the auditor's own search is recorded with what was typed
    (``"patient": "12"``, text), which names nobody. Both engines compare the result as text
    with ids cast to text, so no row's odd value can make the cast fail."""

    template = (
        "CASE WHEN JSON_TYPE(%(expressions)s, '$.patient') = 'integer' "
        "THEN CAST(JSON_EXTRACT(%(expressions)s, '$.patient') AS TEXT) END"
    )
    output_field = CharField()

    def __init__(self) -> None:
        super().__init__(F("details"))

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        """jsonb spells the same test differently."""
        template = (
            "CASE WHEN jsonb_typeof(%(expressions)s -> 'patient') = 'number' "
            "THEN %(expressions)s ->> 'patient' END"
        )
        return self.as_sql(compiler, connection, template=template, **extra)


def _named_patient() -> Case:
    """The id (as text) of the patient an event names, or NULL."""
    return Case(
        When(object_type="patient", then=F("object_id")),
        default=_PatientInDetails(),
        output_field=CharField(),
    )


def _ids_as_text(rows: QuerySet[Any]) -> QuerySet[Any]:
    keys: QuerySet[Any] = rows.annotate(key=Cast("pk", CharField())).values("key")
    return keys


def audit_events_visible(user: Any) -> QuerySet[AuditEvent]:
    """The events ``user`` may read in the trail: superusers every one, members of staff
    those of their own organisation (see the module docstring), anyone else none."""
    rows = AuditEvent.objects.all()
    if role_of(user) == Role.SUPERUSER:
        return rows
    org = organization_id(user)
    if org is None:
        return rows.none()
    about_us = (
        Q(actor__staff_member__organization_id=org)
        | Q(actor__patient__organization_id=org)
        | Q(object_type="organization", object_id=str(org))
        | Q(
            object_type="location",
            object_id__in=_ids_as_text(Location.objects.filter(organization_id=org)),
        )
        | Q(
            object_type="provider",
            object_id__in=_ids_as_text(Provider.objects.filter(organization_id=org)),
        )
    )
    return rows.alias(named_patient=_named_patient()).filter(
        Q(named_patient__in=_ids_as_text(Patient.objects.filter(organization_id=org)))
        | (Q(named_patient__isnull=True) & about_us)
    )


def _matching(rows: QuerySet[AuditEvent], query: AuditQuery) -> QuerySet[AuditEvent]:
    """``rows`` narrowed to ``query``, newest first (``until`` includes its whole day, UTC)."""
    rows = rows.select_related("actor")
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


def audit_search(query: AuditQuery, *, user: Any) -> QuerySet[AuditEvent]:
    """The events ``user`` may read (``audit_events_visible``) that match ``query``, newest
    first (``until`` includes its whole day, in UTC)."""
    return _matching(audit_events_visible(user), query)


def patient_access_log(patient_id: int) -> QuerySet[AuditEvent]:
    """Who opened or changed this patient's record: staff only (their own reads are not
    listed), newest first. Every event naming the patient is theirs to see, whichever
    organisation the actor belongs to."""
    return (
        _matching(AuditEvent.objects.all(), AuditQuery(patient_id=patient_id))
        .exclude(actor__isnull=True)
        .exclude(actor__patient__id=patient_id)
    )
