"""The benchmarks' checks of the diary: the re-homing check counts every overlapping pair,
the load test's finds a double booking the database constraint lets through."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from microneedling.bench.load import _double_bookings
from microneedling.bench.rehoming import _checks, _overlapping_pairs, _ratio
from microneedling.scheduling.models import Appointment, Reservation
from tests.web.conftest import Clinic, book_course, local, make_patient

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen_now")]
MONDAY = date(2027, 3, 8)


def test_a_long_hold_overlapping_two_later_ones_is_two_overlaps() -> None:
    # The rows as the check reads them (resource, start, end, by resource and start). The
    # database cannot hold them on PostgreSQL, whose exclusion constraint refuses the
    # overlaps, so the counting is given them directly.
    nine = local(MONDAY + timedelta(days=200), 9)
    rows = [
        ("room:a", nine, nine + timedelta(minutes=120)),  # 9:00-11:00 overlaps the next two
        ("room:a", nine + timedelta(minutes=10), nine + timedelta(minutes=20)),
        ("room:a", nine + timedelta(minutes=30), nine + timedelta(minutes=40)),
        ("room:a", nine + timedelta(minutes=120), nine + timedelta(minutes=130)),  # touches
        ("room:b", nine + timedelta(minutes=10), nine + timedelta(minutes=20)),  # another room
    ]
    assert _overlapping_pairs(rows) == 2
    assert _overlapping_pairs(rows[:1] + rows[3:]) == 0


def test_the_rehoming_check_finds_nothing_on_a_clean_diary(clinic: Clinic) -> None:
    book_course(clinic, make_patient(clinic, name="Check Patient"), first=MONDAY)
    assert _checks()["overlapping_reservations"] == 0


def _row(visit: Appointment, starts_at: datetime, minutes: int, *, override: bool) -> None:
    Reservation.objects.create(
        appointment=visit,
        resource="provider:bench-check",
        phase="procedure",
        starts_at=starts_at,
        ends_at=starts_at + timedelta(minutes=minutes),
        overlap_allowed=override,
    )


def test_an_ordinary_booking_over_an_earlier_override_is_a_double_booking(
    clinic: Clinic,
) -> None:
    course = book_course(clinic, make_patient(clinic, name="Load Patient"), first=MONDAY)
    visit = Appointment.objects.filter(course_session__course=course).first()
    assert visit is not None
    assert _double_bookings() == 0
    ten = local(MONDAY + timedelta(days=200), 10)
    _row(visit, ten, 30, override=False)  # 10:00-10:30
    _row(visit, ten + timedelta(minutes=15), 60, override=True)  # 10:15-11:15, allowed
    assert _double_bookings() == 0
    # The overlap the PostgreSQL constraint lets through: an ordinary row written later
    # over the override only (10:45-11:15).
    _row(visit, ten + timedelta(minutes=45), 30, override=False)
    assert _double_bookings() == 1


def test_no_cp_sat_plan_is_no_ratio() -> None:
    # CP-SAT out of time with no plan reports the empty plan's objective, 0: not parity.
    assert _ratio(4545.8, 0.0, "UNKNOWN") is None
    assert _ratio(4545.8, 4545.8, "OPTIMAL") == 1.0
    assert _ratio(10.0, 8.0, "FEASIBLE") == 1.25
