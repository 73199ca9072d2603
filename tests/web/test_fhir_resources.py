"""FHIR resources say what the records say, in FHIR R4's own value sets."""

from __future__ import annotations

import pytest
from django.utils import timezone

from microneedling.interop.fhir import resources as build
from microneedling.patients.models import Patient
from microneedling.scheduling.models import Course
from tests.web.conftest import Clinic, book_course, make_patient

pytestmark = pytest.mark.usefixtures("frozen_now")

#: CarePlan.status (http://hl7.org/fhir/R4/valueset-request-status.html).
CAREPLAN_STATUSES = {
    "draft",
    "active",
    "on-hold",
    "revoked",
    "completed",
    "entered-in-error",
    "unknown",
}


@pytest.mark.parametrize(
    ("ours", "fhir"),
    [
        ("active", "active"),
        ("complete", "completed"),
        ("cancelled", "revoked"),
        ("restarted", "revoked"),
    ],
)
def test_every_course_status_is_a_careplan_status_that_says_the_same(
    clinic: Clinic, ours: str, fhir: str
) -> None:
    course = book_course(clinic, make_patient(clinic))
    Course.objects.filter(pk=course.pk).update(status=ours)
    course.refresh_from_db()
    assert build.care_plan(course)["status"] == fhir
    assert {build.care_plan(course)["status"]} <= CAREPLAN_STATUSES


def test_every_course_status_is_mapped() -> None:
    assert set(Course.Status.values) == set(build.CAREPLAN_STATUS)


def test_a_patient_who_closed_their_account_is_not_active(clinic: Clinic) -> None:
    person = make_patient(clinic)
    assert build.patient(person)["active"] is True
    Patient.objects.filter(pk=person.pk).update(closed_at=timezone.now())
    person.refresh_from_db()
    assert build.patient(person)["active"] is False
