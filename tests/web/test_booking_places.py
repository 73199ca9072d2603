"""Where a booking may be made: staff book only at the locations they work at, and nobody
books at, or is offered slots at, a location that has closed.

Through every door a booking comes in by: the JSON API (one visit, a course, a course
search, availability) and FHIR (Slot search, Appointment create).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from django.test import Client

from microneedling.accounts.services import api_token_issue
from microneedling.directory.models import Location
from microneedling.patients.models import Patient
from microneedling.scheduling.models import Appointment, Course
from tests.web.conftest import (
    MONDAY,
    Clinic,
    build_clinic,
    local,
    make_patient,
    make_staff,
    make_superuser,
)

pytestmark = pytest.mark.usefixtures("frozen_now")

API = "/api/v1"
FHIR = "/fhir/R4"


def _caller(user: Any) -> Callable[..., Any]:
    """``call("GET", path)`` / ``call("POST", path, body)`` with ``user``'s bearer token."""
    client = Client()
    headers = {"HTTP_AUTHORIZATION": f"Bearer {api_token_issue(user=user)}"}

    def call(method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        if method == "POST":
            kind = "application/fhir+json" if path.startswith(FHIR) else "application/json"
            return client.post(path, data=json.dumps(body), content_type=kind, **headers)
        return client.get(path.replace("+", "%2B"), **headers)

    return call


@pytest.fixture
def lakeside(clinic: Clinic) -> Clinic:
    """A second location of the same organisation, with its own providers."""
    return build_clinic(name="Lakeside")


@pytest.fixture
def cleo(clinic: Clinic) -> Patient:
    """A new patient (no visits yet): every member of staff of the chain may book for her."""
    return make_patient(clinic)


def _visit_body(patient: Patient, place: Clinic) -> dict[str, Any]:
    return {
        "patient_id": patient.pk,
        "location_id": place.location.pk,
        "service_id": place.treatment.pk,
        "provider_id": place.ada.pk,
        "starts_at": local(MONDAY, 10).isoformat(),
    }


def _course_body(patient: Patient, place: Clinic) -> dict[str, Any]:
    return {
        "patient_id": patient.pk,
        "location_id": place.location.pk,
        "service_id": place.treatment.pk,
        "indications": ["acne_scars"],
        "first_session": MONDAY.isoformat(),
        "areas": ["face"],
    }


def _fhir_body(patient: Patient, place: Clinic) -> dict[str, Any]:
    start = int(local(MONDAY, 10).timestamp())
    slot = f"{place.ada.pk}-{place.location.pk}-{place.treatment.pk}-{start}"
    return {
        "resourceType": "Appointment",
        "status": "booked",
        "slot": [{"reference": f"Slot/{slot}"}],
        "participant": [{"actor": {"reference": f"Patient/{patient.pk}"}, "status": "accepted"}],
    }


def _refused_naming(response: Any, field: str) -> None:
    assert response.status_code == 422, response.content[:400]
    body = response.json()
    assert any(e["field"] == field for e in body["errors"]), body


# --- Staff book where they work ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("appointments", _visit_body),
        ("courses", _course_body),
        ("courses/search", _course_body),
    ],
)
def test_a_front_desk_cannot_book_at_a_location_they_do_not_work_at(
    clinic: Clinic, lakeside: Clinic, cleo: Patient, path: str, body: Any
) -> None:
    desk = _caller(make_staff("riverbend-desk", locations=[clinic.location]))
    _refused_naming(desk("POST", f"{API}/{path}", body(cleo, lakeside)), "location")
    assert not Appointment.objects.exists()
    assert not Course.objects.exists()
    # At the location they do work at, the same request goes through.
    accepted = desk("POST", f"{API}/{path}", body(cleo, clinic))
    assert accepted.status_code in (200, 201), accepted.content[:400]


def test_a_provider_books_where_they_have_hours_and_nowhere_else(
    clinic: Clinic, lakeside: Clinic, cleo: Patient
) -> None:
    ada = _caller(make_staff("ada", "provider", locations=[], provider=clinic.ada))
    _refused_naming(ada("POST", f"{API}/appointments", _visit_body(cleo, lakeside)), "location")
    accepted = ada("POST", f"{API}/appointments", _visit_body(cleo, clinic))
    assert accepted.status_code == 201, accepted.content[:400]


@pytest.mark.parametrize("who", ["chain_operator", "superuser"])
def test_a_chain_operator_and_a_superuser_book_at_any_location(
    clinic: Clinic, lakeside: Clinic, cleo: Patient, who: str
) -> None:
    user = make_superuser("root") if who == "superuser" else make_staff("op", who, locations=[])
    response = _caller(user)("POST", f"{API}/appointments", _visit_body(cleo, lakeside))
    assert response.status_code == 201, response.content[:400]


def test_a_fhir_booking_by_staff_at_a_location_they_do_not_work_at_is_refused(
    clinic: Clinic, lakeside: Clinic, cleo: Patient
) -> None:
    desk = _caller(make_staff("riverbend-desk", locations=[clinic.location]))
    response = desk("POST", f"{FHIR}/Appointment", _fhir_body(cleo, lakeside))
    assert response.status_code == 422, response.content[:400]
    issue = response.json()["issue"][0]
    assert "location" in issue["diagnostics"]
    assert not Appointment.objects.exists()
    accepted = desk("POST", f"{FHIR}/Appointment", _fhir_body(cleo, clinic))
    assert accepted.status_code == 201, accepted.content[:400]


# --- A closed location takes no bookings and offers no slots ----------------------------------


def _close(clinic: Clinic, *, closes_on: date | None = None) -> None:
    """The location closed for good (by an admin, with no date), or closing from a date."""
    status = Location.Status.CLOSED if closes_on is None else Location.Status.CLOSING
    Location.objects.filter(pk=clinic.location.pk).update(status=status, closes_on=closes_on)


@pytest.mark.parametrize("closes_on", [None, MONDAY], ids=["closed", "closing-by-then"])
@pytest.mark.parametrize(
    "door",
    [("appointments", _visit_body), ("courses", _course_body), ("courses/search", _course_body)],
    ids=["appointments", "courses", "courses/search"],
)
def test_a_closed_location_refuses_a_booking_naming_the_location(
    clinic: Clinic, cleo: Patient, staff_user: Any, door: tuple[str, Any], closes_on: date | None
) -> None:
    path, body = door
    _close(clinic, closes_on=closes_on)
    response = _caller(staff_user)("POST", f"{API}/{path}", body(cleo, clinic))
    _refused_naming(response, "location")
    assert response.json()["code"] == "location_closed"
    # Still open today, closing by then: the refusal says when, not that it "has closed".
    said = response.content.decode()
    if closes_on is None:
        assert "has closed" in said
    else:
        assert f"closes on {closes_on.isoformat()}" in said and "has closed" not in said
    assert not Appointment.objects.exists()


def test_a_location_closing_later_still_books_before_its_last_day(
    clinic: Clinic, cleo: Patient, staff_user: Any
) -> None:
    _close(clinic, closes_on=date(2027, 6, 1))
    response = _caller(staff_user)("POST", f"{API}/appointments", _visit_body(cleo, clinic))
    assert response.status_code == 201, response.content[:400]


def test_a_closed_location_lists_no_availability(clinic: Clinic, staff_user: Any) -> None:
    call = _caller(staff_user)
    query = (
        f"{API}/availability?location_id={clinic.location.pk}&service_id={clinic.treatment.pk}"
        "&start=2027-03-08&end=2027-03-09"
    )
    assert call("GET", query).json(), "an open location offers slots"
    _close(clinic)
    response = call("GET", query)
    assert response.status_code == 200, response.content[:400]
    assert response.json() == []


def test_a_closed_location_offers_no_fhir_slots_and_refuses_a_fhir_booking(
    clinic: Clinic, cleo: Patient, staff_user: Any
) -> None:
    call = _caller(staff_user)
    schedule = f"{clinic.ada.pk}-{clinic.location.pk}"
    search = f"{FHIR}/Slot?schedule=Schedule/{schedule}&start=ge2027-03-08"
    assert call("GET", search).json()["total"] > 0, "an open location offers slots"
    _close(clinic)
    found = call("GET", search).json()
    assert found["total"] == 0
    assert found["entry"] == []
    response = call("POST", f"{FHIR}/Appointment", _fhir_body(cleo, clinic))
    assert response.status_code == 422, response.content[:400]
    assert "closed" in response.json()["issue"][0]["diagnostics"]
