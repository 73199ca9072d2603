"""Move one session of a course and re-plan the sessions after it, with a preview.

Moving session k to a new day re-derives the windows of sessions k+1… from that day. Later
bookings that still fit their new windows stay as they are; otherwise every later session is
searched again (same provider preferred). The preview computes exactly what applying would
write, inside a transaction that is then rolled back, so nothing is saved until the patient
or the front desk confirms.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from itertools import pairwise
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils import timezone

from microneedling.accounts.actors import Actor
from microneedling.audit.services import audit_record
from microneedling.core.availability import Slot
from microneedling.core.courses import PlannedSession, chain_sessions
from microneedling.core.errors import BookingConflict, BookingRefused
from microneedling.core.knowledge.models import Gap
from microneedling.core.series import search_series
from microneedling.directory.policy import BookingRules, booking_rules
from microneedling.notifications import events
from microneedling.scheduling import booking, services
from microneedling.scheduling.calendars import LocationCalendar, location_calendar
from microneedling.scheduling.models import (
    Appointment,
    AppointmentRequest,
    CourseSession,
    Reservation,
)
from microneedling.scheduling.screening_followup import screening_followup_after_visit
from microneedling.scheduling.spacing import patient_lock


@dataclass(frozen=True)
class SessionChange:
    """What happens to one session: its new window and start (unchanged sessions too).

    A session rebooked after a cancellation or a no-show names the visit it replaces in
    ``replaces``; its own ``appointment_id`` is None until the change is saved.
    """

    number: int
    appointment_id: int | None
    old_start: datetime
    new_start: datetime
    provider_id: int
    window: tuple[date, date, date]
    replaces: int | None = None

    @property
    def changed(self) -> bool:
        """Whether this session's time moves (a replacement always counts as a change)."""
        return self.replaces is not None or self.old_start != self.new_start


@dataclass(frozen=True)
class Replan:
    """The outcome of a move: every affected session, and whether it was saved."""

    course_id: int
    applied: bool
    changes: tuple[SessionChange, ...]


def course_session_move(
    *,
    appointment: Appointment,
    starts_at: datetime,
    actor: Actor,
    apply: bool,
    now: datetime | None = None,
) -> Replan:
    """Move a course session to ``starts_at`` and re-plan the rest (preview unless ``apply``).

    Raises BookingRefused when the new day is outside the session's window, and
    BookingConflict (naming the session) when the rest of the course cannot be re-planned.
    """
    session = appointment.course_session
    if session is None:
        raise BookingRefused(
            "this appointment is not part of a course", code="not_a_course", field="appointment"
        )
    if appointment.status != Appointment.Status.BOOKED:
        raise BookingRefused(
            f"only a booked session can be moved, not a {appointment.status} one",
            code="invalid_transition",
            field="appointment",
        )
    course = session.course
    zone = ZoneInfo(appointment.location.timezone)
    new_day = starts_at.astimezone(zone).date()
    window_check(session, new_day)
    now = now or timezone.now()
    services.patient_change_check(appointment=appointment, actor=actor, now=now)
    # A moved visit is a new time for treatment: the patient's latest screening must allow
    # it (they may have answered the intake again since the course was booked).
    services.booking_gate_on(course.patient, new_day, field="starts_at")
    gap = course.gap
    with services.race_as_conflict(session=session.number):
        return _move(
            appointment=appointment,
            session=session,
            starts_at=starts_at,
            actor=actor,
            apply=apply,
            now=now,
            gap=gap,
            zone=zone,
            new_day=new_day,
        )


def _move(
    *,
    appointment: Appointment,
    session: CourseSession,
    starts_at: datetime,
    actor: Actor,
    apply: bool,
    now: datetime,
    gap: Gap,
    zone: ZoneInfo,
    new_day: date,
) -> Replan:
    """One attempt at the move, in its own transaction (rolled back for a preview)."""
    course = session.course
    with transaction.atomic():
        # One move of the patient's sessions at a time, first of all: two moves of one
        # course at once (the desk moves the second session while the patient moves the
        # third) would each re-plan the other's visit from a stale copy, and one move's
        # answer would be lost, or each would wait for the visit the other had locked. The
        # second waits here, then reads the course as the first left it.
        patient_lock(course.patient_id)
        # Read again, locked: a visit cancelled, missed or checked in since the caller read
        # it must not be given a time, and so its resources, back (a status change waits
        # for the lock, then finds the visit where it now is); one an earlier move re-planned
        # has a new time and window, which the move starts from.
        still_booked = Appointment.objects.select_for_update().filter(
            pk=appointment.pk, status=Appointment.Status.BOOKED
        )
        if not still_booked.values_list("pk", flat=True):
            raise BookingRefused(
                "someone changed this visit a moment ago; look at it again",
                code="changed_meanwhile",
                field="appointment",
            )
        # Read after the locks, so as the last move committed it (the caller's copies too).
        appointment.refresh_from_db()
        session.refresh_from_db()
        window_check(session, new_day)
        later = list(
            CourseSession.objects.filter(
                course=course, number__gt=session.number, status=CourseSession.Status.BOOKED
            )
            .order_by("number")
            .prefetch_related("appointments")
        )
        moving = [appointment, *(booked_appointment(s) for s in later)]
        # Free the sessions being re-planned, so the search sees their time as available.
        Reservation.objects.filter(appointment__in=moving).update(active=False)
        windows = chain_sessions(
            start_number=session.number + 1, count=len(later), anchor=new_day, gap=gap, as_of=None
        )
        last_day = windows[-1].latest if windows else new_day
        rules = booking_rules(appointment.location.organization_id)
        calendar = location_calendar(
            location=appointment.location,
            service=appointment.service,
            first_day=new_day,
            last_day=last_day,
            patient_id=course.patient_id,
            rules=rules,
            areas=course.areas,
            course_id=course.pk,
        )
        moved = booking.slot_at(calendar, starts_at, appointment.provider, rules=rules, now=now)
        if moved is None:
            raise booking.unavailable_conflict(
                calendar, starts_at, appointment.provider, session=session.number
            )
        slots = _keep_or_search(
            later=later,
            windows=windows,
            moved=moved,
            calendar=calendar,
            gap=gap,
            zone=zone,
            rules=rules,
            now=now,
            appointment=appointment,
        )
        changes = [
            session_change(
                session.number,
                appointment,
                moved,
                (session.earliest, session.target, session.latest),
            )
        ]
        for planned, booked, slot in zip(windows, later, slots, strict=True):
            changes.append(
                session_change(
                    planned.number,
                    booked_appointment(booked),
                    slot,
                    (planned.earliest, planned.target, planned.latest),
                )
            )
        if not apply:
            transaction.set_rollback(True)
            return Replan(course_id=course.pk, applied=False, changes=tuple(changes))
        for change, slot in zip(changes, [moved, *slots], strict=True):
            session_rewrite(change, slot, calendar, actor=actor)
        # Moved to days the screening clears (the move checked it): once for the whole
        # course, the follow-up list drops them.
        screening_followup_after_visit(appointment=appointment, now=now)
        audit_record(
            actor=actor,
            action="course_session_move",
            object_type="course",
            object_id=course.pk,
            details={
                # Named, so that the move is in the patient's access log and audit search.
                "patient": course.patient_id,
                "session": session.number,
                "to": starts_at.isoformat(),
                "moved": [c.number for c in changes if c.changed],
            },
        )
    return Replan(course_id=course.pk, applied=True, changes=tuple(changes))


def window_check(session: CourseSession, day: date) -> None:
    """Refuse moving the session to ``day`` outside its window (naming ``starts_at``)."""
    if not session.earliest <= day <= session.latest:
        raise BookingRefused(
            f"session {session.number} must stay between {session.earliest.isoformat()} and "
            f"{session.latest.isoformat()}",
            code="outside_window",
            field="starts_at",
        )


def booked_appointment(session: CourseSession) -> Appointment:
    """The session's current (booked or requested) appointment; a session marked booked
    without one (a record older than the rule that re-plans a visit entered in error) is
    refused by name rather than failing."""
    for a in session.appointments.all():
        if a.status in (Appointment.Status.BOOKED, Appointment.Status.REQUESTED):
            return a
    raise BookingRefused(
        f"session {session.number} has no booked visit; book it again first",
        code="session_without_visit",
        field="appointment",
    )


def _keep_or_search(
    *,
    later: list[CourseSession],
    windows: list[PlannedSession],
    moved: Slot,
    calendar: LocationCalendar,
    gap: Gap,
    zone: ZoneInfo,
    rules: BookingRules,
    now: datetime,
    appointment: Appointment,
) -> list[Slot]:
    """Keep the later bookings if they still fit; otherwise search them all again."""
    kept = [slot_of(booked_appointment(s)) for s in later]
    days = [moved.start.astimezone(zone).date()] + [s.start.astimezone(zone).date() for s in kept]
    fits = all(w.earliest <= d <= w.latest for w, d in zip(windows, days[1:], strict=True))
    fits = fits and all(gap.min <= (b - a).days <= gap.max for a, b in pairwise(days))
    if fits:
        return kept
    not_before, not_after = rules.window(now)
    result = search_series(
        sessions=windows,
        gap_days=(gap.min, gap.max),
        phases=calendar.phases,
        resources=list(calendar.resources),
        zone=calendar.zone,
        grid_minutes=rules.grid_minutes,
        not_before=not_before,
        not_after=not_after,
        preferred_provider=f"provider:{appointment.provider_id}",
        patient_busy=calendar.patient_blocked,
    )
    if not result.ok:
        raise BookingConflict(
            result.reason or "the rest of the course no longer fits", session=result.failed_session
        )
    chosen = dict(result.choices)
    return [chosen[w.number] for w in windows]


def slot_of(appointment: Appointment) -> Slot:
    """An existing booking as a slot (its reservations give the assignment)."""
    assignment: dict[str, dict[str, str]] = {}
    for reservation in appointment.reservations.all():
        kind = reservation.resource.split(":", 1)[0]
        assignment.setdefault(reservation.phase, {})[kind] = reservation.resource
    return Slot(start=appointment.starts_at, end=appointment.ends_at, assignment=assignment)


def session_change(
    number: int, appointment: Appointment, slot: Slot, window: tuple[date, date, date]
) -> SessionChange:
    """How ``appointment`` (session ``number``) changes when it takes ``slot``."""
    return SessionChange(
        number=number,
        appointment_id=appointment.pk,
        old_start=appointment.starts_at,
        new_start=slot.start,
        provider_id=booking.provider_of(slot),
        window=window,
    )


def session_rewrite(
    change: SessionChange, slot: Slot, calendar: LocationCalendar, *, actor: Actor = None
) -> None:
    """Save a change: the session's new window and, if it moved, the visit and its holds
    (``actor`` made it: the patient's own move is confirmed at once, even at night)."""
    if change.appointment_id is None:
        raise ValueError("a replacement visit is booked, not rewritten")
    appointment = Appointment.objects.select_related("course_session").get(pk=change.appointment_id)
    session = appointment.course_session
    if session is not None:
        session.earliest, session.target, session.latest = change.window
        session.save(update_fields=["earliest", "target", "latest"])
    if not change.changed:
        appointment.reservations.update(active=True)
        return
    appointment.reservations.all().delete()
    appointment.starts_at, appointment.ends_at = slot.start, slot.end
    appointment.provider_id = change.provider_id
    appointment.save(update_fields=["starts_at", "ends_at", "provider", "updated_at"])
    booking.reservations_write(appointment, slot, calendar.phases)
    services.rehoming_requests_close(
        appointment_ids=[appointment.pk], status=AppointmentRequest.Status.BOOKED, why="moved"
    )
    events.visit_moved(appointment, staff_caused=not services.is_patient(actor))
