"""A location's time zone is a real IANA name: every date and time there is read in it, so
a mistyped one is refused where it is entered, naming the field and the name."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.forms import modelform_factory

from microneedling.directory.models import Location
from tests.web.conftest import Clinic

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "America/Chicag0", "", "../etc/passwd"])
def test_a_location_with_an_unknown_time_zone_is_refused_naming_the_field(
    clinic: Clinic, zone: str
) -> None:
    clinic.location.timezone = zone
    with pytest.raises(ValidationError) as raised:
        clinic.location.full_clean()
    assert "timezone" in raised.value.message_dict


def test_the_error_names_the_unknown_zone(clinic: Clinic) -> None:
    clinic.location.timezone = "Mars/Olympus_Mons"
    with pytest.raises(ValidationError) as raised:
        clinic.location.full_clean()
    assert "Mars/Olympus_Mons" in " ".join(raised.value.message_dict["timezone"])


def test_a_location_form_refuses_an_unknown_time_zone_and_takes_a_real_one(
    clinic: Clinic,
) -> None:
    form_class = modelform_factory(Location, fields=["timezone"])
    assert not form_class({"timezone": "Europe/Atlantis"}, instance=clinic.location).is_valid()
    assert form_class({"timezone": "Europe/Berlin"}, instance=clinic.location).is_valid()
