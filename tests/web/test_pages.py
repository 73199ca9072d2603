"""The public and patient pages through Django's test client (both database engines)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from microneedling.core.knowledge import load_pack
from microneedling.directory.models import Location
from microneedling.patients.models import Patient, Screening
from microneedling.patients.services import patient_register
from tests.web.conftest import NOW, Clinic, build_clinic, sign_up_data

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen_now")]
PLANNED = (NOW + timedelta(days=14)).date()
#: A test account's password (not a secret).
PASSWORD = "a-long-harbour-walk"  # noqa: S105


def intake_data(**changes: object) -> dict[str, object]:
    data: dict[str, object] = {
        "planned_date": PLANNED.isoformat(),
        "treatment_areas": ["face"],
        "birth_date": "1990-05-17",
        "fitzpatrick_type": "2",
    }
    for code in load_pack().codes["medications"]:
        data[f"medicine_{code}"] = "no"
    return {**data, **changes}


@pytest.fixture
def patient_client(clinic: Clinic) -> tuple[Client, Patient]:
    patient = patient_register(
        email="dana.reyes@example.org",
        password=PASSWORD,
        first_name="Dana",
        last_name="Reyes",
        birth_date=date(1990, 5, 17),
        location=clinic.location,
    )
    client = Client()
    client.force_login(patient.user)
    return client, patient


def test_the_treatment_page_is_written_from_the_pack_without_disputed_claims(client) -> None:
    response = client.get(reverse("web:treatment"))
    assert response.status_code == 200
    pack = load_pack()
    text = response.content.decode()
    for fact in ("fact.definition", "fact.comfort", "fact.professional_setting"):
        message = next(f.message for f in pack.data.facts if f.id == fact)
        assert message.replace("'", "&#x27;") in text
    for symptom in pack.data.symptoms:
        assert symptom.name in text
    assert "400%" not in text
    assert "0479T" not in text  # billing codes are not patient information


def test_the_chain_wide_treatment_page_says_it_gives_the_default_positions(client) -> None:
    text = client.get(reverse("web:treatment")).content.decode()
    pack = load_pack()
    assert "gives our default answer" in text
    assert "the care page for your own visit always shows what your clinic chose" in text
    for dispute in pack.disputes.values():
        assert dispute.question.replace("'", "&#x27;") in text
    downtime = next(c for c in pack.care_items() if c.id == "care.after.downtime")
    assert downtime.message in text  # the default downtime answer, in the questions


def test_the_chain_wide_home_page_says_its_courses_are_the_defaults(client) -> None:
    text = client.get(reverse("web:home")).content.decode()
    assert "These are our default courses for every clinic of the network" in text


def test_locations_near_a_zip_code_come_nearest_first(client) -> None:
    build_clinic(name="Riverbend")
    far = build_clinic(name="Lakeside")
    far.location.latitude, far.location.longitude = 42.05, -87.68
    far.location.save()
    response = client.get(reverse("web:locations"), {"q": "60601"})
    text = response.content.decode()
    assert text.index("Riverbend") < text.index("Lakeside")


def test_an_unknown_zip_code_is_explained_beside_the_field(client) -> None:
    response = client.get(reverse("web:locations"), {"q": "00000"})
    assert response.status_code == 200
    assert 'id="id_q_error"' in response.content.decode()
    assert "unknown ZIP code" in response.content.decode()


@pytest.mark.parametrize("typed", ["²²²²²", "١٢٣٤٥", "１２３４５"])
def test_a_zip_code_of_other_scripts_digits_is_refused_by_field_not_crashed_on(
    client, typed: str
) -> None:  # type: ignore[no-untyped-def]
    # Python's isdigit() takes these; the ZIP table's native code cannot slice them.
    api = Client(raise_request_exception=False).get("/api/v1/locations", {"zip": typed})
    assert api.status_code == 422 and api.json()["errors"][0]["field"] == "zip"
    page = Client(raise_request_exception=False).get(reverse("web:locations"), {"q": typed})
    assert page.status_code == 200 and 'id="id_q_error"' in page.content.decode()


@pytest.mark.parametrize("typed", ["chicago", "CHICAGO", " Chicago "])
def test_a_city_is_found_in_any_case(client, typed: str) -> None:  # type: ignore[no-untyped-def]
    build_clinic(name="Riverbend")
    api = client.get("/api/v1/locations", {"city": typed})
    assert api.status_code == 200, api.content[:200]
    page = client.get(reverse("web:locations"), {"q": typed}).content.decode()
    assert "no such city" not in page and "Riverbend" in page
    assert client.get("/api/v1/locations", {"city": "chicago", "region": "ny"}).status_code == 422


def test_a_closed_location_says_where_its_patients_go(client, clinic: Clinic) -> None:
    successor = build_clinic(name="Lakeside").location
    clinic.location.status = Location.Status.CLOSED
    clinic.location.successor = successor
    clinic.location.save()
    response = client.get(reverse("web:location", args=[clinic.location.slug]))
    text = response.content.decode()
    assert "has closed" in text
    assert reverse("web:location", args=[successor.slug]) in text


def test_signing_up_mails_a_link_that_opens_the_account_then_asks_the_questions(
    client, clinic: Clinic, mailoutbox
) -> None:
    response = client.post(reverse("portal:sign_up"), sign_up_data(clinic))
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:sign_up_sent")
    patient = Patient.objects.get(email="dana.reyes@example.org")
    assert patient.user is not None and patient.organization_id == clinic.org.pk
    assert not patient.user.is_active
    link = next(line for line in mailoutbox[0].body.splitlines() if "/sign-up/" in line)
    path = link.split("testserver", 1)[1]
    assert client.get(path).status_code == 200  # a button, not yet the account
    opened = client.post(path)
    assert opened["Location"] == reverse("portal:intake")
    assert client.get(reverse("portal:intake")).status_code == 200
    assert client.post(path).status_code == 400  # spent


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("email", "not-an-address", "valid email"),
        ("password", "12345678", "entirely numeric"),
        ("birth_date", "2099-01-01", "in the past"),
        ("birth_date", "0001-01-01", "between 1900 and 2199"),
        ("location", "999999", "valid choice"),
        # A real address longer than the sign-in name it becomes (PostgreSQL refused it: 500).
        ("email", "a" * 64 + "@" + ("b" * 63 + ".") * 2 + "com", "at most 150 characters"),
    ],
)
def test_a_bad_sign_up_names_the_field_and_saves_nothing(
    client, clinic: Clinic, field: str, value: str, problem: str
) -> None:
    response = client.post(reverse("portal:sign_up"), sign_up_data(clinic, **{field: value}))
    assert response.status_code == 200
    text = response.content.decode()
    assert f'id="id_{field}_error"' in text
    assert problem in text
    assert not get_user_model().objects.exists()
    assert not Patient.objects.exists()


def test_a_healthy_intake_is_screened_eligible_and_explained(patient_client) -> None:
    client, patient = patient_client
    response = client.post(reverse("portal:intake"), intake_data())
    screening = Screening.objects.get(patient=patient)
    assert response["Location"] == reverse("portal:screening", args=[screening.pk])
    assert screening.verdict == "eligible"
    page = client.get(response["Location"]).content.decode()
    assert "you can book your course" in page


def test_pregnancy_is_not_eligible_and_says_why(patient_client) -> None:
    client, patient = patient_client
    response = client.post(reverse("portal:intake"), intake_data(pregnant="on"))
    page = client.get(response["Location"]).content.decode()
    assert Screening.objects.get(patient=patient).verdict == "not_eligible"
    assert "not right for you at the moment" in page
    assert "<h3>Why</h3>" in page


def test_of_two_screenings_saved_in_one_instant_the_later_one_is_current(
    patient_client,
) -> None:
    from microneedling.scheduling.services import BookingRefused, booking_gate  # noqa: PLC0415

    client, patient = patient_client
    client.post(reverse("portal:intake"), intake_data())
    client.post(reverse("portal:intake"), intake_data(pregnant="on"))
    first, second = Screening.objects.filter(patient=patient).order_by("pk")
    # The clock is frozen: both rows carry the same timestamp, so only the id can tell.
    assert first.created_at == second.created_at
    page = client.get(reverse("portal:home")).content.decode()
    assert "not right for you at the moment" in page
    assert "you can book your course" not in page
    assert patient.screenings.newest_first().first() == second
    with pytest.raises(BookingRefused, match="unsuitable"):
        booking_gate(patient, PLANNED)


def test_a_stopped_medicine_needs_its_last_dose_and_nothing_is_saved(patient_client) -> None:
    client, patient = patient_client
    response = client.post(reverse("portal:intake"), intake_data(medicine_isotretinoin="stopped"))
    assert response.status_code == 200
    assert 'id="id_medicine_isotretinoin_last_dose_error"' in response.content.decode()
    assert not Screening.objects.filter(patient=patient).exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("planned_date", "9999-12-31"),
        ("planned_date", "2300-01-01"),
        ("birth_date", "0001-01-01"),
        ("procedure_botox", "1899-12-31"),
        ("medicine_isotretinoin_last_dose", "0001-01-01"),
    ],
)
def test_an_impossible_intake_date_is_named_beside_its_field_and_nothing_is_saved(
    patient_client, field: str, value: str
) -> None:
    client, patient = patient_client
    answers = intake_data(**{field: value})
    if field.startswith("medicine_"):
        answers["medicine_isotretinoin"] = "stopped"
    response = client.post(reverse("portal:intake"), answers)
    assert response.status_code == 200
    page = response.content.decode()
    assert f'id="id_{field}_error"' in page and "between 1900 and 2199" in page
    assert not Screening.objects.filter(patient=patient).exists()


def test_a_recent_isotretinoin_course_defers_until_the_waiting_period_ends(
    patient_client,
) -> None:
    client, patient = patient_client
    last_dose = PLANNED - timedelta(days=30)
    client.post(
        reverse("portal:intake"),
        intake_data(
            medicine_isotretinoin="stopped",
            medicine_isotretinoin_last_dose=last_dose.isoformat(),
        ),
    )
    screening = Screening.objects.get(patient=patient)
    assert screening.verdict == "deferred"
    assert screening.deferred_until is not None and screening.deferred_until > PLANNED


def test_a_patient_cannot_open_another_patients_screening(patient_client, clinic: Clinic) -> None:
    client, _ = patient_client
    other = patient_register(
        email="eli.park@example.org",
        password=PASSWORD,
        first_name="Eli",
        last_name="Park",
        birth_date=date(1985, 1, 2),
        location=clinic.location,
    )
    other_client = Client()
    other_client.force_login(other.user)
    other_client.post(reverse("portal:intake"), intake_data())
    theirs = Screening.objects.get(patient=other)
    assert client.get(reverse("portal:screening", args=[theirs.pk])).status_code == 404


def test_the_patient_pages_need_a_sign_in(client) -> None:
    response = client.get(reverse("portal:intake"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("portal:sign_in"))
