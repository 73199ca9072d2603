"""Reads for aftercare: a visit's care plan, and the providers' queue of skin reports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from math import ceil
from zoneinfo import ZoneInfo

from django.db.models import Case, IntegerField, QuerySet, Value, When

from microneedling.aftercare.models import SkinReport
from microneedling.core.knowledge import load_pack
from microneedling.core.screening import Intake, medicine_holds
from microneedling.directory.policy import booking_rules
from microneedling.patients.models import Patient
from microneedling.scheduling.models import Appointment

#: A medicine pause: the medicine's name, the day to stop, the day to resume, the advice.
Hold = tuple[str, date, date, str]


@dataclass(frozen=True)
class CareLine:
    """One instruction and the last day it applies (None: just the day itself)."""

    text: str
    until: date | None = None


@dataclass(frozen=True)
class CarePlan:
    """What to do before and after one visit, in dates the patient can act on."""

    session_day: date
    holds: tuple[Hold, ...]
    before: tuple[tuple[date, str], ...]
    day_of: tuple[str, ...]
    after: tuple[CareLine, ...]
    recovery: tuple[tuple[date, date, str], ...]
    #: The visit's steps with their minutes, and the whole visit's minutes.
    visit_phases: tuple[tuple[str, int], ...]
    visit_minutes: int


def latest_intake(patient: Patient) -> Intake | None:
    """The intake of the patient's latest screening, or None if never screened (one query)."""
    intake = patient.screenings.newest_first().values_list("intake", flat=True).first()
    return None if intake is None else Intake.model_validate(intake)


def visit_holds(appointment: Appointment, intake: Intake | None) -> tuple[Hold, ...]:
    """The medicine pauses ``intake`` calls for, counted from the visit's own local day.

    Pass the patient's ``latest_intake``: the visits of one course share it, so a course
    reads and parses it once."""
    if intake is None:
        return ()
    day = appointment.starts_at.astimezone(ZoneInfo(appointment.location.timezone)).date()
    return tuple(
        (h.code.replace("_", " "), h.stop_on, h.resume_on, h.message)
        for h in medicine_holds(intake, load_pack(), session_day=day)
    )


def care_plan(appointment: Appointment) -> CarePlan:
    """The care plan for the visit, with the medicine pauses of the patient's latest intake
    counted from this visit's own day."""
    pack = load_pack()
    zone = ZoneInfo(appointment.location.timezone)
    day = appointment.starts_at.astimezone(zone).date()
    holds = visit_holds(appointment, latest_intake(appointment.patient))
    # Where the sources differ (when makeup may go back on), the clinic's chosen position.
    care = pack.care_items(booking_rules(appointment.location.organization_id).pack_policy)
    names = {v.code: v.name for v in pack.data.visit}
    phases = list(appointment.service.phases.all())
    return CarePlan(
        session_day=day,
        holds=holds,
        before=tuple(
            (day - timedelta(days=c.days_ahead), c.message)
            for c in sorted(care, key=lambda c: c.from_hours)
            if c.phase == "before"
        ),
        day_of=tuple(c.message for c in care if c.phase == "day_of"),
        after=tuple(
            CareLine(
                c.message,
                None if c.to_hours is None else day + timedelta(days=ceil(c.to_hours / 24)),
            )
            for c in care
            if c.phase == "after"
        ),
        recovery=tuple(
            (day + timedelta(days=r.from_day), day + timedelta(days=r.to_day), r.message)
            for r in pack.data.recovery
        ),
        visit_phases=tuple((names.get(p.code, p.code), p.minutes) for p in phases),
        visit_minutes=sum(p.minutes for p in phases),
    )


#: Queue order: urgent first, then contact-the-clinic; oldest first within each.
_PRESSING = Case(
    When(action=SkinReport.Action.URGENT, then=Value(0)),
    default=Value(1),
    output_field=IntegerField(),
)


def skin_report_queue() -> QuerySet[SkinReport]:
    """Open reports that need the clinic, most pressing and oldest first, with the patient
    and visit loaded (one query)."""
    return (
        SkinReport.objects.filter(
            status=SkinReport.Status.OPEN,
            action__in=[SkinReport.Action.URGENT, SkinReport.Action.CONTACT_CLINIC],
        )
        .select_related("patient", "appointment__location", "appointment__provider")
        .annotate(pressing=_PRESSING)
        .order_by("pressing", "created_at")
    )
