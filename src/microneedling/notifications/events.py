"""What each change tells the patient: the services call these inside their transactions.

A visit's timed messages (reminders, pre-care, medicine pauses, aftercare check-ins, the
next window and the maintenance recall) are keyed by the visit and its start time, so a
moved visit gets a fresh set and the old one is withdrawn.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone

from microneedling.core.messaging import local_moment
from microneedling.notifications.outbox import MessageRules, message_queue, message_rules
from microneedling.notifications.outbox import messages_withdraw as _withdraw
from microneedling.patients.models import Screening
from microneedling.scheduling.models import Appointment, Course, CourseSession

#: Day-based messages go out mid-morning, local time.
MORNING = time(10)
HOLD_MORNING = time(8)
AFTERCARE_CHECK_DAYS = (1, 3)


def _version(appointment: Appointment) -> str:
    return str(int(appointment.starts_at.timestamp()))


def visit_schedule(
    appointment: Appointment, *, rules: MessageRules | None = None, now: datetime | None = None
) -> None:
    """Queue the visit's timed messages for its current start time."""
    from microneedling.aftercare.selectors import care_plan  # noqa: PLC0415 (app cycle)

    now = now or timezone.now()
    patient = appointment.patient
    rules = rules or message_rules(patient.organization_id)
    zone = appointment.location.timezone
    base = f"visit:{appointment.pk}:{_version(appointment)}"
    day = appointment.starts_at.astimezone(ZoneInfo(zone)).date()

    def queue(kind: str, suffix: str, due: datetime, **context: object) -> None:
        message_queue(
            patient=patient,
            kind=kind,
            key=f"{base}:{suffix}",
            due_at=due,
            appointment=appointment,
            zone=zone,
            rules=rules,
            now=now,
            context=dict(context),
        )

    for hours in rules.reminder_hours:
        queue("reminder", f"reminder:{hours}", appointment.starts_at - timedelta(hours=hours))
    queue("pre_care", "pre_care", local_moment(day - timedelta(days=1), MORNING, zone))
    for name, stop_on, resume_on, _ in care_plan(appointment).holds:
        queue(
            "hold_start",
            f"hold:{name}",
            local_moment(stop_on, HOLD_MORNING, zone),
            medicine=name,
            stop_on=stop_on.isoformat(),
            resume_on=resume_on.isoformat(),
        )
    for offset in AFTERCARE_CHECK_DAYS:
        queue(
            "aftercare_check",
            f"aftercare:{offset}",
            local_moment(day + timedelta(days=offset), MORNING, zone),
            day=offset,
        )
    session = appointment.course_session
    if session is None:
        return
    course = session.course
    following = (
        CourseSession.objects.filter(course=course, number=session.number + 1)
        .only("earliest", "status")
        .first()
    )
    if following is not None and following.status == CourseSession.Status.PLANNED:
        queue(
            "window_opens",
            f"window:{following.number}",
            local_moment(following.earliest, MORNING, zone),
            session=following.number,
        )
    if session.number == course.sessions_total and course.maintenance_days:
        queue(
            "maintenance_due",
            "maintenance",
            local_moment(day + timedelta(days=course.maintenance_days), MORNING, zone),
        )


def visit_booked(appointment: Appointment, *, now: datetime | None = None) -> None:
    """A single visit was booked: confirm it and schedule what leads up to it and follows."""
    message_queue(
        patient=appointment.patient,
        kind="visit_booked",
        key=f"visit:{appointment.pk}:booked",
        appointment=appointment,
        zone=appointment.location.timezone,
        now=now,
    )
    visit_schedule(appointment, now=now)


def course_booked(course: Course, *, now: datetime | None = None) -> None:
    """A whole course was booked: one confirmation listing every session, then each visit's
    own schedule."""
    visits = list(
        Appointment.objects.filter(course_session__course=course)
        .select_related("patient", "location", "service", "course_session__course")
        .order_by("starts_at")
    )
    rules = message_rules(course.patient.organization_id)
    message_queue(
        patient=course.patient,
        kind="course_booked",
        key=f"course:{course.pk}:booked",
        zone=course.location.timezone,
        rules=rules,
        now=now,
        context={"course": course.pk, "appointments": [v.pk for v in visits]},
    )
    for visit in visits:
        visit_schedule(visit, rules=rules, now=now)


def visit_moved(appointment: Appointment, *, now: datetime | None = None) -> None:
    """A visit moved: withdraw its old timed messages, tell the patient, schedule afresh."""
    _withdraw(appointment=appointment)
    message_queue(
        patient=appointment.patient,
        kind="visit_moved",
        key=f"visit:{appointment.pk}:moved:{_version(appointment)}",
        appointment=appointment,
        zone=appointment.location.timezone,
        now=now,
    )
    visit_schedule(appointment, now=now)


def visit_cancelled(appointment: Appointment, *, now: datetime | None = None) -> None:
    """A visit was cancelled (or missed): withdraw what was still to come and say so."""
    _withdraw(appointment=appointment)
    message_queue(
        patient=appointment.patient,
        kind="visit_cancelled",
        key=f"visit:{appointment.pk}:{appointment.status}",
        appointment=appointment,
        zone=appointment.location.timezone,
        now=now,
    )


def screening_result(screening: Screening) -> None:
    """A screening verdict the patient must act on, or a provider's review of it."""
    message_queue(
        patient=screening.patient,
        kind="screening_result",
        key=f"screening:{screening.pk}:{screening.review}",
        context={"screening": screening.pk},
    )


def skin_report_escalated(*, patient_id: int, report_id: int, action: str) -> None:
    """A skin report above "keep an eye on it": the patient hears how to reach the clinic."""
    from microneedling.patients.models import Patient  # noqa: PLC0415

    message_queue(
        patient=Patient.objects.get(pk=patient_id),
        kind="skin_report_escalated",
        key=f"skin_report:{report_id}",
        context={"report": report_id, "action": action},
    )
