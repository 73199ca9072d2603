"""Reads of courses and appointments for the pages: a fixed number of queries however many
sessions or visits are shown."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Prefetch, QuerySet

from microneedling.core.availability import find_starts
from microneedling.patients.models import Patient
from microneedling.scheduling.booking import bookable_window, policy_numbers
from microneedling.scheduling.calendars import day_bounds, location_calendar
from microneedling.scheduling.models import Appointment, Course, CourseSession


def patient_courses(patient: Patient) -> QuerySet[Course]:
    """The patient's courses, newest first, with sessions and their visits (with provider
    and location) loaded: three queries in all."""
    visits = Appointment.objects.select_related("provider", "location").order_by("starts_at")
    sessions = CourseSession.objects.order_by("number").prefetch_related(
        Prefetch("appointments", queryset=visits)
    )
    return (
        Course.objects.filter(patient=patient)
        .select_related("location", "service")
        .prefetch_related(Prefetch("sessions", queryset=sessions))
        .order_by("-created_at")
    )


def session_move_options(appointment: Appointment, *, now: datetime) -> list[datetime]:
    """Starts inside the session's window (from the minimum notice on) at which the same
    provider, a room and a pen are free for the whole visit: what a move may choose."""
    session = appointment.course_session
    if session is None:
        return []
    location = appointment.location
    zone = ZoneInfo(location.timezone)
    first_day = max(session.earliest, (now + timedelta(days=1)).astimezone(zone).date())
    if first_day > session.latest:
        return []
    calendar = location_calendar(
        location=location,
        service=appointment.service,
        first_day=first_day,
        last_day=session.latest,
        provider_ids=[appointment.provider_id],
    )
    start, end = day_bounds(first_day, session.latest, location.timezone)
    grid, _, _ = policy_numbers()
    not_before, not_after = bookable_window(now)
    slots = find_starts(
        phases=calendar.phases,
        resources=list(calendar.resources),
        start=start,
        end=end,
        grid_minutes=grid,
        zone=location.timezone,
        not_before=not_before,
        not_after=not_after,
        provider_ids=[f"provider:{appointment.provider_id}"],
    )
    return [slot.start for slot in slots if slot.start != appointment.starts_at]
