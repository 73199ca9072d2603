"""Checks on the database after a re-homing: what must hold whatever the plan was."""

from __future__ import annotations

from itertools import pairwise
from zoneinfo import ZoneInfo

from microneedling.scheduling.models import Appointment, Reservation


def overlapping_reservations() -> list[str]:
    """Every pair of active, non-overridden reservations of one resource that overlap."""
    rows = (
        Reservation.objects.filter(active=True, overlap_allowed=False)
        .order_by("resource", "starts_at")
        .values_list("resource", "starts_at", "ends_at", "appointment_id")
    )
    problems = []
    for (res_a, _, end_a, appt_a), (res_b, start_b, _, appt_b) in pairwise(rows):
        if res_a == res_b and start_b < end_a:
            problems.append(f"{res_a}: visits {appt_a} and {appt_b} overlap")
    return problems


def sessions_outside_windows() -> list[str]:
    """Every booked course visit whose local day is outside its session's window."""
    problems = []
    visits = Appointment.objects.filter(
        course_session__isnull=False, status="booked"
    ).select_related("course_session", "location")
    for visit in visits:
        session = visit.course_session
        assert session is not None
        day = visit.starts_at.astimezone(ZoneInfo(visit.location.timezone)).date()
        if not session.earliest <= day <= session.latest:
            window = f"{session.earliest}–{session.latest}"
            problems.append(f"visit {visit.pk} on {day}: window {window}")
    return problems
