"""Appointment requests and course bookings over the JSON API: every refusal of the input is
a 422 problem naming the request's own field, never a 404 or a 500, and nothing is written."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from microneedling.scheduling.models import AppointmentRequest, Course
from tests.web.conftest import MONDAY, Clinic, make_patient

pytestmark = pytest.mark.usefixtures("frozen_now")

API = "/api/v1"


@pytest.fixture
def post(staff_token: str) -> Any:
    """``post(path, body)`` as the chain operator."""
    client = Client()

    def call(path: str, body: dict[str, Any]) -> Any:
        return client.post(
            f"{API}/{path}",
            data=json.dumps(body),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {staff_token}",
        )

    return call


def _fields(response: Any) -> list[str]:
    assert response.status_code == 422, response.content[:400]
    assert response["Content-Type"] == "application/problem+json"
    return [e["field"] for e in response.json()["errors"]]


def _request(clinic: Clinic, **changes: Any) -> dict[str, Any]:
    return {
        "patient_id": make_patient(clinic).pk,
        "location_id": clinic.location.pk,
        "service_id": clinic.consultation.pk,
        "preferred_dates": ["2027-03-10"],
        **changes,
    }


def test_a_request_preferring_a_day_already_past_is_a_problem_naming_that_date(
    clinic: Clinic, post: Any
) -> None:
    body = _request(clinic, preferred_dates=["2027-03-10", "2027-02-26"])
    assert _fields(post("appointment-requests", body)) == ["preferred_dates.1"]
    assert not AppointmentRequest.objects.exists()


def test_a_request_preferring_today_is_filed(clinic: Clinic, post: Any) -> None:
    response = post("appointment-requests", _request(clinic, preferred_dates=["2027-03-01"]))
    assert response.status_code == 201, response.content[:400]


def test_a_request_for_an_unknown_provider_is_a_problem_naming_the_field(
    clinic: Clinic, post: Any
) -> None:
    body = _request(clinic, provider_id=987654)
    assert _fields(post("appointment-requests", body)) == ["provider_id"]
    assert not AppointmentRequest.objects.exists()


def _course(clinic: Clinic, **changes: Any) -> dict[str, Any]:
    return {
        "patient_id": make_patient(clinic).pk,
        "location_id": clinic.location.pk,
        "service_id": clinic.treatment.pk,
        "indications": ["acne_scars"],
        "first_session": MONDAY.isoformat(),
        "areas": ["face"],
        **changes,
    }


@pytest.mark.parametrize("path", ["courses", "courses/search"])
def test_a_course_preferring_an_unknown_provider_is_a_problem_naming_the_field(
    clinic: Clinic, post: Any, path: str
) -> None:
    body = _course(clinic, preferences={"provider_id": 987654})
    assert _fields(post(path, body)) == ["preferences.provider_id"]
    assert not Course.objects.exists()


@pytest.mark.parametrize("path", ["courses", "courses/search"])
@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"indications": ["acne_scars", "freckles-and-more"]}, "indications.1"),
        ({"areas": ["face", "elbow-tip"]}, "areas.1"),
    ],
    ids=["indication", "area"],
)
def test_a_course_with_an_unknown_concern_or_area_names_the_requests_own_field(
    clinic: Clinic, post: Any, path: str, changes: dict[str, Any], field: str
) -> None:
    assert _fields(post(path, _course(clinic, **changes))) == [field]
    assert not Course.objects.exists()
