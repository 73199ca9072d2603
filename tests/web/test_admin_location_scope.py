"""A clinic admin's admin site holds the locations they run, and only those: another
location of the same organisation, its rooms, hours and pens, and the providers who work
only there, are neither listed nor opened, nor offered as a choice."""

from __future__ import annotations

import pytest
from django.urls import reverse

from microneedling.directory.models import Location, ProviderSchedule, Room
from tests.web.conftest import Clinic, build_clinic, client_of, make_staff

pytestmark = pytest.mark.django_db


def _stoneridge_with_its_own_provider(clinic: Clinic) -> Clinic:
    """Stoneridge, a second location of the organisation, where only its own staff work."""
    other = build_clinic(name="Stoneridge")
    ProviderSchedule.objects.filter(provider__in=[other.ada, other.ben]).update(
        location=other.location
    )
    return other


def test_a_clinic_admins_location_list_holds_only_the_locations_they_run(clinic: Clinic) -> None:
    other = _stoneridge_with_its_own_provider(clinic)
    client = client_of(make_staff("admin", "clinic_admin", locations=[clinic.location]))
    listed = client.get(reverse("admin:directory_location_changelist"))
    assert listed.status_code == 200
    names = {row.name for row in listed.context["cl"].result_list}
    assert names == {clinic.location.name}
    assert other.location.name not in names


def test_a_clinic_admin_cannot_open_or_change_a_location_they_do_not_run(clinic: Clinic) -> None:
    other = _stoneridge_with_its_own_provider(clinic)
    client = client_of(make_staff("admin", "clinic_admin", locations=[clinic.location]))
    page = client.get(reverse("admin:directory_location_change", args=[other.location.pk]))
    # The admin answers a row outside the queryset as missing (a redirect to the index).
    assert page.status_code == 302
    deleted = client.post(
        reverse("admin:directory_location_delete", args=[other.location.pk]), {"post": "yes"}
    )
    assert deleted.status_code == 302
    assert Location.objects.filter(pk=other.location.pk).exists()
    assert Room.objects.filter(location=other.location).count() == 2


def test_a_clinic_admin_sees_only_the_providers_who_work_at_their_locations(
    clinic: Clinic,
) -> None:
    other = _stoneridge_with_its_own_provider(clinic)
    client = client_of(make_staff("admin", "clinic_admin", locations=[clinic.location]))
    listed = client.get(reverse("admin:directory_provider_changelist"))
    shown = {row.pk for row in listed.context["cl"].result_list}
    assert shown == {clinic.ada.pk, clinic.ben.pk}
    page = client.get(reverse("admin:directory_provider_change", args=[other.ada.pk]))
    assert page.status_code == 302


def test_a_clinic_admin_is_offered_only_their_own_locations_for_a_cartridge_lot(
    clinic: Clinic,
) -> None:
    other = _stoneridge_with_its_own_provider(clinic)
    client = client_of(make_staff("admin", "clinic_admin", locations=[clinic.location]))
    page = client.get(reverse("admin:directory_cartridgelot_add"))
    assert page.status_code == 200
    choices = set(page.context["adminform"].form.fields["location"].queryset)
    assert choices == {clinic.location}
    assert other.location not in choices


def test_a_chain_operator_still_sees_every_location_of_the_organisation(clinic: Clinic) -> None:
    other = _stoneridge_with_its_own_provider(clinic)
    client = client_of(make_staff("operator", "chain_operator", organization=clinic.org))
    listed = client.get(reverse("admin:directory_location_changelist"))
    names = {row.name for row in listed.context["cl"].result_list}
    assert names == {clinic.location.name, other.location.name}
