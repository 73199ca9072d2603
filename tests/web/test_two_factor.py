"""Staff sign in with a password and then a TOTP code; patients with a password."""

from __future__ import annotations

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from microneedling.audit.models import AuditEvent
from microneedling.patients.models import Patient
from tests.web.conftest import NOW, Clinic, make_patient, make_staff, totp_code

pytestmark = pytest.mark.django_db
PASSWORD = "harbour lights at dusk 7"  # noqa: S105 (a test account's)


def _password_step(client: Client, username: str) -> str:
    answer = client.post(
        reverse("portal:sign_in"), {"username": username, "password": PASSWORD}, follow=True
    )
    return answer.redirect_chain[-1][0]


def test_staff_need_the_right_code_before_the_desk_opens(clinic: Clinic) -> None:
    ada = make_staff("ada.quill", "provider", password=PASSWORD)
    client = Client()
    clock = time_machine.travel(NOW, tick=False)
    traveller = clock.start()
    landed = _password_step(client, "ada.quill")
    assert landed == f"{reverse('portal:two_factor')}?next=/desk/"  # staff start at the desk
    desk = client.get(reverse("desk:home"))
    assert desk.status_code == 302 and desk["Location"].startswith(reverse("portal:two_factor"))
    wrong = client.post(reverse("portal:two_factor"), {"code": "000000", "next": "/desk/"})
    assert wrong.status_code == 200 and "not right" in wrong.content.decode()
    # A wrong code makes the device wait before it checks another (guessing is slow).
    too_soon = client.post(reverse("portal:two_factor"), {"code": totp_code(ada), "next": "/"})
    assert too_soon.status_code == 200
    traveller.shift(5)
    right = client.post(reverse("portal:two_factor"), {"code": totp_code(ada), "next": "/desk/"})
    assert right.status_code == 302 and right["Location"] == "/desk/"
    assert client.get(reverse("desk:home")).status_code == 200
    clock.stop()


def test_the_first_sign_in_sets_up_an_authenticator_from_a_qr_code(clinic: Clinic) -> None:
    ida = make_staff("ida.front", password=PASSWORD)
    TOTPDevice.objects.filter(user=ida).delete()  # a new member of staff has no device yet
    client = Client()
    client.post(reverse("portal:sign_in"), {"username": "ida.front", "password": PASSWORD})
    page = client.get(reverse("portal:two_factor"), follow=True)
    html = page.content.decode()
    assert page.redirect_chain[-1][0].startswith(reverse("portal:two_factor_setup"))
    assert "<svg" in html and "otpauth" not in html  # the secret travels in the QR only
    device = TOTPDevice.objects.get(user=ida, confirmed=False)
    code = f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"
    done = client.post(reverse("portal:two_factor_setup"), {"code": code, "next": "/desk/"})
    assert done.status_code == 302 and done["Location"] == "/desk/"
    device.refresh_from_db()
    assert device.confirmed
    assert AuditEvent.objects.filter(action="two_factor_enrolled", actor=ida).exists()
    assert client.get(reverse("desk:home")).status_code == 200
    # A confirmed device is never replaced from a session (a stolen one must not swap it).
    again = client.get(reverse("portal:two_factor_setup"))
    assert again.status_code == 302 and TOTPDevice.objects.filter(user=ida).count() == 1


def test_two_authenticators_half_set_up_leave_one_and_the_setup_page_works(
    clinic: Clinic,
) -> None:
    ida = make_staff("ida.front", password=PASSWORD)
    TOTPDevice.objects.filter(user=ida).delete()
    # Two pages loaded at once, or one added in the admin: neither was confirmed.
    first = TOTPDevice.objects.create(user=ida, name="Authenticator app", confirmed=False)
    TOTPDevice.objects.create(user=ida, name="Authenticator app", confirmed=False)
    client = Client()
    client.post(reverse("portal:sign_in"), {"username": "ida.front", "password": PASSWORD})
    page = client.get(reverse("portal:two_factor_setup"))
    assert page.status_code == 200 and "<svg" in page.content.decode()
    assert list(TOTPDevice.objects.filter(user=ida)) == [first]
    code = f"{totp(first.bin_key, step=first.step, t0=first.t0, digits=first.digits):06d}"
    done = client.post(reverse("portal:two_factor_setup"), {"code": code, "next": "/desk/"})
    assert done.status_code == 302
    first.refresh_from_db()
    assert first.confirmed


def test_an_auditor_lands_on_the_audit_trail_after_the_code(clinic: Clinic) -> None:
    aud = make_staff("aud.it", "auditor", password=PASSWORD)
    client = Client()
    landed = _password_step(client, "aud.it")
    assert landed == f"{reverse('portal:two_factor')}?next=/audit/"
    done = client.post(reverse("portal:two_factor"), {"code": totp_code(aud), "next": "/audit/"})
    assert done["Location"] == "/audit/" and client.get("/audit/").status_code == 200


def test_a_patient_signs_in_with_the_password_alone(clinic: Clinic) -> None:
    patient: Patient = make_patient(clinic)
    patient.user = get_user_model().objects.create_user(
        patient.email, email=patient.email, password=PASSWORD
    )
    patient.save()
    client = Client()
    assert _password_step(client, patient.email) == reverse("portal:home")
    assert client.get(reverse("portal:home")).status_code == 200


def test_the_deployment_cannot_turn_staff_two_factor_off_and_pass_its_checks(settings) -> None:  # type: ignore[no-untyped-def]
    from microneedling.config.checks import health_data_deploy_checks  # noqa: PLC0415

    settings.MICRONEEDLING = {**settings.MICRONEEDLING, "STAFF_TWO_FACTOR": False}
    assert "mn.E006" in {problem.id for problem in health_data_deploy_checks()}
