"""Treatments of the same skin stay at least the shortest protocol interval apart, whichever
course or single visit they belong to; other skin, and a staff override, are not held up."""

from __future__ import annotations

from datetime import date, timedelta
from itertools import pairwise

import pytest
import requests

from microneedling.core.errors import BookingRefused
from microneedling.core.knowledge import load_pack
from microneedling.directory.models import Service, ServicePhase
from microneedling.scheduling import services
from microneedling.scheduling.models import Appointment, Course
from microneedling.scheduling.selectors import session_move_options
from tests.web.conftest import (
    MONDAY,
    NOW,
    TZ,
    Clinic,
    book_course,
    book_visit,
    local,
    make_patient,
    screen_again,
)

pytestmark = pytest.mark.usefixtures("frozen_now")

GAP = load_pack().treatment_gap_days


def _day(visit: Appointment) -> date:
    return visit.starts_at.astimezone(TZ).date()


def _neck_service(clinic: Clinic) -> Service:
    neck = Service.objects.create(
        organization=clinic.org,
        code="mn-neck",
        name="Microneedling: neck",
        kind="treatment",
        areas=["neck"],
    )
    for phase in clinic.treatment.phases.all():
        ServicePhase.objects.create(
            service=neck,
            order=phase.order,
            code=phase.code,
            minutes=phase.minutes,
            needs_provider=phase.needs_provider,
            needs_device=phase.needs_device,
        )
    return neck


def test_the_shortest_interval_is_the_packs_shortest_protocol_gap() -> None:
    pack = load_pack()
    gaps = [p.gap.min for i in pack.indications.values() for p in i.protocols]
    assert min(gaps) == GAP
    assert GAP >= 28


def test_a_second_course_of_the_same_skin_cannot_interleave_with_the_first(
    clinic: Clinic,
) -> None:
    """Two courses of the face a fortnight apart used to be booked, needling the face
    every two weeks: each course spaced only its own sessions."""
    patient = make_patient(clinic)
    first = book_course(clinic, patient)
    with pytest.raises(BookingRefused) as refused:
        book_course(clinic, patient, first=MONDAY + timedelta(days=14))
    assert (refused.value.code, refused.value.field) == (
        "too_soon_after_treatment",
        "first_session",
    )
    last = max(_day(v) for v in Appointment.objects.filter(course_session__course=first))
    # The refusal names the first day the second course could start.
    assert (last + timedelta(days=GAP)).isoformat() in refused.value.message
    assert Course.objects.filter(patient=patient).count() == 1
    assert Appointment.objects.filter(patient=patient).count() == 3


def test_the_next_course_of_the_same_skin_is_booked_after_the_first_one_ends(
    clinic: Clinic,
) -> None:
    patient = make_patient(clinic)
    first = book_course(clinic, patient)
    last = max(_day(v) for v in Appointment.objects.filter(course_session__course=first))
    second = book_course(clinic, patient, first=last + timedelta(days=GAP))
    days = sorted(_day(v) for v in Appointment.objects.filter(patient=patient, status="booked"))
    assert second.pk != first.pk and len(days) == 6
    assert all((b - a).days >= GAP for a, b in pairwise(days))


def test_a_second_course_is_booked_once_the_first_is_cancelled(clinic: Clinic) -> None:
    patient = make_patient(clinic)
    first = book_course(clinic, patient)
    for visit in Appointment.objects.filter(course_session__course=first):
        services.appointment_cancel(appointment=visit, actor=None, reason="patient changed plans")
    second = book_course(clinic, patient, first=MONDAY + timedelta(days=14))
    assert second.pk != first.pk


def test_a_single_treatment_of_the_same_skin_too_soon_after_a_session_is_refused(
    clinic: Clinic,
) -> None:
    patient = make_patient(clinic)
    course = book_course(clinic, patient, first=MONDAY + timedelta(days=35))
    first = course.sessions.get(number=1).appointments.get()
    # Three weeks on either side (the same weekday, so the clinic is open): too soon.
    for day in (_day(first) + timedelta(days=21), _day(first) - timedelta(days=21)):
        with pytest.raises(BookingRefused) as refused:
            book_visit(clinic, patient, local(day, 10))
        assert (refused.value.code, refused.value.field) == (
            "too_soon_after_treatment",
            "starts_at",
        )
        assert str(_day(first)) in refused.value.message
    assert Appointment.objects.filter(patient=patient).count() == 3
    # Exactly the interval before it is soon enough.
    assert GAP == 28
    kept = book_visit(clinic, patient, local(_day(first) - timedelta(days=GAP), 10))
    assert kept.status == Appointment.Status.BOOKED


def test_a_treatment_of_other_skin_is_not_held_up_by_the_face(clinic: Clinic) -> None:
    patient = make_patient(clinic)
    screen_again(patient, treatment_areas=["face", "neck"])
    course = book_course(clinic, patient)
    first = course.sessions.get(number=1).appointments.get()
    neck = services.appointment_book(
        patient=patient,
        service=_neck_service(clinic),
        location=clinic.location,
        provider=clinic.ada,
        starts_at=local(_day(first) + timedelta(days=7), 10),
    )
    assert neck.status == Appointment.Status.BOOKED


def test_a_staff_override_treats_sooner_on_purpose(clinic: Clinic, staff_user) -> None:
    patient = make_patient(clinic)
    course = book_course(clinic, patient)
    first = course.sessions.get(number=1).appointments.get()
    visit = book_visit(
        clinic, patient, local(_day(first) + timedelta(days=7), 10), over_by=staff_user
    )
    assert visit.override_reason


def test_a_cancelled_treatment_holds_nothing_up(clinic: Clinic) -> None:
    patient = make_patient(clinic)
    earlier = book_visit(clinic, patient, local(MONDAY, 10))
    services.appointment_cancel(appointment=earlier, actor=None, reason="patient asked")
    later = book_visit(clinic, patient, local(MONDAY + timedelta(days=7), 10))
    assert later.status == Appointment.Status.BOOKED


def test_a_course_starts_no_sooner_than_the_interval_after_a_single_treatment(
    clinic: Clinic,
) -> None:
    patient = make_patient(clinic)
    single = book_visit(clinic, patient, local(MONDAY, 10))
    # Asked to start five days later, the course's first session waits out the interval
    # (the first session may fall up to a week after the day asked for).
    asked = MONDAY + timedelta(days=GAP - 5)
    course = book_course(clinic, patient, first=asked)
    days = [_day(v) for v in Appointment.objects.filter(course_session__course=course)]
    assert min(days) >= _day(single) + timedelta(days=GAP)


def test_a_session_is_not_offered_a_move_too_close_to_another_treatment_of_its_skin(
    clinic: Clinic,
) -> None:
    patient = make_patient(clinic)
    single = book_visit(clinic, patient, local(MONDAY + timedelta(days=3), 10))
    course = book_course(clinic, patient, first=MONDAY + timedelta(days=GAP))
    session = course.sessions.get(number=1).appointments.get()
    # The session's window opens on days too close to the single visit...
    assert (session.course_session.earliest - _day(single)).days < GAP
    offered = session_move_options(session, now=NOW)
    assert offered, "the session's window still has days far enough from the single visit"
    assert all((s.astimezone(TZ).date() - _day(single)).days >= GAP for s in offered), (
        "a move may not bring the session closer than the interval"
    )


def test_the_api_refuses_a_treatment_too_soon_with_a_problem_naming_starts_at(
    live_server, staff_token, transactional_db
) -> None:
    from tests.web.conftest import build_clinic  # noqa: PLC0415

    clinic = build_clinic()
    patient = make_patient(clinic)
    body = {
        "patient_id": patient.pk,
        "location_id": clinic.location.pk,
        "service_id": clinic.treatment.pk,
        "provider_id": clinic.ada.pk,
    }
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {staff_token}"
    base = f"{live_server.url}/api/v1/appointments"
    first = http.post(base, json={**body, "starts_at": local(MONDAY, 10).isoformat()}, timeout=30)
    assert first.status_code == 201, first.text
    soon = local(MONDAY + timedelta(days=14), 10).isoformat()
    response = http.post(base, json={**body, "starts_at": soon}, timeout=30)
    assert response.status_code == 422, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "too_soon_after_treatment"
    assert "starts_at" in str(problem.get("field") or problem.get("errors"))
    assert Appointment.objects.filter(patient=patient).count() == 1


def test_a_replacement_with_no_day_far_enough_from_another_treatment_says_so(
    clinic: Clinic, staff_user
) -> None:
    """The desk once treated the face between sessions on purpose (an override); when the
    next session is cancelled, its replacement has no day far enough from that treatment,
    and the desk is told why instead of "no free slot"."""
    from microneedling.scheduling.rebooking import course_session_replace  # noqa: PLC0415

    patient = make_patient(clinic)
    course = book_course(clinic, patient)
    second = course.sessions.get(number=2).appointments.get()
    other = clinic.ben if second.provider == clinic.ada else clinic.ada
    book_visit(clinic, patient, second.starts_at, other, over_by=staff_user)
    with pytest.raises(BookingRefused) as refused:
        course_session_replace(
            appointment=second, status="cancelled", actor=None, apply=True, reason="Away"
        )
    assert refused.value.code == "too_soon_after_treatment"
    assert "the replacement can be on" in refused.value.message
    second.refresh_from_db()
    assert second.status == Appointment.Status.BOOKED  # nothing changed


def test_a_treatment_service_without_areas_is_spaced_from_every_treatment(
    clinic: Clinic,
) -> None:
    """A service set up without areas may treat any skin: it is spaced like the face."""
    plain = _neck_service(clinic)
    Service.objects.filter(pk=plain.pk).update(areas=[])
    plain.refresh_from_db()
    patient = make_patient(clinic)
    book_visit(clinic, patient, local(MONDAY, 10))
    with pytest.raises(BookingRefused) as refused:
        services.appointment_book(
            patient=patient,
            service=plain,
            location=clinic.location,
            provider=clinic.ada,
            starts_at=local(MONDAY + timedelta(days=7), 10),
        )
    assert refused.value.code == "too_soon_after_treatment"
