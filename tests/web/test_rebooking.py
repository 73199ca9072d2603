"""Cancelling or missing a course session books its replacement and re-plans the rest, with
a preview that saves nothing."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from itertools import pairwise

import pytest

from microneedling.audit.models import AuditEvent
from microneedling.core.errors import BookingConflict, BookingRefused
from microneedling.directory.models import LocationClosure
from microneedling.scheduling import services
from microneedling.scheduling.models import Appointment, Course, CourseSession, Reservation
from microneedling.scheduling.rebooking import course_session_replace
from tests.web.conftest import TZ, Clinic, book_visit, local, make_patient

MONDAY = date(2027, 3, 8)
pytestmark = pytest.mark.usefixtures("frozen_now")


def book_course(clinic: Clinic) -> Course:
    return services.course_book(
        patient=make_patient(clinic),
        location=clinic.location,
        service=clinic.treatment,
        indications=["acne_scars"],
        first_session=MONDAY,
        areas=["face"],
    )


def visit(course: Course, number: int) -> Appointment:
    return course.sessions.get(number=number).appointments.get(status="booked")


def day_of(moment: datetime) -> date:
    return moment.astimezone(TZ).date()


def assert_course_valid(course: Course) -> None:
    """Every session booked once, inside its window, each after the last by the gap."""
    days = []
    for session in course.sessions.order_by("number"):
        assert session.status == CourseSession.Status.BOOKED
        day = day_of(visit(course, session.number).starts_at)
        assert session.earliest <= day <= session.latest, session.number
        days.append(day)
    for before, after in pairwise(days):
        assert course.gap_min_days <= (after - before).days <= course.gap_max_days


def test_a_cancellation_preview_rebooks_the_session_and_saves_nothing(clinic: Clinic) -> None:
    course = book_course(clinic)
    second, third = visit(course, 2), visit(course, 3)
    preview = course_session_replace(
        appointment=second, status="cancelled", actor=None, apply=False, reason="Away"
    )
    assert not preview.applied
    replacement = preview.changes[0]
    assert replacement.number == 2
    assert replacement.replaces == second.pk
    assert replacement.appointment_id is None
    assert replacement.changed
    session = course.sessions.get(number=2)
    assert session.earliest <= day_of(replacement.new_start) <= session.latest
    # The third session still fits after the replacement, so it stays where it is.
    assert [(c.number, c.changed) for c in preview.changes[1:]] == [(3, False)]
    assert preview.changes[1].new_start == third.starts_at
    # Nothing saved: the visit is still booked with its holds, and no visit was added.
    second.refresh_from_db()
    assert second.status == "booked"
    assert (
        second.reservations.filter(active=True).count() == 4
    )  # room, provider, pen and the patient
    assert Appointment.objects.filter(course_session__course=course).count() == 3
    assert not AuditEvent.objects.filter(action="appointment_cancelled").exists()


def test_applying_a_cancellation_books_the_replacement_and_keeps_the_history(
    clinic: Clinic,
) -> None:
    course = book_course(clinic)
    second = visit(course, 2)
    third_start = visit(course, 3).starts_at
    result = course_session_replace(
        appointment=second, status="cancelled", actor=None, apply=True, reason="Away"
    )
    assert result.applied
    second.refresh_from_db()
    assert second.status == "cancelled"
    assert not second.reservations.filter(active=True).exists()
    replacement = Appointment.objects.get(pk=result.changes[0].appointment_id)
    assert replacement.course_session_id == second.course_session_id
    assert replacement.starts_at == result.changes[0].new_start
    assert (
        replacement.reservations.filter(active=True).count() == 4
    )  # room, provider, pen and the patient
    assert visit(course, 3).starts_at == third_start
    assert_course_valid(course)
    assert AuditEvent.objects.filter(action="course_session_replace").count() == 1
    assert AuditEvent.objects.filter(action="appointment_cancelled").count() == 1


def test_when_no_day_keeps_the_next_session_the_rest_is_replanned(clinic: Clinic) -> None:
    course = book_course(clinic)
    second, third = visit(course, 2), visit(course, 3)
    window = course.sessions.get(number=2)
    third_day = day_of(third.starts_at)
    # Shut every day on which a replacement would leave session 3 where it is.
    keeping = (
        max(window.earliest, third_day - timedelta(days=course.gap_max_days)),
        min(window.latest, third_day - timedelta(days=course.gap_min_days)),
    )
    LocationClosure.objects.create(
        location=clinic.location, starts_on=keeping[0], ends_on=keeping[1], reason="Refit"
    )
    result = course_session_replace(appointment=second, status="cancelled", actor=None, apply=True)
    new_second = day_of(result.changes[0].new_start)
    assert not keeping[0] <= new_second <= keeping[1]
    moved = result.changes[1]
    assert moved.number == 3 and moved.changed
    assert day_of(moved.new_start) - new_second >= timedelta(days=course.gap_min_days)
    assert_course_valid(course)


def test_a_missed_first_session_is_rebooked_from_today(clinic: Clinic) -> None:
    course = book_course(clinic)
    first = visit(course, 1)
    # The morning after the missed visit.
    now = datetime.combine(day_of(first.starts_at) + timedelta(days=1), time(8), tzinfo=TZ)
    result = course_session_replace(
        appointment=first, status="no_show", actor=None, apply=True, now=now
    )
    first.refresh_from_db()
    assert first.status == "no_show"
    new_first = result.changes[0].new_start
    assert new_first >= now + timedelta(hours=12)  # minimum notice
    assert_course_valid(course)


def test_a_session_whose_window_has_closed_cannot_be_replaced(clinic: Clinic) -> None:
    course = book_course(clinic)
    second = visit(course, 2)
    too_late = datetime.combine(
        course.sessions.get(number=2).latest + timedelta(days=1), time(8), tzinfo=TZ
    )
    with pytest.raises(BookingConflict) as error:
        course_session_replace(
            appointment=second, status="no_show", actor=None, apply=True, now=too_late
        )
    assert error.value.session == 2
    assert "closed" in str(error.value)
    second.refresh_from_db()
    assert second.status == "booked"  # nothing half-written
    assert (
        second.reservations.filter(active=True).count() == 4
    )  # room, provider, pen and the patient


def test_only_a_course_session_with_a_releasing_status_can_be_replaced(clinic: Clinic) -> None:
    single = services.appointment_book(
        patient=make_patient(clinic, name="Dora Lane"),
        service=clinic.treatment,
        location=clinic.location,
        provider=clinic.ada,
        starts_at=local(MONDAY, 9),
    )
    with pytest.raises(BookingRefused) as error:
        course_session_replace(appointment=single, status="cancelled", actor=None, apply=False)
    assert error.value.code == "not_a_course"

    second = visit(book_course(clinic), 2)
    with pytest.raises(BookingRefused) as error:
        course_session_replace(appointment=second, status="completed", actor=None, apply=False)
    assert (error.value.code, error.value.field) == ("invalid_status", "status")
    services.appointment_set_status(appointment=second, status="cancelled", actor=None)
    with pytest.raises(BookingRefused) as error:
        course_session_replace(appointment=second, status="cancelled", actor=None, apply=False)
    assert error.value.code == "invalid_transition"
    assert Reservation.objects.filter(appointment=second, active=True).count() == 0


def test_a_replacement_is_booked_around_the_patients_other_visit(
    clinic: Clinic, staff_user
) -> None:
    course = book_course(clinic)
    second = visit(course, 2)
    # The desk booked the patient a consultation at the session's time on purpose (another
    # provider and room), and now the session itself is cancelled. Its own time is the
    # best for a replacement, but the patient is taken then.
    other = clinic.ben if second.provider == clinic.ada else clinic.ada
    elsewhere = book_visit(
        clinic,
        course.patient,
        second.starts_at + timedelta(minutes=30),
        other,
        over_by=staff_user,
        service=clinic.consultation,
    )
    applied = course_session_replace(
        appointment=second, status="cancelled", actor=None, apply=True, reason="Away"
    )
    assert applied.applied
    replacement = Appointment.objects.get(pk=applied.changes[0].appointment_id)
    assert not (
        replacement.starts_at < elsewhere.ends_at and elsewhere.starts_at < replacement.ends_at
    )
    assert_course_valid(course)
