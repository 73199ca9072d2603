"""Bad and extreme input to the FHIR API: every answer is a FHIR resource, never a 500.

Dates at the edges of the calendar (0001-01-01, 9999-12-31, with times and offsets that
carry them past either edge) are real FHIR dates: a search with them answers a Bundle, with
the records it covers; a Slot search there finds none. Slot ids that start past the booking
horizon (up to past the calendar's end) name no slot: a 404 on a read, a 400 naming
``Appointment.slot`` on a booking. An Appointment body that is not UTF-8 JSON, or has a
field of the wrong JSON shape, is a 400 naming ``body`` or the field.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.core.cache import cache
from django.test import Client

from microneedling.directory.models import Location, Service
from microneedling.directory.policy import booking_rules
from microneedling.patients.models import Patient, Screening
from microneedling.scheduling.models import Appointment
from tests.web.conftest import ZONE, Clinic, book_course, make_patient

pytestmark = pytest.mark.usefixtures("frozen_now")

FHIR = "/fhir/R4"
HUGE_STAMP = "999999999999999999"  # 18 digits: a record id by shape, no calendar's second
#: Slot starts (seconds since the epoch) far past any booking horizon: 10^18, the last second
#: of 9999, its last day, the last hour of 9998, and a day in 5138.
FAR_OFF = [HUGE_STAMP, "253402300799", "253402214400", "253370761200", "99999999999"]


@pytest.fixture
def cleo(clinic: Clinic) -> Patient:
    patient = make_patient(clinic)
    book_course(clinic, patient)
    return patient


@pytest.fixture
def fhir(staff_token: str) -> Callable[..., Any]:
    """``fhir("GET", path)`` / ``fhir("POST", path, body)`` as the chain operator."""
    client = Client()

    def call(
        method: str, path: str, body: bytes | None = None, kind: str = "application/fhir+json"
    ) -> Any:
        headers = {"HTTP_AUTHORIZATION": f"Bearer {staff_token}"}
        if method == "POST":
            return client.post(f"{FHIR}/{path}", data=body, content_type=kind, **headers)
        # A client escapes the "+" of an offset, as a query string's "+" reads as a space.
        return client.get(f"{FHIR}/{path.replace('+', '%2B')}", **headers)

    return call


def _schedule(clinic: Clinic) -> str:
    return f"{clinic.ada.pk}-{clinic.location.pk}"


def _slot(clinic: Clinic, stamp: str) -> str:
    return f"{_schedule(clinic)}-{clinic.treatment.pk}-{stamp}"


def _refusal(response: Any, status: int, where: str | None) -> dict[str, Any]:
    assert response.status_code == status, response.content[:300]
    body = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    issue = body["issue"][0]
    assert issue["diagnostics"]
    if where is not None:
        assert issue["expression"] == [where], body
    return issue


def _bundle(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.content[:300]
    body = response.json()
    assert body["resourceType"] == "Bundle" and body["type"] == "searchset", body
    return body


# --- Dates at the edges of the calendar ------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "Appointment?date=9999-12-31",
        "Appointment?date=9999-12-31T23:59:59Z",
        "Appointment?date=0001-01-01T00:00:00+05:00",
        "Appointment?date=9999",
        "Appointment?date=9999-12",
        "Appointment?date=sa9999-12-31T23:59:59Z",
        "Appointment?date=gt9999-12-31",
        "Appointment?date=9999-12-31T23:00:00-05:00",
        "Appointment?date=lt0001-01-01T00:00:00+14:00",
        "Appointment?date=eb0001-01-01",
        "Appointment?date=ne9999-12-31T23:59:59.999999Z",
        "Patient?birthdate=le9999-12-31",
        "Patient?birthdate=9999-12-31",
        "Patient?birthdate=0001-01-01T00:00:00+05:00",
        "CarePlan?date=9999-12-31",
        "Procedure?date=9999-12-31T23:59:59Z",
        "QuestionnaireResponse?authored=0001-01-01T00:00:00+05:00",
        "Observation?date=9999",
        "AdverseEvent?date=le9999-12-31",
        "Consent?date=ge0001-01-01T00:00:00+05:00",
    ],
)
def test_a_search_at_the_edge_of_the_calendar_answers_a_bundle(
    cleo: Patient, fhir: Callable[..., Any], path: str
) -> None:
    _bundle(fhir("GET", path))


@pytest.mark.parametrize(
    ("query", "everything"),
    [
        ("date=ge0001-01-01T00:00:00+05:00", True),
        ("date=ge0001-01-01", True),
        ("date=le9999-12-31T23:59:59Z", True),
        ("date=lt9999-12-31T23:00:00-05:00", True),
        ("date=le9999", True),
        ("date=0001-01-01T00:00:00+05:00", False),
        ("date=9999-12-31", False),
        ("date=gt9999-12-31", False),
        ("date=ge9999-12-31T23:00:00-05:00", False),
        ("date=lt0001-01-01T00:00:00+05:00", False),
    ],
)
def test_an_edge_date_covers_what_it_says(
    cleo: Patient, fhir: Callable[..., Any], query: str, everything: bool
) -> None:
    booked = Appointment.objects.filter(patient=cleo).count()
    assert booked
    total = _bundle(fhir("GET", f"Appointment?{query}"))["total"]
    assert total == (booked if everything else 0)


def test_a_birthdate_up_to_the_last_day_of_9999_finds_the_patient(
    cleo: Patient, fhir: Callable[..., Any]
) -> None:
    found = _bundle(fhir("GET", "Patient?birthdate=le9999-12-31"))
    assert found["total"] == 1
    assert found["entry"][0]["resource"]["id"] == str(cleo.pk)


@pytest.mark.parametrize(
    ("query", "where"),
    [
        ("date=0000-01-01", "date"),
        ("date=0000", "date"),
        ("date=10000-01-01", "date"),
        ("date=9999-13", "date"),
        ("date=9999-12-32", "date"),
        ("date=0000-12-31T23:59:59Z", "date"),
        ("date=9999-12-31T24:00:00Z", "date"),
        ("date=9999-12-31T23:59:59", "date"),
    ],
)
def test_a_date_no_calendar_holds_is_a_400_naming_the_parameter(
    cleo: Patient, fhir: Callable[..., Any], query: str, where: str
) -> None:
    _refusal(fhir("GET", f"Appointment?{query}"), 400, where)


# --- Slots -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "start",
    [
        ["9999-12-31"],
        ["ge0001-01-01", "le0001-01-05"],
        ["ge9999-12-31"],
        ["ge9999-12-20", "le9999-12-31"],
        ["9999-12-31T23:59:59Z"],
        ["9999-12-31T23:00:00-05:00"],
        ["0001-01-01T00:00:00+05:00"],
        ["ge0001-01-01T00:00:00+05:00", "le0001-01-01T10:00:00+05:00"],
    ],
)
def test_slots_at_the_edge_of_the_calendar_are_an_empty_bundle(
    clinic: Clinic, fhir: Callable[..., Any], start: list[str]
) -> None:
    query = "&".join(f"start={value}" for value in start)
    found = _bundle(fhir("GET", f"Slot?schedule=Schedule/{_schedule(clinic)}&{query}"))
    assert found["total"] == 0


def test_slots_that_end_before_the_calendar_begins_are_refused(
    clinic: Clinic, fhir: Callable[..., Any]
) -> None:
    response = fhir("GET", f"Slot?schedule=Schedule/{_schedule(clinic)}&start=le0001-01-01")
    _refusal(response, 400, "start")


def test_slots_near_now_are_still_offered(clinic: Clinic, fhir: Callable[..., Any]) -> None:
    found = _bundle(
        fhir("GET", f"Slot?schedule=Schedule/{_schedule(clinic)}&start=ge2027-03-08&_count=1")
    )
    assert found["total"] > 0
    slot_id = found["entry"][0]["resource"]["id"]
    assert fhir("GET", f"Slot/{slot_id}").status_code == 200


@pytest.mark.parametrize("stamp", [*FAR_OFF, "0"])
def test_reading_a_slot_whose_time_is_out_of_reach_is_a_404(
    clinic: Clinic, fhir: Callable[..., Any], stamp: str
) -> None:
    _refusal(fhir("GET", f"Slot/{_slot(clinic, stamp)}"), 404, None)


# --- Booking with a body of the wrong shape ----------------------------------------------------


def _appointment(clinic: Clinic, patient: Patient, **override: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Appointment",
        "status": "booked",
        "slot": [{"reference": f"Slot/{_slot(clinic, '1804518000')}"}],
        "participant": [{"actor": {"reference": f"Patient/{patient.pk}"}, "status": "accepted"}],
    }
    body.update(override)
    return body


@pytest.mark.parametrize(
    ("override", "where"),
    [
        pytest.param(
            {"participant": [{"actor": "Patient/1"}]},
            "Appointment.participant",
            id="actor-a-string",
        ),
        pytest.param(
            {"participant": [{"actor": None}]},
            "Appointment.participant",
            id="actor-null-no-patient",
        ),
        pytest.param(
            {"participant": [{"actor": {"reference": 7}}]},
            "Appointment.participant",
            id="reference-a-number",
        ),
        pytest.param(
            {"participant": [{"actor": {"reference": ["Patient/1"]}}]},
            "Appointment.participant",
            id="reference-a-list",
        ),
        pytest.param(
            {"participant": [None, 3, "Patient/1"]},
            "Appointment.participant",
            id="participants-not-objects",
        ),
        pytest.param({"participant": 5}, "Appointment.participant", id="participant-a-number"),
        pytest.param(
            {"participant": "Patient/1"}, "Appointment.participant", id="participant-a-string"
        ),
        pytest.param(
            {"participant": {"actor": {"reference": "Patient/1"}}},
            "Appointment.participant",
            id="participant-an-object",
        ),
        pytest.param({"slot": 5}, "Appointment.slot", id="slot-a-number"),
        pytest.param({"slot": True}, "Appointment.slot", id="slot-true"),
        pytest.param({"slot": "Slot/1-1-1-1"}, "Appointment.slot", id="slot-a-string"),
        pytest.param(
            {"slot": {"reference": "Slot/1-1-1-1"}}, "Appointment.slot", id="slot-an-object"
        ),
        pytest.param(
            {"slot": [{"reference": 5}]}, "Appointment.slot", id="slot-reference-a-number"
        ),
        pytest.param(
            {"slot": [{"reference": {"reference": "Slot/1"}}]},
            "Appointment.slot",
            id="slot-reference-an-object",
        ),
        pytest.param({"slot": [[]]}, "Appointment.slot", id="slot-a-list-of-lists"),
        pytest.param({"resourceType": ["Appointment"]}, "resourceType", id="resource-type-a-list"),
    ],
)
def test_an_appointment_of_the_wrong_shape_is_a_400_naming_the_field(
    clinic: Clinic, cleo: Patient, fhir: Callable[..., Any], override: dict[str, Any], where: str
) -> None:
    body = json.dumps(_appointment(clinic, cleo, **override)).encode()
    _refusal(fhir("POST", "Appointment", body), 400, where)


@pytest.mark.parametrize(
    "body",
    [
        b"\xff{}",
        b"\xef\xbb\xbf\xff{}",
        b'{"resourceType": "Appointment", "slot": "\xc3\x28"}',
        b'{"resourceType": "Appointment", "x": "\xed\xa0\x80"}',
        b"[" * 100_000,
        b'{"a":' * 100_000,
        b"",
        b"   ",
        b"null",
        b"[]",
        b'"Appointment"',
        b"NaN",
    ],
)
def test_a_body_that_is_not_a_json_object_is_a_400(fhir: Callable[..., Any], body: bytes) -> None:
    issue = _refusal(fhir("POST", "Appointment", body), 400, None)
    assert issue["expression"][0] in ("body", "resourceType")


@pytest.mark.parametrize("stamp", FAR_OFF)
def test_booking_a_slot_past_the_booking_horizon_is_a_400_naming_the_slot(
    clinic: Clinic, cleo: Patient, fhir: Callable[..., Any], stamp: str
) -> None:
    body = _appointment(clinic, cleo, slot=[{"reference": f"Slot/{_slot(clinic, stamp)}"}])
    issue = _refusal(fhir("POST", "Appointment", json.dumps(body).encode()), 400, None)
    assert issue["expression"] == ["Appointment.slot"]
    assert "booking horizon" in issue["diagnostics"]


def test_a_slot_just_past_the_booking_horizon_does_not_exist(
    clinic: Clinic, fhir: Callable[..., Any], frozen_now: datetime
) -> None:
    horizon = booking_rules(clinic.org.pk).horizon_days
    past = frozen_now.astimezone(UTC) + timedelta(days=horizon, minutes=1)
    issue = _refusal(fhir("GET", f"Slot/{_slot(clinic, str(int(past.timestamp())))}"), 404, None)
    assert "booking horizon" in issue["diagnostics"]


def test_booking_a_slot_in_the_past_is_still_refused_by_the_booking_rules(
    clinic: Clinic, cleo: Patient, fhir: Callable[..., Any]
) -> None:
    body = _appointment(clinic, cleo, slot=[{"reference": f"Slot/{_slot(clinic, '0')}"}])
    response = fhir("POST", "Appointment", json.dumps(body).encode())
    assert response.status_code in (409, 422), response.content[:300]
    assert response.json()["resourceType"] == "OperationOutcome"


def test_a_body_larger_than_the_server_takes_is_a_413(
    fhir: Callable[..., Any], settings: Any
) -> None:
    # Sent as plain text: a FHIR JSON body that large is refused by RefuseNulMiddleware,
    # which reads every JSON body first (a 400 of Django's own, not an OperationOutcome).
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({"resourceType": "Appointment", "note": "x" * 2000}).encode()
    _refusal(fhir("POST", "Appointment", body, "text/plain"), 413, "body")


def test_a_well_formed_appointment_still_books(clinic: Clinic, fhir: Callable[..., Any]) -> None:
    patient = make_patient(clinic)
    found = _bundle(
        fhir("GET", f"Slot?schedule=Schedule/{_schedule(clinic)}&start=ge2027-03-08&_count=1")
    )
    slot_id = found["entry"][0]["resource"]["id"]
    body = _appointment(clinic, patient, slot=[{"reference": f"Slot/{slot_id}"}])
    response = fhir("POST", "Appointment", json.dumps(body).encode())
    assert response.status_code == 201, response.content[:300]
    assert Appointment.objects.filter(patient=patient).count() == 1


def test_an_export_id_too_large_for_a_key_is_a_404(fhir: Callable[..., Any]) -> None:
    _refusal(fhir("GET", "$export-status/" + "9" * 30), 404, None)
    _refusal(fhir("GET", "$export-file/" + "9" * 30 + "/Patient.ndjson"), 404, None)


def test_a_booking_is_screened_for_the_day_it_falls_on_at_the_location(
    clinic: Clinic, fhir: Callable[..., Any]
) -> None:
    # A location fourteen hours ahead of UTC: its Monday mornings are Sunday in UTC.
    Location.objects.filter(pk=clinic.location.pk).update(timezone="Pacific/Kiritimati")
    patient = make_patient(clinic)
    monday = date(2027, 3, 8)
    Screening.objects.filter(patient=patient).update(
        verdict=Screening.Verdict.DEFERRED, deferred_until=monday
    )
    start = datetime.combine(monday, time(10), tzinfo=ZoneInfo("Pacific/Kiritimati"))
    assert start.astimezone(UTC).date() == monday - timedelta(days=1)
    stamp = str(int(start.timestamp()))
    body = _appointment(clinic, patient, slot=[{"reference": f"Slot/{_slot(clinic, stamp)}"}])
    response = fhir("POST", "Appointment", json.dumps(body).encode())
    # Treatment may start on Monday, and Monday it is where the visit takes place.
    assert response.status_code == 201, response.content[:300]
    visit = Appointment.objects.get(patient=patient)
    assert visit.starts_at == start


def test_booking_a_slot_of_a_retired_service_is_refused_naming_the_slot(
    clinic: Clinic, fhir: Callable[..., Any]
) -> None:
    patient = make_patient(clinic)
    stamp = str(
        int(datetime.combine(date(2027, 3, 8), time(10), tzinfo=ZoneInfo(ZONE)).timestamp())
    )
    Service.objects.filter(pk=clinic.treatment.pk).update(active=False)
    body = _appointment(clinic, patient, slot=[{"reference": f"Slot/{_slot(clinic, stamp)}"}])
    issue = _refusal(fhir("POST", "Appointment", json.dumps(body).encode()), 400, None)
    assert issue["expression"] == ["Appointment.slot"]
    assert "no longer offered" in issue["diagnostics"]
    assert not Appointment.objects.filter(patient=patient).exists()
    _refusal(fhir("GET", f"Slot/{_slot(clinic, stamp)}"), 404, None)


def test_booking_through_fhir_is_rate_limited_like_the_json_api(
    clinic: Clinic, staff_token: str, settings: Any
) -> None:
    settings.MICRONEEDLING = {**settings.MICRONEEDLING, "RATE_LIMITS": {"booking": 2}}
    cache.clear()
    body = json.dumps(_appointment(clinic, make_patient(clinic))).encode()
    client = Client(HTTP_AUTHORIZATION=f"Bearer {staff_token}", REMOTE_ADDR="10.7.7.8")

    def book() -> Any:
        return client.post(f"{FHIR}/Appointment", data=body, content_type="application/fhir+json")

    assert [book().status_code for _ in range(2)] == [201, 409]
    refused = book()
    _refusal(refused, 429, None)
    assert refused["Retry-After"] == "70"
    assert refused.json()["issue"][0]["code"] == "throttled"


def test_a_consultation_is_booked_through_fhir_for_a_patient_not_cleared_for_treatment(
    clinic: Clinic, fhir: Callable[..., Any]
) -> None:
    from tests.web.conftest import MONDAY, local  # noqa: PLC0415

    pregnant = make_patient(clinic, pregnant=True)
    stamp = str(int(local(MONDAY, 10).timestamp()))

    def book(service: Service) -> Any:
        slot = f"{_schedule(clinic)}-{service.pk}-{stamp}"
        body = _appointment(clinic, pregnant, slot=[{"reference": f"Slot/{slot}"}])
        return fhir("POST", "Appointment", json.dumps(body).encode())

    # Microneedling is refused, as the screening says; the talk it suggests instead is not.
    issue = _refusal(book(clinic.treatment), 422, "Appointment")
    assert "unsuitable" in issue["diagnostics"]
    assert not Appointment.objects.filter(patient=pregnant).exists()
    booked = book(clinic.consultation)
    assert booked.status_code == 201, booked.content[:300]
    assert Appointment.objects.get(patient=pregnant).service_id == clinic.consultation.pk
