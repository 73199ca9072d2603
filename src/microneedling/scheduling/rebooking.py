"""Cancel or miss a course session, book its replacement and re-plan the rest, with a preview.

A course only works if every session happens inside its window, so a cancelled or missed
session is not simply dropped: it is booked again inside what is left of its window. The
smallest change wins. First the replacement is sought on days that keep every later booking
valid (the next session still between the minimum and maximum gap after it); only if none
exists are all later sessions searched again, each after the one before by the course's gap,
the same provider preferred. A preview computes exactly what applying would write, inside a
transaction that is then rolled back.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils import timezone

from microneedling.accounts.actors import Actor, acting_user
from microneedling.audit.services import audit_record
from microneedling.core.availability import Slot
from microneedling.core.courses import PlannedSession, chain_sessions
from microneedling.core.errors import BookingConflict, BookingRefused
from microneedling.core.knowledge.models import Gap
from microneedling.core.series import search_series
from microneedling.directory.policy import booking_rules
from microneedling.notifications import events
from microneedling.patients.models import Patient
from microneedling.scheduling import booking, services
from microneedling.scheduling.calendars import LocationCalendar, location_calendar
from microneedling.scheduling.models import Appointment, CourseSession, Reservation
from microneedling.scheduling.replanning import (
    Replan,
    SessionChange,
    booked_appointment,
    session_change,
    session_rewrite,
    slot_of,
)
from microneedling.scheduling.screening_followup import screening_followup_after_visit
from microneedling.scheduling.spacing import patient_lock

#: The statuses that end a visit without treatment and call for a replacement.
RELEASING = ("cancelled", "no_show")


def course_session_replace(
    *,
    appointment: Appointment,
    status: str,
    actor: Actor,
    apply: bool,
    reason: str = "",
    now: datetime | None = None,
) -> Replan:
    """Mark a course session's visit ``cancelled`` or ``no_show``, book its replacement and
    re-plan later sessions if they no longer fit (preview unless ``apply``).

    Raises BookingRefused for a visit that is not a course session or cannot take that
    status, and BookingConflict naming the session when no replacement fits (the session's
    window has closed, or the diary is full).
    """
    session = appointment.course_session
    if session is None:
        raise BookingRefused(
            "this appointment is not part of a course", code="not_a_course", field="appointment"
        )
    if status not in RELEASING:
        raise BookingRefused(
            f"a replacement follows a cancellation or a no-show, not {status!r}",
            code="invalid_status",
            field="status",
        )
    if status not in services.TRANSITIONS.get(appointment.status, set()):
        raise BookingRefused(
            f"cannot change a {appointment.status} appointment to {status}",
            code="invalid_transition",
            field="status",
        )
    now = now or timezone.now()
    services.patient_change_check(appointment=appointment, actor=actor, now=now)
    with services.race_as_conflict(session=session.number):
        return _replace(
            appointment_id=appointment.pk,
            session=session,
            status=status,
            actor=actor,
            apply=apply,
            reason=reason,
            now=now,
        )


def _replace(
    *,
    appointment_id: int,
    session: CourseSession,
    status: str,
    actor: Actor,
    apply: bool,
    reason: str,
    now: datetime,
) -> Replan:
    """One attempt, in its own transaction (rolled back for a preview)."""
    course = session.course
    gap = course.gap
    with transaction.atomic():
        # One change of the patient's sessions at a time, first of all (as a move does): a
        # move of an earlier session under way re-plans this one, and the replacement must
        # be placed in the window that move leaves, read once it has committed.
        patient_lock(course.patient_id)
        session.refresh_from_db()
        # A fresh copy: a preview must not leave the caller's object marked cancelled.
        released = Appointment.objects.select_related("location", "service").get(pk=appointment_id)
        zone = ZoneInfo(released.location.timezone)
        later = list(
            CourseSession.objects.filter(
                course=course, number__gt=session.number, status=CourseSession.Status.BOOKED
            )
            .order_by("number")
            .prefetch_related("appointments__reservations")
        )
        kept = [booked_appointment(s) for s in later]
        services.appointment_set_status(
            appointment=released, status=status, actor=actor, reason=reason, now=now
        )
        window = _screened_window(
            course.patient, _replacement_window(session, now.astimezone(zone).date())
        )
        last_day = window.latest + timedelta(days=gap.max * len(later))
        # Later sessions are freed too, so a full re-plan may use their times.
        Reservation.objects.filter(appointment__in=kept).update(active=False)
        calendar = location_calendar(
            location=released.location,
            service=released.service,
            first_day=window.earliest,
            last_day=last_day,
            patient_id=course.patient_id,
            areas=course.areas,
            course_id=course.pk,
        )
        services.spaced_window_check(
            calendar, window.earliest, window.latest, what="the replacement", field=None
        )
        search = _Search(calendar=calendar, gap=gap, now=now, provider_id=released.provider_id)
        slot = _keeping_later(search, window, kept, zone)
        if slot is not None:
            later_slots = [slot_of(a) for a in kept]
        else:
            slots = search.sessions(
                [window, *_later_windows(window, len(later), gap)], follow_windows=False
            )
            slot, later_slots = slots[0], slots[1:]

        numbers = [s.number for s in later]
        windows = _windows_after(window, numbers, [slot, *later_slots], gap, zone)
        changes = [
            SessionChange(
                number=session.number,
                appointment_id=None,
                old_start=released.starts_at,
                new_start=slot.start,
                provider_id=booking.provider_of(slot),
                window=(window.earliest, window.target, window.latest),
                replaces=released.pk,
            )
        ]
        for planned, appointment, later_slot in zip(windows[1:], kept, later_slots, strict=True):
            changes.append(
                session_change(
                    planned.number,
                    appointment,
                    later_slot,
                    (planned.earliest, planned.target, planned.latest),
                )
            )
        if not apply:
            transaction.set_rollback(True)
            return Replan(course_id=course.pk, applied=False, changes=tuple(changes))
        replacement = _book_replacement(
            released=released,
            session=session,
            window=window,
            slot=slot,
            calendar=calendar,
            actor=actor,
        )
        changes[0] = replace(changes[0], appointment_id=replacement.pk)
        for change, later_slot in zip(changes[1:], later_slots, strict=True):
            session_rewrite(change, later_slot, calendar, actor=actor)
        # Later sessions on new days: once for the whole course, the follow-up list follows.
        screening_followup_after_visit(appointment=released, now=now)
        audit_record(
            actor=actor,
            action="course_session_replace",
            object_type="course",
            object_id=course.pk,
            reason=reason,
            details={
                # Named, so that the change is in the patient's access log and audit search.
                "patient": course.patient_id,
                "session": session.number,
                "released": released.pk,
                "status": status,
                "replacement": replacement.pk,
                "moved": [c.number for c in changes[1:] if c.changed],
            },
        )
    return Replan(course_id=course.pk, applied=True, changes=tuple(changes))


def _replacement_window(session: CourseSession, today: date) -> PlannedSession:
    """What is left of the session's window from today. The first session has no session
    before it to be counted from, so it keeps the booking's usual flexibility of a few days
    after today; a later session must stay inside the window its predecessor set."""
    earliest = max(session.earliest, today)
    latest = session.latest
    if session.number == 1:
        latest = max(latest, earliest + timedelta(days=services.FIRST_SESSION_FLEX_DAYS))
    if earliest > latest:
        raise BookingConflict(
            f"session {session.number}'s window closed on {latest.isoformat()}; the course "
            "has to be planned again",
            session=session.number,
        )
    target = min(max(session.target, earliest), latest)
    return PlannedSession(session.number, earliest, target, latest)


def _screened_window(patient: Patient, window: PlannedSession) -> PlannedSession:
    """The part of the window the patient's latest screening allows: a replacement is a new
    booking, refused as one would be (not eligible, waiting for review), and starting no
    earlier than a deferral ends."""
    screening = services.booking_gate_on(patient, window.latest, field="appointment")
    until = screening.deferred_until
    if until is None or until <= window.earliest:
        return window
    return PlannedSession(window.number, until, max(window.target, until), window.latest)


class _Search:
    """The series search with this re-plan's calendar, policy and provider preference."""

    def __init__(
        self, *, calendar: LocationCalendar, gap: Gap, now: datetime, provider_id: int
    ) -> None:
        self.calendar, self.gap, self.provider_id = calendar, gap, provider_id
        self.rules = booking_rules(calendar.location.organization_id)
        self.not_before, self.not_after = self.rules.window(now)

    def sessions(self, windows: list[PlannedSession], *, follow_windows: bool) -> list[Slot]:
        """A slot per window (each after the one before by the gap), or BookingConflict."""
        result = search_series(
            sessions=windows,
            follow_plan_windows=follow_windows,
            gap_days=(self.gap.min, self.gap.max),
            phases=self.calendar.phases,
            resources=list(self.calendar.resources),
            zone=self.calendar.zone,
            grid_minutes=self.rules.grid_minutes,
            not_before=self.not_before,
            not_after=self.not_after,
            preferred_provider=f"provider:{self.provider_id}",
            patient_busy=self.calendar.patient_blocked,
        )
        if not result.ok:
            raise BookingConflict(
                result.reason or "the rest of the course no longer fits",
                session=result.failed_session,
            )
        chosen = dict(result.choices)
        return [chosen[w.number] for w in windows]


def _keeping_later(
    search: _Search, window: PlannedSession, kept: list[Appointment], zone: ZoneInfo
) -> Slot | None:
    """A replacement on a day that leaves the next booked session valid, if there is one."""
    if not kept:
        return search.sessions([window], follow_windows=True)[0]
    next_day = kept[0].starts_at.astimezone(zone).date()
    earliest = max(window.earliest, next_day - timedelta(days=search.gap.max))
    latest = min(window.latest, next_day - timedelta(days=search.gap.min))
    if earliest > latest:
        return None
    narrowed = PlannedSession(
        window.number, earliest, min(max(window.target, earliest), latest), latest
    )
    try:
        return search.sessions([narrowed], follow_windows=True)[0]
    except BookingConflict:
        return None


def _later_windows(window: PlannedSession, count: int, gap: Gap) -> list[PlannedSession]:
    return chain_sessions(
        start_number=window.number + 1, count=count, anchor=window.target, gap=gap, as_of=None
    )


def _windows_after(
    window: PlannedSession, numbers: list[int], slots: list[Slot], gap: Gap, zone: ZoneInfo
) -> list[PlannedSession]:
    """The replacement's window, then each later session's (``numbers``) window counted from
    the day the session before it now falls on (what the patient is shown, and what a
    later re-plan starts from)."""
    windows = [window]
    for number, slot in zip(numbers, slots, strict=False):
        day = slot.start.astimezone(zone).date()
        windows += chain_sessions(start_number=number, count=1, anchor=day, gap=gap, as_of=None)
    return windows


def _book_replacement(
    *,
    released: Appointment,
    session: CourseSession,
    window: PlannedSession,
    slot: Slot,
    calendar: LocationCalendar,
    actor: Actor,
) -> Appointment:
    """Book the replacement visit on the session, which is booked again with its window."""
    session.earliest, session.target, session.latest = window.earliest, window.target, window.latest
    session.status = CourseSession.Status.BOOKED
    session.save(update_fields=["earliest", "target", "latest", "status"])
    replacement = Appointment.objects.create(
        patient_id=released.patient_id,
        service=released.service,
        location=released.location,
        provider_id=booking.provider_of(slot),
        course_session=session,
        starts_at=slot.start,
        ends_at=slot.end,
        booked_by=acting_user(actor),
    )
    booking.reservations_write(replacement, slot, calendar.phases)
    events.visit_booked(replacement, staff_caused=not services.is_patient(actor))
    return replacement
