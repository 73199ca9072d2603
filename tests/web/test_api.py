"""The JSON API over real HTTP (live server): problems, idempotency, conflicts."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
import requests

from microneedling.accounts.services import api_token_issue
from microneedling.scheduling.models import Appointment, AppointmentRequest, Course
from tests.web.conftest import NOW, Clinic, build_clinic, local, make_patient, make_staff

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("frozen_now")]
MONDAY = date(2027, 3, 8)


@pytest.fixture
def http(live_server, staff_token):
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {staff_token}"
    session.base = f"{live_server.url}/api/v1"  # type: ignore[attr-defined]
    return session


def test_openapi_document_is_served(http) -> None:
    response = http.get(f"{http.base}/openapi.json", timeout=30)
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/api/v1/courses" in paths and "/api/v1/availability" in paths


def test_locations_near_a_zip_code_are_sorted_by_distance(http) -> None:
    build_clinic(name="Riverbend")
    far = build_clinic(name="Lakeside")
    far.location.latitude, far.location.longitude = 42.05, -87.68  # Evanston
    far.location.save()
    response = http.get(f"{http.base}/locations", params={"zip": "60601"}, timeout=30)
    names = [row["name"] for row in response.json()]
    assert names == ["Riverbend", "Lakeside"]
    assert response.json()[0]["distance_km"] < response.json()[1]["distance_km"]


def test_unknown_zip_is_a_problem_naming_the_field(http) -> None:
    response = http.get(f"{http.base}/locations", params={"zip": "00000"}, timeout=30)
    assert response.status_code == 422
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["errors"][0]["field"] == "zip"


def test_malformed_date_is_a_problem_naming_the_field(http) -> None:
    clinic = build_clinic()
    response = http.get(
        f"{http.base}/availability",
        timeout=30,
        params={
            "location_id": clinic.location.pk,
            "service_id": clinic.treatment.pk,
            "start": "2027-02-30",
            "end": "2027-03-02",
        },
    )
    assert response.status_code == 422
    assert response.headers["Content-Type"] == "application/problem+json"
    assert any(e["field"] == "start" for e in response.json()["errors"])


def test_availability_lists_bookable_starts(http) -> None:
    clinic = build_clinic()
    response = http.get(
        f"{http.base}/availability",
        timeout=30,
        params={
            "location_id": clinic.location.pk,
            "service_id": clinic.treatment.pk,
            "provider_id": clinic.ada.pk,
            "start": "2027-03-08",
            "end": "2027-03-08",
        },
    )
    slots = response.json()
    assert response.status_code == 200
    assert slots[0]["start"].startswith("2027-03-08T")
    assert {s["provider"] for s in slots} == {f"provider:{clinic.ada.pk}"}


def test_availability_offers_the_desk_the_times_inside_the_notice(http) -> None:
    clinic = build_clinic()
    params = {
        "location_id": clinic.location.pk,
        "service_id": clinic.treatment.pk,
        "start": NOW.date().isoformat(),
        "end": NOW.date().isoformat(),
    }
    url = f"{http.base}/availability"
    desk = http.get(url, params=params, timeout=30).json()  # the staff token
    online = requests.get(url, params=params, timeout=30).json()  # a visitor
    unknown = requests.get(
        url, params=params, timeout=30, headers={"Authorization": "Bearer not-a-token"}
    ).json()
    starts = [datetime.fromisoformat(s["start"]) for s in desk]
    assert starts and min(starts) >= NOW
    notice = timedelta(hours=12)
    assert any(start < NOW + notice for start in starts)  # today's walk-in times
    assert all(datetime.fromisoformat(s["start"]) >= NOW + notice for s in online)
    assert unknown == online


def test_retried_course_booking_with_the_same_key_books_once(http) -> None:
    clinic = build_clinic()
    patient = make_patient(clinic)
    body = {
        "patient_id": patient.pk,
        "location_id": clinic.location.pk,
        "service_id": clinic.treatment.pk,
        "indications": ["acne_scars"],
        "first_session": "2027-03-08",
        "areas": ["face"],
    }
    first = http.post(
        f"{http.base}/courses", json=body, timeout=60, headers={"Idempotency-Key": "course-cleo-1"}
    )
    again = http.post(
        f"{http.base}/courses", json=body, timeout=60, headers={"Idempotency-Key": "course-cleo-1"}
    )
    assert first.status_code == 201, first.text
    assert again.status_code == 201
    assert again.json() == first.json()
    assert Course.objects.count() == 1
    assert Appointment.objects.count() == 3


def test_same_key_with_a_different_body_is_refused(http) -> None:
    clinic = build_clinic()
    patient = make_patient(clinic)
    body = {
        "patient_id": patient.pk,
        "location_id": clinic.location.pk,
        "service_id": clinic.treatment.pk,
        "provider_id": clinic.ada.pk,
        "starts_at": local(MONDAY, 10).isoformat(),
    }
    assert (
        http.post(
            f"{http.base}/appointments", json=body, timeout=30, headers={"Idempotency-Key": "k1"}
        ).status_code
        == 201
    )
    changed = {**body, "starts_at": local(MONDAY, 14).isoformat()}
    response = http.post(
        f"{http.base}/appointments", json=changed, timeout=30, headers={"Idempotency-Key": "k1"}
    )
    assert response.status_code == 422
    assert Appointment.objects.count() == 1


def test_conflict_answers_409_naming_the_resource(http) -> None:
    clinic = build_clinic()
    body = {
        "location_id": clinic.location.pk,
        "service_id": clinic.treatment.pk,
        "provider_id": clinic.ada.pk,
        "starts_at": local(MONDAY, 10).isoformat(),
    }
    first = make_patient(clinic)
    second = make_patient(clinic, name="Dev Patel")
    assert (
        http.post(
            f"{http.base}/appointments", json={**body, "patient_id": first.pk}, timeout=30
        ).status_code
        == 201
    )
    response = http.post(
        f"{http.base}/appointments", json={**body, "patient_id": second.pk}, timeout=30
    )
    assert response.status_code == 409
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["resource"] == f"provider:{clinic.ada.pk}"


def test_patient_records_need_a_token(live_server) -> None:
    response = requests.post(f"{live_server.url}/api/v1/courses", json={}, timeout=30)
    assert response.status_code == 401
    assert response.headers["Content-Type"] == "application/problem+json"


def test_appointment_request_is_filed_and_listed_for_staff(http) -> None:
    clinic = build_clinic()
    patient = make_patient(clinic)
    body = {
        "patient_id": patient.pk,
        "location_id": clinic.location.pk,
        "service_id": clinic.consultation.pk,
        "preferred_dates": ["2027-03-10"],
        "note": "Mornings suit me",
    }
    created = http.post(f"{http.base}/appointment-requests", json=body, timeout=30)
    assert created.status_code == 201, created.text
    assert created.json()["reason"] == "patient_request"
    listed = http.get(f"{http.base}/appointment-requests", timeout=30).json()
    assert [r["id"] for r in listed] == [created.json()["id"]]


def test_appointment_request_with_a_bad_date_names_the_field(http) -> None:
    clinic = build_clinic()
    patient = make_patient(clinic)
    body = {
        "patient_id": patient.pk,
        "location_id": clinic.location.pk,
        "service_id": clinic.consultation.pk,
        "preferred_dates": ["2027-02-31"],
    }
    response = http.post(f"{http.base}/appointment-requests", json=body, timeout=30)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"].startswith("preferred_dates")


def test_screening_over_the_api_keeps_the_verdict(http) -> None:
    clinic = build_clinic()
    patient = make_patient(clinic)
    intake = {
        "planned_date": "2027-03-15",
        "birth_date": "1990-04-02",
        "fitzpatrick_type": 5,
        "treatment_areas": ["face"],
        "pregnant": False,
        "breastfeeding": False,
        "medications": [{"code": "ibuprofen"}],
    }
    # A provider records it (the chain operator's token may not: the verdict is clinical).
    provider = make_staff("ada.quill", "provider", provider=clinic.ada)
    response = http.post(
        f"{http.base}/screenings",
        timeout=30,
        json={"patient_id": patient.pk, "intake": intake},
        headers={"Authorization": f"Bearer {api_token_issue(user=provider)}"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["verdict"] == "eligible_with_precautions"
    assert body["med_holds"][0]["stop_on"] == "2027-03-08"
    assert patient.screenings.count() == 2


def test_screening_with_an_unknown_code_names_the_field(http) -> None:
    clinic = build_clinic()
    patient = make_patient(clinic)
    intake = {
        "planned_date": "2027-03-15",
        "birth_date": "1990-04-02",
        "fitzpatrick_type": 2,
        "treatment_areas": ["face"],
        "pregnant": False,
        "breastfeeding": False,
        "conditions": [{"code": "dragon_pox"}],
    }
    provider = make_staff("ada.quill", "provider", provider=clinic.ada)
    response = http.post(
        f"{http.base}/screenings",
        timeout=30,
        json={"patient_id": patient.pk, "intake": intake},
        headers={"Authorization": f"Bearer {api_token_issue(user=provider)}"},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "conditions.0.code"


def test_cancelling_a_course_session_previews_then_applies_its_replacement(http) -> None:
    clinic = build_clinic()
    body = {
        "patient_id": make_patient(clinic).pk,
        "location_id": clinic.location.pk,
        "service_id": clinic.treatment.pk,
        "indications": ["acne_scars"],
        "first_session": "2027-03-08",
        "areas": ["face"],
    }
    assert http.post(f"{http.base}/courses", json=body, timeout=60).status_code == 201
    second = Appointment.objects.get(course_session__number=2)
    url = f"{http.base}/appointments/{second.pk}/replace"

    preview = http.post(url, json={"status": "cancelled", "reason": "Away"}, timeout=60)
    assert preview.status_code == 200, preview.text
    assert preview.json()["applied"] is False
    first_change = preview.json()["sessions"][0]
    assert (first_change["number"], first_change["replaces_appointment_id"]) == (2, second.pk)
    assert first_change["appointment_id"] is None
    second.refresh_from_db()
    assert second.status == "booked"

    applied = http.post(url, json={"status": "cancelled", "apply": True}, timeout=60)
    assert applied.status_code == 200, applied.text
    replacement = applied.json()["sessions"][0]["appointment_id"]
    assert Appointment.objects.get(pk=replacement).status == "booked"
    second.refresh_from_db()
    assert second.status == "cancelled"


def test_replacing_with_an_unknown_status_is_a_problem_naming_the_field(http) -> None:
    clinic = build_clinic()
    appointment = Appointment.objects.create(
        patient=make_patient(clinic),
        service=clinic.treatment,
        location=clinic.location,
        provider=clinic.ada,
        starts_at=local(MONDAY, 10),
        ends_at=local(MONDAY, 11, 25),
    )
    response = http.post(
        f"{http.base}/appointments/{appointment.pk}/replace",
        json={"status": "completed"},
        timeout=30,
    )
    assert response.status_code == 422
    assert response.headers["Content-Type"] == "application/problem+json"
    assert "status" in response.json()["errors"][0]["field"]


def test_a_provider_id_no_database_can_hold_is_a_problem_naming_the_field(http) -> None:
    clinic = build_clinic()
    response = http.get(
        f"{http.base}/availability",
        timeout=30,
        params={
            "location_id": clinic.location.pk,
            "service_id": clinic.treatment.pk,
            "provider_id": 10**30,
            "start": "2027-03-08",
            "end": "2027-03-08",
        },
    )
    assert response.status_code == 422, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    assert any(e["field"] == "provider_id" for e in response.json()["errors"])


def test_a_request_preferring_a_day_no_clinic_books_is_a_problem_naming_it(http) -> None:
    clinic = build_clinic()
    body = {
        "patient_id": make_patient(clinic).pk,
        "location_id": clinic.location.pk,
        "service_id": clinic.consultation.pk,
        "preferred_dates": ["2027-03-10", "9999-12-31"],
    }
    response = http.post(f"{http.base}/appointment-requests", json=body, timeout=30)
    assert response.status_code == 422, response.text
    assert any("preferred_dates" in e["field"] for e in response.json()["errors"])
    assert not AppointmentRequest.objects.exists()


def _booking_body(patient_id: int, clinic: Clinic) -> dict[str, object]:
    """One body that a course, a visit and a request all accept (each reads its fields)."""
    return {
        "patient_id": patient_id,
        "location_id": clinic.location.pk,
        "service_id": clinic.treatment.pk,
        "indications": ["acne_scars"],
        "first_session": "2027-03-08",
        "provider_id": clinic.ada.pk,
        "starts_at": local(MONDAY, 10).isoformat(),
    }


@pytest.mark.parametrize(
    ("endpoint", "foreign", "field"),
    [
        ("courses", "location", "location"),
        ("appointments", "location", "location"),
        ("appointment-requests", "location", "location"),
        ("appointments", "provider", "provider"),
        ("appointment-requests", "provider", "provider"),
        ("courses", "preferred provider", "preferences.provider_id"),
    ],
)
def test_a_booking_cannot_reach_into_another_organisation(
    http, endpoint: str, foreign: str, field: str
) -> None:
    """Each organisation keeps its own patients and diaries: a booking or a request naming
    another organisation's location or provider is refused, naming the field, and nothing
    is written; the same body with only our own ids goes through."""
    ours = build_clinic()
    theirs = build_clinic(name="Lakeside", group="Lakeside Group")
    own = _booking_body(make_patient(ours).pk, ours)
    crossing = {
        "location": _booking_body(own["patient_id"], theirs),
        "provider": {**own, "provider_id": theirs.ada.pk},
        "preferred provider": {**own, "preferences": {"provider_id": theirs.ada.pk}},
    }[foreign]
    response = http.post(f"{http.base}/{endpoint}", json=crossing, timeout=30)
    assert response.status_code == 422, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["errors"][0]["field"] == field
    assert response.json()["code"] == "other_organization"
    assert not Course.objects.exists()
    assert not Appointment.objects.exists()
    assert not AppointmentRequest.objects.exists()
    accepted = http.post(f"{http.base}/{endpoint}", json=own, timeout=60)
    assert accepted.status_code == 201, accepted.text
