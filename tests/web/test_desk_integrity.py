"""The desk's records stay whole: one answer when two people act at once, no chart on a visit
that never was, no day at the calendar's ends, a course session that follows its visit, and
requests that follow the screening they waited for (Django's test client, both engines)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from microneedling.aftercare.models import SkinReport
from microneedling.aftercare.services import skin_report_handle
from microneedling.charting import services as charting
from microneedling.charting.models import ProcedureChart
from microneedling.core.errors import BookingRefused, InputError
from microneedling.patients.services import screening_review
from microneedling.scheduling import services
from microneedling.scheduling.models import Appointment, AppointmentRequest, Course
from tests.web.conftest import (
    TZ,
    Clinic,
    book_course,
    client_of,
    make_patient,
    make_staff,
    procedure_start,
    screen_again,
)
from tests.web.test_api import _booking_body
from tests.web.test_course_pages import signed_in
from tests.web.test_desk_pages import chart_data, chart_fields, lot, sign_as_shown, visit

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen_now")]


@pytest.fixture
def provider(clinic: Clinic) -> Client:
    return client_of(make_staff("ada.quill", "provider", provider=clinic.ada))


def test_a_visit_entered_in_error_returns_its_session_to_be_booked_again(
    clinic: Clinic, auth_headers: Callable[..., dict[str, str]]
) -> None:
    course = book_course(clinic, make_patient(clinic))
    first, second = (
        Appointment.objects.get(course_session__course=course, course_session__number=n)
        for n in (1, 2)
    )
    services.appointment_set_status(appointment=second, status="entered_in_error", actor=None)
    second.course_session.refresh_from_db()  # type: ignore[union-attr]
    assert second.course_session.status == "planned"  # type: ignore[union-attr]
    # Moving the session before it re-plans the rest without tripping over the empty one.
    answer = Client().post(
        f"/api/v1/appointments/{first.pk}/move",
        json.dumps({"starts_at": (first.starts_at + timedelta(days=1)).isoformat()}),
        content_type="application/json",
        **auth_headers(),
    )
    assert answer.status_code == 200, answer.content
    assert answer.json()["sessions"][0]["number"] == 1 and not answer.json()["applied"]


def test_of_two_status_changes_from_one_reading_only_the_first_is_applied(
    clinic: Clinic,
) -> None:
    booked = visit(clinic)
    seen_by_one, seen_by_other = (Appointment.objects.get(pk=booked.pk) for _ in range(2))
    on_the_day = booked.starts_at
    services.appointment_set_status(
        appointment=seen_by_one, status="checked_in", actor=None, now=on_the_day
    )
    with pytest.raises(BookingRefused) as refused:
        services.appointment_set_status(
            appointment=seen_by_other, status="no_show", actor=None, now=on_the_day
        )
    assert refused.value.code == "changed_meanwhile" and refused.value.field == "status"
    booked.refresh_from_db()
    assert booked.status == "checked_in"
    assert booked.reservations.filter(active=True).count() == booked.reservations.count() > 0


def test_nothing_clinical_is_recorded_on_a_cancelled_visit(
    clinic: Clinic, provider: Client
) -> None:
    cancelled = visit(clinic)
    services.appointment_cancel(appointment=cancelled, actor=None)
    url = reverse("desk:visit", args=[cancelled.pk])
    page = provider.post(url, chart_data(clinic, lot(clinic))).content.decode()
    assert "there is no chart to record" in page
    scored = provider.post(url, {"action": "score", "scale": "global_aesthetic", "value": 1})
    assert scored.status_code == 200
    assert not ProcedureChart.objects.exists()
    assert not cancelled.scores.exists()


def test_saving_the_chart_twice_keeps_one_draft_and_a_signed_chart_is_only_amended(
    clinic: Clinic, provider: Client
) -> None:
    treated = procedure_start(visit(clinic))
    url = reverse("desk:visit", args=[treated.pk])
    cartridge = lot(clinic)
    provider.post(url, chart_data(clinic, cartridge))
    provider.post(url, chart_data(clinic, cartridge, depth_face="0.8"))  # a second click, edited
    chart = ProcedureChart.objects.get()
    assert chart.areas[0]["depth_mm"] == 0.8
    sign_as_shown(provider, url)
    again = provider.post(url, chart_data(clinic, cartridge, depth_face="0.5")).content.decode()
    assert "amend it to change it" in again
    chart.refresh_from_db()
    assert ProcedureChart.objects.count() == 1 and chart.locked
    assert chart.areas[0]["depth_mm"] == 0.8
    assert "Draft: not signed yet" not in provider.get(url).content.decode()


def test_sign_signs_only_the_draft_the_page_showed(clinic: Clinic, provider: Client) -> None:
    treated = procedure_start(visit(clinic))
    url = reverse("desk:visit", args=[treated.pk])
    cartridge = lot(clinic)
    provider.post(url, chart_data(clinic, cartridge))  # depth 1.0
    shown = provider.get(url).content.decode()
    version = shown.split('name="version" value="')[1].split('"')[0]
    ben = make_staff("ben.ortiz", "provider", provider=clinic.ben)
    # A colleague corrects the draft meanwhile.
    charting.chart_write(appointment=treated, actor=ben, data=chart_fields(clinic, cartridge, 1.5))
    refused = provider.post(url, {"action": "sign", "version": version}, follow=True)
    assert "changed since you opened it" in refused.content.decode()
    chart = ProcedureChart.objects.get()
    assert not chart.locked
    # Read again, it is the 1.5 mm draft that is signed, knowingly.
    assert "1.5 mm" in sign_as_shown(provider, url)
    chart.refresh_from_db()
    assert chart.locked and chart.areas[0]["depth_mm"] == 1.5


def test_two_amendments_of_one_chart_sent_together_keep_the_first_and_name_the_second(
    clinic: Clinic,
) -> None:
    treated = procedure_start(visit(clinic))
    ada = make_staff("ada.quill", "provider", provider=clinic.ada)
    data = chart_fields(clinic, lot(clinic), 1.0)
    draft = charting.chart_write(appointment=treated, actor=ada, data=data)
    signed = charting.chart_sign(chart=draft, actor=ada)
    seen_by_ben = ProcedureChart.objects.get(pk=signed.pk)
    assert not hasattr(seen_by_ben, "amendment")  # ben's request asked before ada's amended
    charting.chart_write(
        appointment=treated, actor=ada, data=data, amends=ProcedureChart.objects.get(pk=signed.pk)
    )
    with pytest.raises(InputError, match="amended already"):
        charting.chart_write(appointment=treated, actor=ada, data=data, amends=seen_by_ben)
    assert ProcedureChart.objects.count() == 2


def test_an_unsigned_draft_is_corrected_from_the_visit_page(
    clinic: Clinic, provider: Client
) -> None:
    treated = visit(clinic)
    url = reverse("desk:visit", args=[treated.pk])
    cartridge = lot(clinic)
    provider.post(url, chart_data(clinic, cartridge))
    assert "?amend=1" in provider.get(url).content.decode()
    form = provider.get(url + "?amend=1").content.decode()
    # The form starts from the draft, and saves it in place rather than as an amendment.
    assert 'value="1.0"' in form and 'name="action" value="chart"' in form
    assert 'value="amend"' not in form
    provider.post(url, chart_data(clinic, cartridge, depth_face="0.5"))
    chart = ProcedureChart.objects.get()
    assert chart.areas[0]["depth_mm"] == 0.5 and not chart.locked


def test_a_skin_report_is_handled_once_and_keeps_the_first_note(clinic: Clinic) -> None:
    treated = visit(clinic)
    report = SkinReport.objects.create(
        patient=treated.patient,
        appointment=treated,
        day=2,
        symptoms=[],
        action=SkinReport.Action.CONTACT_CLINIC,
        result={},
    )
    ada = make_staff("ada.quill", "provider", provider=clinic.ada)
    bob = make_staff("bob.quill", "provider")
    skin_report_handle(report=report, actor=ada, note="Called her; review on Tuesday")
    stale = SkinReport.objects.get(pk=report.pk)
    stale.status = SkinReport.Status.OPEN  # as a page opened before Ada's note still shows it
    with pytest.raises(ValueError, match="already been handled"):
        skin_report_handle(report=stale, actor=bob, note="ok")
    report.refresh_from_db()
    assert (report.handled_by_id, report.handling_note) == (ada.pk, "Called her; review on Tuesday")


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31", "1999-12-31"])
def test_a_day_at_the_calendars_ends_shows_today_with_a_message(
    clinic: Clinic, provider: Client, day: str
) -> None:
    front = client_of(make_staff("front", "front_desk", locations=[clinic.location]))
    url = reverse("desk:day_sheet", args=[clinic.location.slug])
    answer = front.get(url, {"day": day})
    assert answer.status_code == 200
    assert "The day must be between 2000 and 2100" in answer.content.decode()
    assert answer.context["sheet"].day == timezone.now().astimezone(TZ).date()


def test_a_page_in_a_locations_zone_leaves_the_next_request_in_the_default_zone(
    clinic: Clinic,
) -> None:
    front = client_of(make_staff("front", "front_desk", locations=[clinic.location]))
    assert front.get(reverse("desk:day_sheet", args=[clinic.location.slug])).status_code == 200
    assert timezone.get_current_timezone_name() == settings.TIME_ZONE


def test_approving_a_screening_approves_the_request_that_waited_and_booking_closes_it(
    clinic: Clinic, auth_headers: Callable[..., dict[str, str]]
) -> None:
    patient = make_patient(clinic, conditions=[{"code": "rosacea", "status": "active"}])
    body = {**_booking_body(patient.pk, clinic), "areas": ["face"]}
    api = Client()
    waiting = api.post(
        "/api/v1/courses", json.dumps(body), content_type="application/json", **auth_headers()
    )
    assert waiting.status_code == 202
    request = AppointmentRequest.objects.get(pk=waiting.json()["request_id"])
    ada = make_staff("ada.quill", "provider", provider=clinic.ada)
    screening_review(
        screening=patient.screenings.get(), actor=ada, approve=True, reason="Calm today"
    )
    request.refresh_from_db()
    assert request.status == "approved"
    front = client_of(make_staff("front", "front_desk", locations=[clinic.location]))
    listed = front.get(reverse("desk:requests")).content.decode()
    assert patient.last_name in listed and "Approved" in listed
    booked = api.post(
        "/api/v1/courses", json.dumps(body), content_type="application/json", **auth_headers()
    )
    assert booked.status_code == 201
    request.refresh_from_db()
    assert request.status == "booked"
    assert patient.last_name not in front.get(reverse("desk:requests")).content.decode()


def test_a_course_asked_for_again_while_its_review_waits_is_one_request_with_the_latest_ask(
    clinic: Clinic, auth_headers: Callable[..., dict[str, str]]
) -> None:
    patient = make_patient(clinic, conditions=[{"code": "rosacea", "status": "active"}])
    body = {**_booking_body(patient.pk, clinic), "areas": ["face"]}
    api = Client()
    answers = []
    for ask in (body, {**body, "areas": ["face", "neck"]}):  # a retry, then other areas
        answer = api.post(
            "/api/v1/courses", json.dumps(ask), content_type="application/json", **auth_headers()
        )
        assert answer.status_code == 202, answer.content
        answers.append(answer.json()["request_id"])
    assert answers[0] == answers[1]
    [request] = AppointmentRequest.objects.filter(patient=patient)
    assert request.payload["areas"] == ["face", "neck"]
    front = client_of(make_staff("front", "front_desk", locations=[clinic.location]))
    listed = front.get(reverse("desk:requests")).content.decode()
    assert listed.count(f"{patient.first_name} {patient.last_name}") == 1


def test_declining_a_screening_declines_the_request_that_waited(clinic: Clinic) -> None:
    patient = make_patient(clinic, conditions=[{"code": "rosacea", "status": "active"}])
    request = services.appointment_request_create(
        patient=patient,
        location=clinic.location,
        service=clinic.treatment,
        reason="clinician_review",
        payload={},
    )
    ada = make_staff("ada.quill", "provider", provider=clinic.ada)
    screening_review(screening=patient.screenings.get(), actor=ada, approve=False, reason="Flare")
    request.refresh_from_db()
    assert request.status == "declined"


def test_only_the_newest_of_a_patients_waiting_screenings_is_listed_and_decided(
    clinic: Clinic, provider: Client
) -> None:
    patient = make_patient(clinic, conditions=[{"code": "rosacea", "status": "active"}])
    older = patient.screenings.get()
    screen_again(patient, conditions=[{"code": "rosacea", "status": "active"}])
    newest = patient.screenings.newest_first().first()
    assert newest is not None and newest != older and newest.review == "pending"
    waiting = services.appointment_request_create(
        patient=patient,
        location=clinic.location,
        service=clinic.treatment,
        reason="clinician_review",
        payload={},
    )
    queue = provider.get(reverse("desk:screenings")).content.decode()
    assert reverse("desk:screening", args=[newest.pk]) in queue
    assert reverse("desk:screening", args=[older.pk]) not in queue
    refused = provider.post(
        reverse("desk:screening", args=[older.pk]),
        {"decision": "approve", "reason": "Calm in the photo from last month"},
    )
    assert "answered the questions again since" in refused.content.decode()
    older.refresh_from_db()
    waiting.refresh_from_db()
    # The request waits for the newest answers: the older ones' decision does not book it.
    assert older.review == "pending" and waiting.status == "open"
    provider.post(
        reverse("desk:screening", args=[newest.pk]),
        {"decision": "approve", "reason": "Calm today"},
    )
    waiting.refresh_from_db()
    assert waiting.status == "approved"


def test_a_course_of_consultations_is_refused_naming_the_service(
    clinic: Clinic, auth_headers: Callable[..., dict[str, str]]
) -> None:
    body = {**_booking_body(make_patient(clinic).pk, clinic), "service_id": clinic.consultation.pk}
    answer = Client().post(
        "/api/v1/courses", json.dumps(body), content_type="application/json", **auth_headers()
    )
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "service"
    assert not Course.objects.exists()


def test_a_score_is_given_only_by_its_scales_rater(clinic: Clinic) -> None:
    treated = visit(clinic)
    ada = make_staff("ada.quill", "provider", provider=clinic.ada)
    signed_in(treated.patient)  # the patient has an account of their own
    with pytest.raises(InputError, match="patient's to answer") as refused:
        charting.score_record(appointment=treated, scale="patient_satisfaction", value=1, actor=ada)
    assert refused.value.field == "scale"
    with pytest.raises(InputError, match="for the patient's clinicians"):
        charting.score_record(
            appointment=treated, scale="gais", value=2, actor=treated.patient.user
        )
    assert not treated.scores.exists()


@pytest.mark.parametrize("status", ["no_show", "checked_in"])
def test_a_visit_next_month_cannot_be_marked_before_its_day(clinic: Clinic, status: str) -> None:
    later = services.appointment_book(
        patient=make_patient(clinic),
        service=clinic.treatment,
        location=clinic.location,
        provider=clinic.ada,
        starts_at=timezone.now().astimezone(TZ).replace(hour=10) + timedelta(days=35),
    )
    desk = client_of(make_staff("desk.dana", "front_desk"))
    desk.post(reverse("desk:visit_status", args=[later.pk]), {"status": status})
    later.refresh_from_db()
    assert later.status == "booked"
    assert later.reservations.filter(active=True).count() == later.reservations.count() > 0
    with pytest.raises(BookingRefused) as refused:
        services.appointment_set_status(appointment=later, status=status, actor=None)
    assert refused.value.field == "status" and refused.value.code == "too_early"


def test_a_visit_can_be_checked_in_on_its_day(clinic: Clinic) -> None:
    import time_machine  # noqa: PLC0415

    booked = visit(clinic)
    with time_machine.travel(booked.starts_at - timedelta(hours=1), tick=False):
        services.appointment_set_status(appointment=booked, status="checked_in", actor=None)
    booked.refresh_from_db()
    assert booked.status == "checked_in"
