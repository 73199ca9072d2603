"""FHIR Slot search: ``start`` values that are instants bound the slots to those instants,
a date is a day at the location; ``status`` asks for free slots (the only ones offered);
``_summary=count`` answers how many match and no entries."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.test import Client

from microneedling.directory.models import Location
from tests.web.conftest import Clinic, make_patient

pytestmark = pytest.mark.usefixtures("frozen_now")

FHIR = "/fhir/R4"
MONDAY = date(2027, 3, 8)


@pytest.fixture
def fhir(staff_token: str) -> Callable[[str], Any]:
    """``fhir(query)``: a GET of ``/fhir/R4/<query>`` as the chain operator, its JSON body."""
    client = Client()

    def call(query: str) -> Any:
        response = client.get(
            f"{FHIR}/{query.replace('+', '%2B')}", HTTP_AUTHORIZATION=f"Bearer {staff_token}"
        )
        assert response.status_code in (200, 400), response.content[:400]
        return response

    return call


def _search(clinic: Clinic, query: str = "") -> str:
    return f"Slot?schedule=Schedule/{clinic.ada.pk}-{clinic.location.pk}{query}"


def _starts(body: dict[str, Any]) -> list[datetime]:
    return [datetime.fromisoformat(e["resource"]["start"]) for e in body["entry"]]


def test_instants_bound_the_slots_to_exactly_that_span(
    clinic: Clinic, fhir: Callable[[str], Any]
) -> None:
    body = fhir(
        _search(clinic, "&start=ge2027-03-08T20:00:00Z&start=lt2027-03-08T22:00:00Z&_count=100")
    ).json()
    starts = _starts(body)
    assert starts, "Ada has free time that afternoon"
    low, high = datetime(2027, 3, 8, 20, tzinfo=UTC), datetime(2027, 3, 8, 22, tzinfo=UTC)
    assert all(low <= s < high for s in starts), starts
    assert body["total"] == len(starts)


def test_an_exact_instant_finds_the_one_slot_starting_then(
    clinic: Clinic, fhir: Callable[[str], Any]
) -> None:
    body = fhir(_search(clinic, "&start=2027-03-08T16:00:00Z")).json()
    assert _starts(body) == [datetime(2027, 3, 8, 16, tzinfo=UTC)]


def test_instants_find_the_location_day_they_fall_on_far_from_utc(
    clinic: Clinic, fhir: Callable[[str], Any]
) -> None:
    # Fourteen hours ahead of UTC: Monday 10:00 there is Sunday 20:00 in UTC.
    Location.objects.filter(pk=clinic.location.pk).update(timezone="Pacific/Kiritimati")
    monday_ten = datetime.combine(MONDAY, time(10), tzinfo=ZoneInfo("Pacific/Kiritimati"))
    stamp = monday_ten.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = fhir(_search(clinic, f"&start={stamp}")).json()
    assert _starts(body) == [monday_ten]


def test_a_date_is_the_whole_day_at_the_location(
    clinic: Clinic, fhir: Callable[[str], Any]
) -> None:
    body = fhir(_search(clinic, "&start=2027-03-08&_count=100")).json()
    zone = ZoneInfo(clinic.location.timezone)
    days = {s.astimezone(zone).date() for s in _starts(body)}
    assert days == {MONDAY}


def test_slots_are_free_and_a_search_for_busy_ones_finds_none(
    clinic: Clinic, fhir: Callable[[str], Any]
) -> None:
    free = fhir(_search(clinic, "&start=2027-03-08&status=free")).json()
    assert free["total"] > 0
    assert {e["resource"]["status"] for e in free["entry"]} == {"free"}
    busy = fhir(_search(clinic, "&start=2027-03-08&status=busy")).json()
    assert busy["total"] == 0
    assert busy["entry"] == []


def test_a_slot_status_fhir_does_not_know_is_a_400_naming_the_parameter(
    clinic: Clinic, fhir: Callable[[str], Any]
) -> None:
    response = fhir(_search(clinic, "&status=vacant"))
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["status"]


@pytest.mark.parametrize("kind", ["Slot", "Patient"])
def test_summary_count_answers_the_total_and_no_entries(
    clinic: Clinic, fhir: Callable[[str], Any], kind: str
) -> None:
    make_patient(clinic)
    query = _search(clinic, "&start=2027-03-08") if kind == "Slot" else "Patient?"
    full = fhir(query).json()
    assert full["total"] > 0 and full["entry"]
    counted = fhir(f"{query}&_summary=count").json()
    assert counted["resourceType"] == "Bundle"
    assert counted["total"] == full["total"]
    assert counted.get("entry", []) == []


def test_a_summary_we_do_not_offer_is_a_400_naming_the_parameter(
    fhir: Callable[[str], Any],
) -> None:
    response = fhir("Patient?_summary=text")
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["_summary"]
