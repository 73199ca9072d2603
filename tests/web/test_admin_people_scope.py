"""The admin's people pages (staff accounts, authenticators, sign-in lock-outs) stay inside
the chain operator's organisation: other organisations' and superusers' rows are neither
listed nor opened, changed or deleted, and no other organisation's account can be picked."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from microneedling.accounts.models import StaffMember
from microneedling.patients.models import Patient
from tests.web.conftest import Clinic, build_clinic, make_patient, make_staff, make_superuser

pytestmark = pytest.mark.django_db


@dataclass
class People:
    """Our chain's operator and desk, another chain's desk, and the system's superuser."""

    ours: Clinic
    theirs: Clinic
    operator: Client
    our_desk: Any
    their_desk: Any
    root: Any


@pytest.fixture
def people() -> People:
    ours = build_clinic()
    theirs = build_clinic(name="Faraway", group="Faraway Group")
    operator = make_staff("operator.a", "chain_operator", organization=ours.org)
    client = Client()
    client.force_login(operator)
    return People(
        ours=ours,
        theirs=theirs,
        operator=client,
        our_desk=make_staff("desk.a", "front_desk", organization=ours.org),
        their_desk=make_staff("desk.b", "front_desk", organization=theirs.org),
        root=make_superuser("root"),
    )


def _device_form(user: Any) -> dict[str, str]:
    """A complete, valid authenticator form for ``user``: only the account can be wrong."""
    return {
        "user": str(user.pk),
        "name": "planted",
        "confirmed": "on",
        "key": "3132333435363738393031323334353637383930",
        "step": "30",
        "t0": "0",
        "digits": "6",
        "tolerance": "1",
        "drift": "0",
        "throttling_failure_count": "0",
    }


def test_the_authenticator_list_holds_only_the_organisations_own_staff(people: People) -> None:
    page = people.operator.get(reverse("admin:otp_totp_totpdevice_changelist"))
    assert page.status_code == 200
    listed = page.content.decode()
    assert "desk.a" in listed
    assert "desk.b" not in listed
    assert ">root<" not in listed
    root = Client()
    root.force_login(people.root)
    everyone = root.get(reverse("admin:otp_totp_totpdevice_changelist")).content.decode()
    assert "desk.a" in everyone and "desk.b" in everyone


def test_another_organisations_or_a_superusers_authenticator_cannot_be_opened_or_deleted(
    people: People,
) -> None:
    for owner in (people.their_desk, people.root):
        device = TOTPDevice.objects.get(user=owner)
        change = people.operator.get(reverse("admin:otp_totp_totpdevice_change", args=[device.pk]))
        assert change.status_code == 302  # the admin's answer for a row it cannot find
        assert device.key not in change.content.decode()
        people.operator.post(
            reverse("admin:otp_totp_totpdevice_delete", args=[device.pk]), {"post": "yes"}
        )
        assert TOTPDevice.objects.filter(pk=device.pk).exists()
    secret = people.operator.get(
        reverse(
            "admin:otp_totp_totpdevice_config", args=[TOTPDevice.objects.get(user=people.root).pk]
        )
    )
    assert secret.status_code == 403


def test_an_authenticator_can_be_added_for_our_staff_but_not_planted_on_anyone_else(
    people: People,
) -> None:
    add = reverse("admin:otp_totp_totpdevice_add")
    # An account that is no one's yet: whoever takes it on later would inherit the device.
    unclaimed = get_user_model().objects.create_user("not.yet.hired")
    for stranger in (people.root, people.their_desk, unclaimed):
        refused = people.operator.post(add, _device_form(stranger))
        assert refused.status_code == 200  # the form again, with the error beside "user"
        assert "user" in refused.context["adminform"].form.errors
        assert not TOTPDevice.objects.filter(user=stranger, name="planted").exists()
    added = people.operator.post(add, _device_form(people.our_desk))
    assert added.status_code == 302
    assert TOTPDevice.objects.filter(user=people.our_desk, name="planted").exists()


def test_lock_outs_are_listed_and_cleared_only_for_the_organisations_own_people(
    people: People,
) -> None:
    patient_user = get_user_model().objects.create_user("cleo@example.test")
    Patient.objects.filter(pk=make_patient(people.ours).pk).update(user=patient_user)

    def locked(username: str) -> AccessAttempt:
        return AccessAttempt.objects.create(
            username=username, ip_address="203.0.113.9", user_agent="probe", failures_since_start=5
        )

    ours = [locked("desk.a"), locked("cleo@example.test")]
    theirs = [locked("desk.b"), locked("root"), locked("nobody@example.test")]
    listed = people.operator.get(reverse("admin:axes_accessattempt_changelist"))
    shown = {row.pk for row in listed.context["cl"].result_list}
    assert shown == {a.pk for a in ours}
    for attempt in theirs:
        people.operator.post(
            reverse("admin:axes_accessattempt_delete", args=[attempt.pk]), {"post": "yes"}
        )
        assert AccessAttempt.objects.filter(pk=attempt.pk).exists()
    people.operator.post(
        reverse("admin:axes_accessattempt_delete", args=[ours[0].pk]), {"post": "yes"}
    )
    assert not AccessAttempt.objects.filter(pk=ours[0].pk).exists()


def test_a_staff_account_cannot_be_made_from_another_organisations_patient(
    people: People,
) -> None:
    """Picking another chain's patient's account (its username is their e-mail) is refused,
    and the refusal does not print that e-mail."""
    account = get_user_model().objects.create_user("yuri.foreign@example.test")
    Patient.objects.filter(pk=make_patient(people.theirs, name="Yuri Foreign").pk).update(
        user=account
    )
    answer = people.operator.post(
        reverse("admin:accounts_staffmember_add"),
        {"user": str(account.pk), "role": "front_desk", "organization": str(people.ours.org.pk)},
    )
    assert answer.status_code == 200
    assert "user" in answer.context["adminform"].form.errors
    assert "yuri.foreign@example.test" not in answer.content.decode()
    assert not StaffMember.objects.filter(user=account).exists()
    fresh = get_user_model().objects.create_user("new.hire")
    hired = people.operator.post(
        reverse("admin:accounts_staffmember_add"),
        {"user": str(fresh.pk), "role": "front_desk", "organization": str(people.ours.org.pk)},
    )
    assert hired.status_code == 302
    assert StaffMember.objects.get(user=fresh).organization_id == people.ours.org.pk
