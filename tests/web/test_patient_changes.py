"""What a patient may still change of their own visits, from the portal and the API: only a
visit still to come, and only into a time their latest screening allows (both engines)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse

from microneedling.accounts.services import api_token_issue
from microneedling.core.errors import BookingRefused
from microneedling.scheduling.models import Appointment, Course
from microneedling.scheduling.rebooking import course_session_replace
from microneedling.scheduling.services import appointment_set_status
from tests.web.conftest import TZ, Clinic, book_course, make_patient, make_staff, screen_again
from tests.web.test_course_pages import signed_in

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen_now")]


def _session(course: Course, number: int) -> Appointment:
    return Appointment.objects.get(course_session__course=course, course_session__number=number)


def _holds(visit: Appointment) -> bool:
    return visit.reservations.filter(active=True).exists()


def test_a_patient_cannot_cancel_a_visit_they_are_checked_in_to(clinic: Clinic) -> None:
    patient = make_patient(clinic)
    client = signed_in(patient)
    first = _session(book_course(clinic, patient), 1)
    appointment_set_status(appointment=first, status="checked_in", actor=None, now=first.starts_at)

    page = client.post(reverse("portal:session_cancel", args=[first.pk]), {"action": "cancel_only"})
    assert "this visit has begun or is over" in page.content.decode()
    token = api_token_issue(user=patient.user)
    answer = client.post(
        f"/api/v1/appointments/{first.pk}/status",
        json.dumps({"status": "cancelled"}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert answer.status_code == 422
    assert answer["Content-Type"] == "application/problem+json"
    assert "appointment" in json.dumps(answer.json())
    first.refresh_from_db()
    assert first.status == "checked_in" and _holds(first)


def test_a_patient_cannot_cancel_or_move_a_visit_whose_time_has_passed(clinic: Clinic) -> None:
    patient = make_patient(clinic)
    client = signed_in(patient)
    course = book_course(clinic, patient)
    first = _session(course, 1)
    move_url = reverse("portal:session_move", args=[first.pk])
    with time_machine.travel(first.starts_at + timedelta(hours=3), tick=False):
        client.force_login(patient.user)
        overview = client.get(reverse("portal:course", args=[course.pk])).content.decode()
        assert "Reschedule session 1" not in overview and "Cancel session 1" not in overview
        assert "Reschedule session 2" in overview
        choices = client.get(move_url).context["form"].fields["starts_at"].choices
        assert choices, "the rest of the window offers times; taking one is still refused"
        moved = client.post(move_url, {"starts_at": choices[0][0], "action": "apply"})
        assert "this visit has begun or is over" in moved.content.decode()
        cancelled = client.post(
            reverse("portal:session_cancel", args=[first.pk]), {"action": "apply"}
        )
        assert "this visit has begun or is over" in cancelled.content.decode()
        first.refresh_from_db()
        assert first.status == "booked"
        # The desk still records what happened.
        desk = make_staff("desk", "front_desk", locations=[clinic.location])
        appointment_set_status(appointment=first, status="no_show", actor=desk)
    first.refresh_from_db()
    assert first.status == "no_show"
    assert Appointment.objects.filter(course_session=first.course_session).count() == 1


def test_a_patient_may_cancel_a_visit_still_to_come_but_set_no_other_status(
    clinic: Clinic,
) -> None:
    patient = make_patient(clinic)
    signed_in(patient)
    course = book_course(clinic, patient)
    first, second = (_session(course, n) for n in (1, 2))
    with pytest.raises(BookingRefused) as refused:
        appointment_set_status(appointment=first, status="checked_in", actor=patient.user)
    assert refused.value.code == "staff_only" and refused.value.field == "status"
    appointment_set_status(appointment=second, status="cancelled", actor=patient.user)
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == ("booked", "cancelled")


def test_a_replacement_follows_the_patients_newest_screening(clinic: Clinic) -> None:
    patient = make_patient(clinic)
    client = signed_in(patient)
    course = book_course(clinic, patient)
    second = _session(course, 2)
    screen_again(patient, pregnant=True)  # now not eligible

    url = reverse("portal:session_cancel", args=[second.pk])
    page = client.post(url, {"action": "apply"}).content.decode()
    assert "unsuitable" in page
    second.refresh_from_db()
    assert second.status == "booked" and _holds(second)
    assert Appointment.objects.filter(course_session=second.course_session).count() == 1
    # Cancelling without a replacement is still the patient's to do.
    client.post(url, {"action": "cancel_only"})
    second.refresh_from_db()
    assert second.status == "cancelled"
    assert Appointment.objects.filter(course_session=second.course_session).count() == 1


def test_a_move_waits_for_a_provider_to_review_a_new_screening(clinic: Clinic) -> None:
    patient = make_patient(clinic)
    client = signed_in(patient)
    course = book_course(clinic, patient)
    second = _session(course, 2)
    screen_again(patient, conditions=[{"code": "rosacea", "status": "active", "area": "face"}])
    assert patient.screenings.newest_first().first().review == "pending"  # type: ignore[union-attr]

    token = api_token_issue(user=patient.user)
    new_start = second.starts_at + timedelta(days=1)
    answer = client.post(
        f"/api/v1/appointments/{second.pk}/move",
        json.dumps({"starts_at": new_start.isoformat(), "apply": True}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert answer.status_code == 422
    assert "starts_at" in json.dumps(answer.json())
    second.refresh_from_db()
    assert second.starts_at != new_start and second.status == "booked"


def test_a_replacement_starts_no_earlier_than_a_new_deferral_ends(clinic: Clinic) -> None:
    patient = make_patient(clinic)
    course = book_course(clinic, patient)
    second = _session(course, 2)
    window = second.course_session
    assert window is not None
    injected = window.earliest - timedelta(days=7)  # two weeks' wait ends inside the window
    screen_again(
        patient,
        screen_on=window.earliest,
        procedures=[{"code": "botox", "area": "face", "date": injected.isoformat()}],
    )
    until = patient.screenings.newest_first().first().deferred_until  # type: ignore[union-attr]
    assert until == injected + timedelta(days=14)

    desk = make_staff("desk", "front_desk", locations=[clinic.location])
    replan = course_session_replace(appointment=second, status="cancelled", actor=desk, apply=True)
    replacement = Appointment.objects.get(pk=replan.changes[0].appointment_id)
    assert replacement.starts_at.astimezone(TZ).date() >= until
