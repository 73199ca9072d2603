"""Where a provider works is where their hours are still in force: a schedule that ended
gives them no location to book at, and FHIR shows no PractitionerRole or Schedule for it."""

from __future__ import annotations

from datetime import date, time
from typing import Any

import pytest
from django.test import Client

from microneedling.accounts.access import location_ids, providers_usable
from microneedling.accounts.services import api_token_issue
from microneedling.directory.models import ProviderSchedule
from tests.web.conftest import Clinic, build_clinic, make_staff

pytestmark = pytest.mark.usefixtures("frozen_now")

FHIR = "/fhir/R4"
#: The last day of Ada's hours at Lakeside: before the tests' "now" (2027-03-01).
ENDED = date(2027, 2, 1)


@pytest.fixture
def lakeside(clinic: Clinic) -> Clinic:
    """A second location where Ada of Riverbend worked until ENDED (Mondays)."""
    other = build_clinic(name="Lakeside")
    ProviderSchedule.objects.create(
        provider=clinic.ada,
        location=other.location,
        weekday=0,
        starts=time(9),
        ends=time(17),
        valid_from=date(2026, 1, 1),
        valid_until=ENDED,
    )
    return other


def test_a_provider_no_longer_works_where_their_hours_ended(
    clinic: Clinic, lakeside: Clinic
) -> None:
    ada = make_staff("ada", "provider", locations=[], provider=clinic.ada)
    assert location_ids(ada) == {clinic.location.pk}


def test_a_front_desk_schedules_only_providers_whose_hours_there_are_in_force(
    clinic: Clinic, lakeside: Clinic
) -> None:
    desk = make_staff("lakeside-desk", locations=[lakeside.location])
    assert set(providers_usable(desk)) == {lakeside.ada, lakeside.ben}


def test_hours_still_to_come_count_as_in_force(clinic: Clinic, lakeside: Clinic) -> None:
    ProviderSchedule.objects.filter(location=lakeside.location, provider=clinic.ada).update(
        valid_from=date(2027, 6, 1), valid_until=None
    )
    ada = make_staff("ada", "provider", locations=[], provider=clinic.ada)
    assert location_ids(ada) == {clinic.location.pk, lakeside.location.pk}


def _get(user: Any, path: str) -> Any:
    headers = {"HTTP_AUTHORIZATION": f"Bearer {api_token_issue(user=user)}"}
    response = Client().get(f"{FHIR}/{path}", **headers)
    assert response.status_code in (200, 404), response.content[:400]
    return response


@pytest.mark.parametrize("kind", ["PractitionerRole", "Schedule"])
def test_fhir_lists_no_role_or_schedule_whose_hours_ended(
    clinic: Clinic, lakeside: Clinic, staff_user: Any, kind: str
) -> None:
    found = _get(staff_user, f"{kind}?practitioner={clinic.ada.pk}").json()
    assert [e["resource"]["id"] for e in found["entry"]] == [
        f"{clinic.ada.pk}-{clinic.location.pk}"
    ]
    assert _get(staff_user, f"{kind}/{clinic.ada.pk}-{lakeside.location.pk}").status_code == 404


def test_a_practitioner_roles_hours_are_only_those_in_force(
    clinic: Clinic, staff_user: Any
) -> None:
    ProviderSchedule.objects.create(
        provider=clinic.ada,
        location=clinic.location,
        weekday=5,
        starts=time(9),
        ends=time(12),
        valid_from=date(2026, 1, 1),
        valid_until=ENDED,
    )
    role = _get(staff_user, f"PractitionerRole/{clinic.ada.pk}-{clinic.location.pk}").json()
    days = {day for hours in role["availableTime"] for day in hours["daysOfWeek"]}
    assert days == {"mon", "tue", "wed", "thu", "fri"}


def test_a_provider_keeps_their_location_until_the_end_of_their_last_day_there(
    clinic: Clinic,
) -> None:
    from datetime import datetime, timedelta  # noqa: PLC0415

    import time_machine  # noqa: PLC0415

    from microneedling.accounts.access import may_use_location  # noqa: PLC0415
    from tests.web.conftest import MONDAY, TZ  # noqa: PLC0415

    ProviderSchedule.objects.filter(provider=clinic.ada).update(valid_until=MONDAY)
    ada = make_staff("ada", "provider", provider=clinic.ada, locations=[])
    # 19:00 in Chicago is already Tuesday by the server's UTC clock: still Monday there.
    for hour in (12, 19, 23):
        with time_machine.travel(datetime.combine(MONDAY, time(hour), TZ), tick=False):
            assert may_use_location(ada, clinic.location.pk), hour
    day_after = datetime.combine(MONDAY + timedelta(days=1), time(13), TZ)
    with time_machine.travel(day_after, tick=False):
        assert not may_use_location(ada, clinic.location.pk)
