"""What each change tells the patient: the services call these inside their transactions.

A visit's timed messages (reminders, pre-care, medicine pauses, aftercare check-ins, the
next window and the maintenance recall) are keyed by the visit and its start time, so a
moved visit gets a fresh set and the old one is withdrawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Q
from django.utils import timezone

from microneedling.core.knowledge import load_pack
from microneedling.core.messaging import local_moment, outside_quiet_hours
from microneedling.core.screening import Intake
from microneedling.notifications.models import Message
from microneedling.notifications.outbox import (
    UNSENT,
    Audience,
    MessageRules,
    audience_of,
    message_queue,
    notices_supersede,
    outbox_flush,
    visit_messages_withdraw,
    visit_version,
    window_messages_withdraw,
)
from microneedling.notifications.outbox import messages_withdraw as _withdraw
from microneedling.patients.models import Patient, Screening
from microneedling.scheduling.models import Appointment, Course, CourseSession

#: Day-based messages go out mid-morning, local time.
MORNING = time(10)
HOLD_MORNING = time(8)
AFTERCARE_CHECK_DAYS = (1, 3)


def getting_ready_days() -> int:
    """How many days before a visit its earliest pre-care instruction starts (the pack's
    hours, rounded up to whole days as the care page dates them)."""
    return max((c.days_ahead for c in load_pack().data.care if c.phase == "before"), default=0)


@dataclass(frozen=True)
class Known:
    """What the visits of one course share, read once for all of them: the patient's latest
    intake (for medicine pauses) and the course's sessions by number."""

    intake: Intake | None
    sessions: dict[int, CourseSession]


def visit_schedule(
    appointment: Appointment,
    *,
    audience: Audience | None = None,
    now: datetime | None = None,
    known: Known | None = None,
) -> None:
    """Queue the visit's timed messages for its current start time.

    ``known`` saves the reads a course's visits share (see ``course_booked``)."""
    from microneedling.aftercare.selectors import latest_intake  # noqa: PLC0415

    now = now or timezone.now()
    patient = appointment.patient
    audience = audience or audience_of(patient)
    zone = appointment.location.timezone
    base = f"visit:{appointment.pk}:{visit_version(appointment)}"
    day = appointment.starts_at.astimezone(ZoneInfo(zone)).date()

    def queue(kind: str, suffix: str, due: datetime, **context: object) -> None:
        message_queue(
            patient=patient,
            kind=kind,
            key=f"{base}:{suffix}",
            due_at=due,
            appointment=appointment,
            zone=zone,
            audience=audience,
            now=now,
            context=dict(context),
        )

    for hours in audience.rules.reminder_hours:
        queue("reminder", f"reminder:{hours}", appointment.starts_at - timedelta(hours=hours))
    # Pre-care that starts well ahead (no sunburn for two weeks, no scrubs for a week, an
    # antiviral started days before) is too late in a reminder two days out: one more
    # reminder goes out on the morning the earliest instruction starts (the care page's date).
    lead = getting_ready_days()
    if lead * 24 > max(audience.rules.reminder_hours, default=0):
        queue(
            "reminder",
            "reminder:getting_ready",
            local_moment(day - timedelta(days=lead), MORNING, zone),
        )
    queue("pre_care", "pre_care", _pre_care_due(day, zone=zone, rules=audience.rules, now=now))
    intake = known.intake if known is not None else latest_intake(patient)
    _holds_queue(appointment, intake=intake, audience=audience, now=now)
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
    if known is not None:
        following = known.sessions.get(session.number + 1)
    else:
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


def _pre_care_due(day: date, *, zone: str, rules: MessageRules, now: datetime) -> datetime:
    """When the "getting ready for tomorrow" message goes out: the morning before the visit,
    or now for a visit booked (or moved) after that morning, so that a patient booked at
    short notice still gets the day's instructions, as long as it still reaches them the
    day before (quiet hours could push it into the visit's own day, where "tomorrow" would
    be wrong: then it is not sent, and the confirmation's care link stands)."""
    due = local_moment(day - timedelta(days=1), MORNING, zone)
    if due >= now:
        return due
    goes_out = outside_quiet_hours(
        now, zone=zone, quiet_from=rules.quiet_from, quiet_until=rules.quiet_until
    )
    return now if goes_out.astimezone(ZoneInfo(zone)).date() < day else due


def _holds_queue(
    appointment: Appointment, *, intake: Intake | None, audience: Audience, now: datetime
) -> set[str]:
    """Queue the visit's medicine pauses under ``intake``; returns their keys (less the
    channel)."""
    from microneedling.aftercare.selectors import visit_holds  # noqa: PLC0415 (app cycle)

    zone = appointment.location.timezone
    base = f"visit:{appointment.pk}:{visit_version(appointment)}"
    keys = set()
    for name, stop_on, resume_on, advice in visit_holds(appointment, intake):
        stop = local_moment(stop_on, HOLD_MORNING, zone)
        # A pause whose first day has passed (a visit booked at short notice) is announced
        # at once: the patient must still hear to stop, and a timed message in the past would
        # not be queued at all.
        if stop < now < appointment.starts_at:
            stop = now
        keys.add(f"{base}:hold:{name}")
        message_queue(
            patient=appointment.patient,
            kind="hold_start",
            key=f"{base}:hold:{name}",
            due_at=stop,
            appointment=appointment,
            zone=zone,
            audience=audience,
            now=now,
            context={
                "medicine": name,
                "stop_on": stop_on.isoformat(),
                "resume_on": resume_on.isoformat(),
                "advice": advice,
            },
        )
    return keys


def intake_recorded(*, patient: Patient, intake: Intake, now: datetime | None = None) -> None:
    """The patient answered the intake again: the medicine pauses of their visits to come
    follow it. A medicine taken now is announced; one no longer taken is not (the visits were
    scheduled under the intake of the day they were booked)."""
    now = now or timezone.now()
    visits = Appointment.objects.filter(
        patient=patient, status__in=Appointment.TO_COME, starts_at__gt=now
    ).select_related("location", "patient")
    audience = None
    for visit in visits:
        audience = audience or audience_of(patient)
        wanted = _holds_queue(visit, intake=intake, audience=audience, now=now)
        unsent = Message.objects.filter(appointment=visit, kind="hold_start", status__in=UNSENT)
        stale = [m.pk for m in unsent.only("key") if m.key.rsplit(":", 1)[0] not in wanted]
        Message.objects.filter(pk__in=stale, status__in=UNSENT).update(
            status=Message.Status.CANCELLED
        )


def _tell(
    appointment: Appointment,
    kind: str,
    key: str,
    *,
    now: datetime | None = None,
    audience: Audience | None = None,
    context: dict[str, object] | None = None,
    staff_caused: bool = False,
) -> Audience:
    """Queue one message about ``appointment``; returns the audience for what follows."""
    audience = audience or audience_of(appointment.patient)
    message_queue(
        patient=appointment.patient,
        kind=kind,
        key=key,
        appointment=appointment,
        zone=appointment.location.timezone,
        audience=audience,
        now=now,
        context=context,
        staff_caused=staff_caused,
    )
    return audience


def visit_booked(
    appointment: Appointment, *, now: datetime | None = None, staff_caused: bool = False
) -> None:
    """A single visit was booked: confirm it and schedule what leads up to it and follows
    (``staff_caused``: by the clinic, so the confirmation waits out quiet hours)."""
    if appointment.course_session_id is not None:
        window_messages_withdraw(session_id=appointment.course_session_id)
    audience = audience_of(appointment.patient).batched()
    _tell(
        appointment,
        "visit_booked",
        f"visit:{appointment.pk}:booked",
        now=now,
        audience=audience,
        staff_caused=staff_caused,
    )
    visit_schedule(appointment, audience=audience, now=now)
    outbox_flush(audience, now=now)


def course_booked(
    course: Course,
    *,
    visits: Sequence[Appointment],
    now: datetime | None = None,
    staff_caused: bool = False,
    rules: MessageRules | None = None,
) -> None:
    """A whole course was booked: one confirmation listing every session, then each visit's
    own schedule.

    ``visits`` are the course's appointments as the booking just wrote them, with their
    patient, location and session loaded, so nothing here reads them again; ``rules`` the
    clinic's message rules if the booking read them in its transaction."""
    from microneedling.aftercare.selectors import latest_intake  # noqa: PLC0415 (app cycle)

    visits = sorted(visits, key=lambda v: v.starts_at)
    # A course is booked whole: every session has its visit among these.
    sessions = {v.course_session.number: v.course_session for v in visits if v.course_session}
    # The booking passed the gate on the patient's latest screening and kept it on the
    # course: its intake gives every visit's medicine pauses without reading it again.
    screening = course.screening
    intake = (
        Intake.model_validate(screening.intake)
        if screening is not None
        else latest_intake(course.patient)
    )
    known = Known(intake=intake, sessions=sessions)
    audience = audience_of(course.patient, rules=rules).batched()
    message_queue(
        patient=course.patient,
        kind="course_booked",
        key=f"course:{course.pk}:booked",
        zone=course.location.timezone,
        audience=audience,
        now=now,
        context={"course": course.pk, "appointments": [v.pk for v in visits]},
        staff_caused=staff_caused,
    )
    for visit in visits:
        visit_schedule(visit, audience=audience, now=now, known=known)
    outbox_flush(audience, now=now)


def visit_moved(
    appointment: Appointment, *, now: datetime | None = None, staff_caused: bool = False
) -> None:
    """A visit moved: withdraw its old timed messages and any notice of an earlier move still
    waiting (this one tells the same news), tell the patient, schedule afresh. A patient whose
    confirmation of the booking has not gone out yet is not told of a move: the confirmation
    gives the new time (see ``_confirmation_waiting``)."""
    _withdraw(appointment=appointment)
    key = _change_key(appointment, "visit_moved", "moved")
    notices_supersede(appointment=appointment, kind="visit_moved", key=key)
    audience = audience_of(appointment.patient).batched()
    if not _confirmation_waiting(appointment):
        _tell(
            appointment, "visit_moved", key, now=now, audience=audience, staff_caused=staff_caused
        )
    visit_schedule(appointment, audience=audience, now=now)
    outbox_flush(audience, now=now)


def _confirmation_waiting(appointment: Appointment) -> bool:
    """Whether the booking's confirmation (the visit's own, or its course's) is still waiting
    to go out and has not begun to on any channel: it reads the visit when it is sent, so it
    gives the new time, and a "your visit has moved" beside it would tell of a time the
    patient never heard (a visit booked by the clinic at night, moved before the morning).

    The confirmations are locked until the move commits: a worker cannot begin to send one
    with the old time in between (it claims a message by updating its row)."""
    mine = Q(appointment=appointment, kind="visit_booked")
    session = appointment.course_session
    if session is not None:
        mine |= Q(kind="course_booked", key__startswith=f"course:{session.course_id}:booked:")
    states = set(Message.objects.filter(mine).select_for_update().values_list("status", flat=True))
    begun = {Message.Status.SENDING, Message.Status.SENT}
    return Message.Status.PENDING in states and not states & begun


def _change_key(appointment: Appointment, kind: str, label: str) -> str:
    """The key of the ``kind`` message telling of the visit's latest change of time or place:
    one per change, counted, since a visit moved back to a time or place it had before is a
    change the patient must hear of (the same change written twice still makes one)."""
    version = visit_version(appointment)
    told = Message.objects.filter(appointment=appointment, kind=kind).order_by("pk")
    changes = list(
        dict.fromkeys(key.rsplit(":", 1)[0] for key in told.values_list("key", flat=True))
    )
    if changes and changes[-1].endswith(f":{version}"):
        return changes[-1]
    return f"visit:{appointment.pk}:{label}:{len(changes) + 1}:{version}"


def visit_cancelled(
    appointment: Appointment, *, now: datetime | None = None, staff_caused: bool = False
) -> None:
    """A visit was cancelled (or missed): withdraw what was still to come and say so, in the
    words that fit: a missed visit is not one the patient or the clinic called off. A course
    session left unbooked gets a "your window opens" message when its window opens."""
    now = now or timezone.now()
    _withdraw(appointment=appointment)
    key = f"visit:{appointment.pk}:{appointment.status}"
    missed = appointment.status == Appointment.Status.NO_SHOW
    kind = "visit_missed" if missed else "visit_cancelled"
    audience = _tell(appointment, kind, key, now=now, staff_caused=staff_caused)
    zone = appointment.location.timezone
    session = appointment.course_session
    if session is None:
        return
    opens = local_moment(session.earliest, MORNING, zone)
    if opens > now:  # an open window is already named in the cancellation itself
        message_queue(
            patient=appointment.patient,
            kind="window_opens",
            key=f"session:{session.pk}:{appointment.pk}:window",
            due_at=opens,
            appointment=appointment,
            zone=zone,
            audience=audience,
            now=now,
            context={"session": session.number},
        )


def visit_voided(appointment: Appointment) -> None:
    """A visit was entered in error: it never was, so nothing more about it is sent, not even
    a cancellation of something the patient need not act on."""
    visit_messages_withdraw(appointment=appointment)


def visit_relocated(
    appointment: Appointment,
    *,
    note: str = "",
    reschedule: bool = True,
    audience: Audience | None = None,
) -> None:
    """A visit now happens somewhere else (a closure, a provider moving): say where. With
    ``reschedule`` (its time changed too) the old timed messages are withdrawn and queued
    again; at the same time they still fit, since messages read the visit when sent."""
    if reschedule:
        _withdraw(appointment=appointment)
    key = _change_key(appointment, "location_change", "relocated")
    notices_supersede(appointment=appointment, kind="location_change", key=key)
    context: dict[str, object] = {"note": note} if note else {}
    # Always the clinic's doing (a closure, a provider moving): news for the morning.
    audience = _tell(
        appointment,
        "location_change",
        key,
        audience=audience,
        context=context,
        staff_caused=True,
    )
    if reschedule:
        visit_schedule(appointment, audience=audience)


def visit_unsettled(
    appointment: Appointment, *, note: str = "", audience: Audience | None = None
) -> None:
    """A closure or a provider's move left this visit where it was, with no new place or
    time the run could find: tell the patient it cannot go ahead as booked and that the
    clinic will arrange it (the desk has a request for it). Keyed by the visit's time and
    place, so a later run that leaves it as it is says nothing new, while a move by the desk
    makes this notice stale (see the delivery checks).

    Its timed messages are withdrawn: a reminder or pre-care for the booked time and place
    would contradict the notice, and aftercare would follow a visit that did not happen. A
    move queues them again for the new time (``visit_moved``, ``visit_relocated``)."""
    _withdraw(appointment=appointment)
    context: dict[str, object] = {"note": note} if note else {}
    _tell(
        appointment,
        "visit_unsettled",
        f"visit:{appointment.pk}:{visit_version(appointment)}:unsettled",
        audience=audience,
        context=context,
        staff_caused=True,  # the clinic's change: news for the morning
    )


def screening_result(screening: Screening) -> None:
    """A screening verdict the patient must act on, or a provider's review of it."""
    message_queue(
        patient=screening.patient,
        kind="screening_result",
        key=f"screening:{screening.pk}:{screening.review}",
        context={"screening": screening.pk},
        staff_caused=True,  # queued by a provider's review (screening_review), not at intake
    )


def skin_report_escalated(*, patient_id: int, report_id: int, action: str) -> None:
    """A skin report above "keep an eye on it": the patient hears how to reach the clinic."""
    message_queue(
        patient=Patient.objects.get(pk=patient_id),
        kind="skin_report_escalated",
        key=f"skin_report:{report_id}",
        context={"report": report_id, "action": action},
    )
