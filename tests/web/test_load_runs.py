"""The load benchmark repeats its phases on one diary: what a run booked is undone after it."""

from __future__ import annotations

from datetime import date

import pytest

from microneedling.bench.load import table_marks, undo_since
from microneedling.notifications.models import Message
from microneedling.scheduling.models import Appointment, Course, CourseSession, Reservation
from tests.web.conftest import Clinic, book_course, make_patient

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen_now")]
MONDAY = date(2027, 3, 8)


def _counts() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (Course, CourseSession, Appointment, Reservation, Message)
    }


def _starts(course: Course) -> list[object]:
    visits = Appointment.objects.filter(course_session__course=course)
    return sorted(visits.values_list("starts_at", flat=True))


def test_undoing_a_run_removes_exactly_what_it_booked(clinic: Clinic) -> None:
    kept = book_course(clinic, make_patient(clinic, name="Before Run"), first=MONDAY)
    before = _counts()
    marks = table_marks()
    booked = book_course(clinic, make_patient(clinic, name="During Run"), first=MONDAY)
    times = _starts(booked)
    assert _counts()["Reservation"] > before["Reservation"]
    assert Message.objects.filter(patient=booked.patient).exists()

    undo_since(marks)

    assert _counts() == before
    assert not Course.objects.filter(pk=booked.pk).exists()
    assert len(_starts(kept)) == kept.sessions_total
    # The diary is as it was: the same booking finds the same times again, as in the next run.
    assert _starts(book_course(clinic, booked.patient, first=MONDAY)) == times
