"""Newer answers that stop treatment already booked put the patient on the desk's list, once,
naming the visits and why, and the request closes itself when it has nothing left to follow."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse

from microneedling.core.errors import BookingRefused, InputError
from microneedling.patients.services import screening_review
from microneedling.scheduling import services
from microneedling.scheduling.models import Appointment, AppointmentRequest
from microneedling.scheduling.screening_followup import REASON
from tests.web.conftest import (
    MONDAY,
    TZ,
    Clinic,
    book_course,
    local,
    make_patient,
    make_staff,
    screen_again,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen_now")]


def followups() -> list[AppointmentRequest]:
    """Every follow-up request, open or closed, oldest first."""
    return list(AppointmentRequest.objects.filter(reason=REASON).order_by("pk"))


def sessions_of(course) -> list[Appointment]:  # type: ignore[no-untyped-def]
    return list(
        Appointment.objects.filter(course_session__course=course).order_by("starts_at", "pk")
    )


def test_a_pregnancy_reported_after_booking_lists_every_session_for_the_desk_once(
    clinic: Clinic,
) -> None:
    patient = make_patient(clinic)
    visits = sessions_of(book_course(clinic, patient))
    assert followups() == []  # cleared when booked: nothing to follow up
    screen_again(patient, pregnant=True)
    screen_again(patient, pregnant=True)  # answered twice: still one line on the list
    [request] = followups()
    assert request.status == AppointmentRequest.Status.OPEN
    assert request.payload == {
        "appointment": visits[0].pk,
        "appointments": [v.pk for v in visits],
        "why": "screening found the treatment unsuitable",
    }
    assert (request.location_id, request.service_id) == (clinic.location.pk, clinic.treatment.pk)
    desk = Client()
    desk.force_login(make_staff("front.desk", "front_desk"))
    row = desk.get(reverse("desk:requests")).content.decode().split("<tbody>")[1]
    assert reverse("desk:visit", args=[visits[0].pk]) in row and "3 visits" in row
    # Why is the screening's: the front desk reads that there is a reason, a provider which.
    assert "a provider can see why" in row and "unsuitable" not in row
    provider = Client()
    provider.force_login(make_staff("ada.quill", "provider", provider=clinic.ada))
    row = provider.get(reverse("desk:requests")).content.decode().split("<tbody>")[1]
    assert "screening found the treatment unsuitable" in row
    # No longer pregnant when asked again: the request closes, and says why.
    screen_again(patient)
    request.refresh_from_db()
    assert request.status == AppointmentRequest.Status.BOOKED
    assert request.decision_reason == "the newest answers clear every visit"
    row = desk.get(reverse("desk:requests")).content.decode()
    assert "newer answers stop booked treatment" not in row  # off the desk's list


def test_a_recent_peel_lists_only_the_sessions_before_its_wait_ends(clinic: Clinic) -> None:
    patient = make_patient(clinic)
    visits = sessions_of(book_course(clinic, patient))
    peel = MONDAY - timedelta(days=3)
    screen_again(patient, procedures=[{"code": "chemical_peel", "area": "face", "date": f"{peel}"}])
    until = patient.screenings.newest_first().first().deferred_until
    assert until is not None
    too_soon = [v.pk for v in visits if v.starts_at.astimezone(TZ).date() < until]
    assert too_soon and len(too_soon) < len(visits)  # the peel's wait ends mid-course
    [request] = followups()
    assert request.payload["appointments"] == too_soon
    assert request.payload["why"] == f"treatment may start from {until.isoformat()}"


def test_the_request_closes_once_no_listed_visit_is_left_to_come(clinic: Clinic) -> None:
    patient = make_patient(clinic)
    visits = sessions_of(book_course(clinic, patient))
    screen_again(patient, pregnant=True)
    for visit in visits[:-1]:
        services.appointment_cancel(appointment=visit, actor=None, reason="pregnant")
        [request] = followups()
        assert request.status == AppointmentRequest.Status.OPEN
    assert request.payload["appointments"] == [visits[-1].pk]
    services.appointment_cancel(appointment=visits[-1], actor=None, reason="pregnant")
    request.refresh_from_db()
    assert request.status == AppointmentRequest.Status.DECLINED
    assert request.decision_reason == "no visit is left to come"


def test_answers_waiting_for_review_list_the_visits_until_a_provider_decides(
    clinic: Clinic,
) -> None:
    ada = make_staff("ada.quill", "provider", provider=clinic.ada)
    for approve, name in ((True, "Cleo Marsh"), (False, "Dora Lane")):
        patient = make_patient(clinic, name=name)
        visits = sessions_of(book_course(clinic, patient))
        screen_again(patient, conditions=[{"code": "rosacea"}])
        request = AppointmentRequest.objects.get(reason=REASON, patient=patient)
        assert request.payload["why"] == "a provider must review the screening first"
        assert request.payload["appointments"] == [v.pk for v in visits]
        screening_review(
            screening=patient.screenings.newest_first().first(),
            actor=ada,
            approve=approve,
            reason="Mild and calm" if approve else "Flaring today",
        )
        request.refresh_from_db()
        if approve:
            assert request.status == AppointmentRequest.Status.BOOKED
        else:
            assert request.status == AppointmentRequest.Status.OPEN
            assert request.payload["why"] == "a provider declined the treatment"


def test_a_consultation_is_never_listed(clinic: Clinic) -> None:
    patient = make_patient(clinic)
    services.appointment_book(
        patient=patient,
        service=clinic.consultation,
        location=clinic.location,
        provider=clinic.ada,
        starts_at=local(MONDAY, 10),
    )
    screen_again(patient, pregnant=True)
    assert followups() == []


def test_moving_a_listed_session_past_the_wait_takes_it_off_the_list(clinic: Clinic) -> None:
    from microneedling.scheduling.replanning import course_session_move  # noqa: PLC0415

    patient = make_patient(clinic)
    course = book_course(clinic, patient)
    first, second, _ = sessions_of(course)
    # A peel on the day of the first session: its wait ends inside the second's window.
    screen_again(
        patient, procedures=[{"code": "chemical_peel", "area": "face", "date": f"{MONDAY}"}]
    )
    until = patient.screenings.newest_first().first().deferred_until
    window = course.sessions.get(number=2)
    assert second.starts_at.astimezone(TZ).date() < until <= window.latest
    [request] = followups()
    assert request.payload["appointments"][:2] == [first.pk, second.pk]
    course_session_move(
        appointment=second, starts_at=local(window.latest, 14), actor=None, apply=True
    )
    request.refresh_from_db()
    assert request.status == AppointmentRequest.Status.OPEN
    assert second.pk not in request.payload["appointments"]
    assert request.payload["appointments"][0] == first.pk


def test_answers_about_other_skin_neither_stop_nor_cover_a_course_already_booked(
    clinic: Clinic,
) -> None:
    """In the middle of a face course the patient answers the intake for a neck course
    planned for June: the face sessions before June stay cleared (those answers were not
    about the face), while a pregnancy reported on the same form stops them all."""
    patient = make_patient(clinic)
    visits = sessions_of(book_course(clinic, patient))
    june = MONDAY + timedelta(days=90)
    assert all(v.starts_at.astimezone(TZ).date() < june for v in visits)
    screen_again(patient, screen_on=june, treatment_areas=["neck"])
    assert followups() == []
    with pytest.raises(BookingRefused):  # a new face course would need face answers
        services.booking_gate(patient, june, areas=["face"])
    screen_again(patient, screen_on=june, treatment_areas=["neck"], pregnant=True)
    [request] = followups()
    assert request.payload["appointments"] == [v.pk for v in visits]


def test_newer_answers_about_the_same_skin_for_a_later_day_stop_the_sessions_before_it(
    clinic: Clinic,
) -> None:
    """Answers about the face screened for a day after the next session: its waits were
    counted to that later day, so the sessions before it are stopped until asked again."""
    patient = make_patient(clinic)
    visits = sessions_of(book_course(clinic, patient))
    later = visits[1].starts_at.astimezone(TZ).date() + timedelta(days=1)
    screen_again(patient, screen_on=later)
    [request] = followups()
    assert request.payload["appointments"] == [v.pk for v in visits[:2]]
    assert request.payload["why"].startswith(
        f"the answers were screened for treatment from {later}"
    )


def test_a_re_homing_request_is_not_closed_by_hand(clinic: Clinic) -> None:
    waiting = AppointmentRequest.objects.create(
        patient=make_patient(clinic),
        location=clinic.location,
        service=clinic.treatment,
        reason="rehoming",
        payload={"appointment": 1, "why": "no room"},
    )
    with pytest.raises(InputError) as refused:
        services.appointment_request_close(request=waiting, actor=None, reason="Called her")
    assert refused.value.field == "request"
    waiting.refresh_from_db()
    assert waiting.status == AppointmentRequest.Status.OPEN
