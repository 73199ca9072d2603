"""The patient's other treatments, read for spacing a new treatment from them.

See :mod:`microneedling.core.series.spacing` for why: every search that places a treatment
(a course, a single visit, a move) plans around the days these block, and booking a single
treatment at a time they block is refused, unless a member of staff overrides on purpose.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta

from django.db import connection

from microneedling.core.availability.clock import zone_info
from microneedling.core.errors import BookingRefused
from microneedling.core.knowledge import load_pack
from microneedling.core.series.spacing import Treatment, spacing_blocks, too_close
from microneedling.directory.models import Service
from microneedling.patients.models import Patient
from microneedling.scheduling.models import Appointment

#: Why a treatment cannot go where the patient's skin is still healing from another.
TOO_SOON = "too_soon_after_treatment"


def treatments_near(
    *,
    patient_id: int,
    first_day: date,
    last_day: date,
    zone: str,
    excluding_appointment: int | None = None,
    course_id: int | None = None,
    lock: bool = True,
) -> list[Treatment]:
    """The patient's treatments (booked, under way or given, at any of the chain's
    locations) close enough to ``first_day``–``last_day`` to matter, in one query, with
    their local day in ``zone`` and the areas each treats (its course's, else its
    service's). The visits of ``course_id`` are left out: a course spaces its own sessions
    by its plan's gap, and a re-plan moves them. Each visit is dated in its own location's
    zone (the patient may be treated at a location of the chain in another zone).

    Inside a transaction the patient is locked first (see :func:`patient_lock`), unless
    ``lock`` is false (a closure's run, which must not wait on one patient's booking)."""
    if lock:
        patient_lock(patient_id)
    reach = timedelta(days=load_pack().treatment_gap_days)
    tz = zone_info(zone)
    start = datetime.combine(first_day, time.min, tzinfo=tz)
    end = datetime.combine(last_day + timedelta(days=1), time.min, tzinfo=tz)
    rows = Appointment.objects.filter(
        patient_id=patient_id,
        service__kind=Service.Kind.TREATMENT,
        status__in=Appointment.HOLDING,
        starts_at__gte=start - reach,
        starts_at__lt=end + reach,
    )
    if excluding_appointment is not None:
        rows = rows.exclude(pk=excluding_appointment)
    if course_id is not None:
        rows = rows.exclude(course_session__course_id=course_id)
    return [
        Treatment(
            day=starts_at.astimezone(zone_info(where)).date(),
            areas=tuple(course_areas or areas or ()),
        )
        for starts_at, where, areas, course_areas in rows.values_list(
            "starts_at", "location__timezone", "service__areas", "course_session__course__areas"
        )
    ]


def patient_lock(patient_id: int) -> None:
    """Inside a transaction on PostgreSQL, lock the patient's row until it ends: two bookings
    of one patient's treatments at once (a double click, two desks) each read the other's
    visits only after it committed, so neither can slip a treatment too close to the other
    (the exclusion constraint stops overlapping times, not visits days apart). Every writer
    that reads spacing takes this lock before it writes any reservation. SQLite runs one
    writing transaction at a time and needs none; a read outside a transaction takes none.
    """
    if connection.features.has_select_for_update and connection.in_atomic_block:
        list(Patient.objects.select_for_update().filter(pk=patient_id).values_list("pk"))


def spacing_busy(
    treatments: Sequence[Treatment], areas: Sequence[str], *, zone: str
) -> tuple[tuple[datetime, datetime], ...]:
    """The days ``treatments`` block for a treatment of ``areas`` (see the core module)."""
    pack = load_pack()
    return spacing_blocks(
        treatments, areas, min_days=pack.treatment_gap_days, zone=zone, overlap=pack.skin_shared
    )


def treatment_spacing_check(
    *,
    patient_id: int,
    areas: Sequence[str],
    starts_at: datetime,
    zone: str,
    excluding_appointment: int | None = None,
    course_id: int | None = None,
    field: str = "starts_at",
    lock: bool = True,
) -> None:
    """Refuse a treatment of ``areas`` at ``starts_at`` fewer days from another treatment
    of the same skin than any protocol allows (``BookingRefused`` naming ``field``); the
    visits of ``course_id`` are its own course's, spaced by the course (see
    :func:`treatments_near`)."""
    pack = load_pack()
    day = starts_at.astimezone(zone_info(zone)).date()
    near = treatments_near(
        patient_id=patient_id,
        first_day=day,
        last_day=day,
        zone=zone,
        excluding_appointment=excluding_appointment,
        course_id=course_id,
        lock=lock,
    )
    clash = too_close(day, areas, near, min_days=pack.treatment_gap_days, overlap=pack.skin_shared)
    if clash is not None:
        raise BookingRefused(
            f"the patient has a treatment of the same skin on {clash.day.isoformat()}; "
            f"treatments of one area need at least {pack.treatment_gap_days} days between them",
            code=TOO_SOON,
            field=field,
        )
