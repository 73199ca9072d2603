"""The audit trail stays inside the organisation and names the patient of every change.

- Auditors and chain operators search only their own organisation's events (superusers all).
- Recording a screening is audited, and over the API only the patient or a clinical role may.
- Signing up answers the same whether or not the address has an account.
- Status changes, overrides, screening reviews and skin-report handling name the patient, so
  they are in the patient's own access log and in the auditor's patient search.
"""

from __future__ import annotations

import re
import socket
from datetime import date
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core import mail
from django.test import Client
from django.urls import reverse

from microneedling.accounts.services import api_token_issue, break_glass_open
from microneedling.aftercare.models import SkinReport
from microneedling.aftercare.services import skin_report_handle
from microneedling.audit.models import AuditEvent
from microneedling.audit.selectors import patient_access_log
from microneedling.audit.services import audit_record
from microneedling.core.screening import Intake
from microneedling.directory.models import Location, Organization, Provider
from microneedling.patients.models import Patient, Screening
from microneedling.patients.services import patient_register, screening_record, screening_review
from microneedling.scheduling import services
from microneedling.scheduling.models import Appointment
from tests.web.conftest import (
    MONDAY,
    Clinic,
    build_clinic,
    local,
    make_patient,
    make_staff,
    make_superuser,
    sign_up_data,
)
from tests.web.sinks import mail_sink

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen_now")]
#: A break-glass reason with health details in it: exactly what must not leak.
SECRET_REASON = "Yuri reports a herpes flare after the last session, needs the chart now"  # noqa: S105
#: A test account's password (not a secret).
PASSWORD = "a-long-harbour-walk"  # noqa: S105


def _signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _faraway() -> tuple[Clinic, Organization]:
    """A location of another organisation ("Faraway Group"), with its own providers."""
    far = build_clinic(name="Faraway")
    elsewhere = Organization.objects.create(name="Faraway Group", slug="faraway-group")
    Location.objects.filter(pk=far.location.pk).update(organization=elsewhere)
    Provider.objects.filter(pk__in=[far.ada.pk, far.ben.pk]).update(organization=elsewhere)
    far.location.refresh_from_db()
    far.org = elsewhere
    return far, elsewhere


@pytest.fixture
def two_organisations(clinic: Clinic) -> dict[str, Any]:
    """Riverbend with Cleo, Faraway with Yuri; each with a provider who broke the glass on
    their own patient, and one action by a Faraway member of staff that names no patient."""
    far, elsewhere = _faraway()
    cleo = make_patient(clinic, name="Cleo Marsh")
    yuri = make_patient(far, name="Yuri Foreign")
    Patient.objects.filter(pk=yuri.pk).update(organization=elsewhere)
    ada = make_staff("ada.quill", "provider", locations=[], provider=clinic.ada)
    fay = make_staff("fay.far", "provider", organization=elsewhere, locations=[far.location])
    break_glass_open(user=ada, patient_id=cleo.pk, reason="Cleo called about swelling today")
    break_glass_open(user=fay, patient_id=yuri.pk, reason=SECRET_REASON)
    audit_record(actor=fay, action="message_retry", object_type="message", object_id=999)
    return {"clinic": clinic, "far": far, "cleo": cleo, "yuri": yuri, "ada": ada, "fay": fay}


# --- A: the audit search stays inside the organisation -----------------------------------


@pytest.mark.parametrize("role", ["auditor", "chain_operator"])
def test_an_auditor_cannot_read_another_organisations_patient_events(
    two_organisations: dict[str, Any], role: str
) -> None:
    yuri = two_organisations["yuri"]
    client = _signed_in(make_staff("aud.it", role, locations=[]))
    page = client.get(reverse("audit:search"), {"patient": yuri.pk})
    assert page.status_code == 200
    assert list(page.context["page"]) == []
    assert SECRET_REASON not in page.content.decode()
    assert "fay.far" not in page.content.decode()


def test_an_auditor_browsing_the_trail_sees_only_their_own_organisation(
    two_organisations: dict[str, Any],
) -> None:
    cleo = two_organisations["cleo"]
    client = _signed_in(make_staff("aud.it", "auditor", locations=[]))
    page = client.get(reverse("audit:search"))
    events = list(page.context["page"])
    text = page.content.decode()
    assert any(e.action == "break_glass" and e.object_id == str(cleo.pk) for e in events)
    assert SECRET_REASON not in text
    # Faraway's events that name no patient are Faraway's too (decided by who acted).
    assert not any(e.actor is not None and e.actor.username == "fay.far" for e in events)
    # Searching for Faraway's member of staff by name finds nothing either.
    by_name = client.get(reverse("audit:search"), {"actor": "fay.far"})
    assert list(by_name.context["page"]) == []


def test_an_auditor_still_finds_their_own_patients_events(
    two_organisations: dict[str, Any],
) -> None:
    cleo = two_organisations["cleo"]
    client = _signed_in(make_staff("aud.it", "auditor", locations=[]))
    page = client.get(reverse("audit:search"), {"patient": cleo.pk, "action": "break_glass"})
    assert [e.action for e in page.context["page"]] == ["break_glass"]
    assert "Cleo called about swelling today" in page.content.decode()


def test_a_superuser_searches_every_organisations_trail(
    two_organisations: dict[str, Any],
) -> None:
    yuri = two_organisations["yuri"]
    client = _signed_in(make_superuser("root"))
    page = client.get(reverse("audit:search"), {"patient": yuri.pk, "action": "break_glass"})
    assert [e.action for e in page.context["page"]] == ["break_glass"]
    assert SECRET_REASON in page.content.decode()


def test_an_event_naming_a_patient_in_its_details_belongs_to_the_patients_organisation(
    two_organisations: dict[str, Any],
) -> None:
    # Even when a Riverbend member of staff is the actor, the patient decides whose it is.
    yuri, ada = two_organisations["yuri"], two_organisations["ada"]
    audit_record(
        actor=ada,
        action="appointment_cancelled",
        object_type="appointment",
        object_id=12345,
        reason=SECRET_REASON,
        details={"patient": yuri.pk},
    )
    mine = _signed_in(make_staff("aud.it", "auditor", locations=[]))
    assert SECRET_REASON not in mine.get(reverse("audit:search")).content.decode()
    theirs = _signed_in(
        make_staff(
            "far.aud", "auditor", organization=Organization.objects.get(slug="faraway-group")
        )
    )
    found = theirs.get(reverse("audit:search"), {"patient": yuri.pk})
    assert "appointment_cancelled" in [e.action for e in found.context["page"]]


# --- B: recording a screening --------------------------------------------------------------


def _intake(skin: int) -> dict[str, Any]:
    return {
        "planned_date": "2027-03-15",
        "birth_date": "1990-04-02",
        "fitzpatrick_type": skin,
        "treatment_areas": ["face"],
        "pregnant": False,
        "breastfeeding": False,
    }


def _post_screening(token: str, patient: Patient, skin: int = 5) -> Any:
    return Client().post(
        "/api/v1/screenings",
        {"patient_id": patient.pk, "intake": _intake(skin)},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )


@pytest.mark.parametrize("role", ["front_desk", "clinic_admin", "chain_operator"])
def test_a_non_clinical_role_cannot_record_a_screening_over_the_api(
    clinic: Clinic, role: str
) -> None:
    patient = make_patient(clinic, skin=2)
    token = api_token_issue(user=make_staff("someone", role))
    answer = _post_screening(token, patient, skin=5)
    assert answer.status_code == 403
    assert answer["Content-Type"] == "application/problem+json"
    assert "verdict" not in answer.json()
    patient.refresh_from_db()
    assert patient.fitzpatrick_type == 2
    assert patient.screenings.count() == 1


def test_a_provider_records_a_screening_over_the_api_and_it_is_audited_with_the_patient(
    clinic: Clinic,
) -> None:
    patient = make_patient(clinic, skin=2)
    ada = make_staff("ada.quill", "provider", provider=clinic.ada)
    answer = _post_screening(api_token_issue(user=ada), patient, skin=5)
    assert answer.status_code == 201, answer.content
    event = AuditEvent.objects.get(action="screening_record", actor=ada)
    assert (event.object_type, event.object_id) == ("patient", str(patient.pk))
    assert event.details["screening"] == answer.json()["id"]
    assert event.details["skin_type"] == {"from": 2, "to": 5}
    assert patient_access_log(patient.pk).filter(action="screening_record").exists()


def test_a_patient_records_their_own_screening_over_the_api_and_is_the_actor(
    clinic: Clinic,
) -> None:
    patient = make_patient(clinic, skin=2)
    user = get_user_model().objects.create_user("cleo@example.test", password=None)
    Patient.objects.filter(pk=patient.pk).update(user=user)
    other = make_patient(clinic, name="Dan Reyes")
    token = api_token_issue(user=user)
    assert _post_screening(token, patient, skin=3).status_code == 201
    assert AuditEvent.objects.get(action="screening_record", actor=user).object_id == str(
        patient.pk
    )
    # Someone else's record answers as a missing one.
    assert _post_screening(token, other).status_code == 404


def test_an_intake_answered_in_the_portal_is_audited_as_the_patients_own() -> None:
    clinic = build_clinic()
    patient = patient_register(
        email="dana.reyes@example.org",
        password=PASSWORD,
        first_name="Dana",
        last_name="Reyes",
        birth_date=date(1990, 5, 17),
        location=clinic.location,
    )
    screening_record(patient=patient, intake=Intake.model_validate(_intake(4)))
    event = AuditEvent.objects.get(action="screening_record")
    assert event.actor == patient.user and event.role == "patient"
    assert event.object_id == str(patient.pk)


# --- C: signing up does not say who has an account -----------------------------------------


def _sign_up(clinic: Clinic, email: str, **changes: str) -> None:
    from microneedling.patients.services import patient_sign_up  # noqa: PLC0415

    data = {
        "email": email,
        "password": PASSWORD,
        "first_name": "Dana",
        "last_name": "Reyes",
        "birth_date": date(1990, 5, 17),
        "location": clinic.location,
        "site": "https://clinic.example",
        "confirm_link": lambda uid, token: f"https://clinic.example/confirm/{uid}/{token}/",
        **changes,
    }
    patient_sign_up(**data)


def _confirm(uidb64: str, token: str) -> Patient | None:
    from microneedling.patients.services import patient_sign_up_confirm  # noqa: PLC0415

    return patient_sign_up_confirm(uidb64=uidb64, token=token)


def _link_in(message: Any) -> tuple[str, str]:
    found = re.search(r"/confirm/([^/]+)/([^/]+)/", message.body)
    assert found is not None, message.body
    return found.group(1), found.group(2)


def test_the_sign_up_form_no_longer_says_that_an_address_has_an_account(
    clinic: Clinic,
) -> None:
    from microneedling.portal.forms import SignUpForm  # noqa: PLC0415

    make_patient(clinic, name="Cleo Marsh")
    get_user_model().objects.create_user("cleo@example.test", email="cleo@example.test")
    form = SignUpForm(
        {
            "first_name": "Dana",
            "last_name": "Reyes",
            "email": "Cleo@Example.test",
            "birth_date": "1990-05-17",
            "location": str(clinic.location.pk),
            "password": PASSWORD,
        }
    )
    assert form.is_valid(), form.errors
    assert form.cleaned_data["email"] == "cleo@example.test"


def test_signing_up_with_a_known_address_mails_the_holder_and_changes_nothing(
    clinic: Clinic,
) -> None:
    existing = patient_register(
        email="cleo@example.test",
        password="the-original-password",  # noqa: S106
        first_name="Cleo",
        last_name="Marsh",
        birth_date=date(1988, 2, 11),
        location=clinic.location,
    )
    users, patients = get_user_model().objects.count(), Patient.objects.count()
    _sign_up(clinic, "CLEO@example.test")
    assert (get_user_model().objects.count(), Patient.objects.count()) == (users, patients)
    existing.refresh_from_db()
    existing.user.refresh_from_db()  # type: ignore[union-attr]
    assert existing.first_name == "Cleo" and existing.birth_date == date(1988, 2, 11)
    assert existing.user.check_password("the-original-password")  # type: ignore[union-attr]
    assert existing.user.is_active  # type: ignore[union-attr]
    [notice] = mail.outbox
    assert notice.to == ["cleo@example.test"]
    assert "already have an account" in notice.body
    assert "https://clinic.example/my/password-reset/" in notice.body
    assert PASSWORD not in notice.body


def test_signing_up_with_a_new_address_waits_for_the_address_to_be_confirmed(
    clinic: Clinic,
) -> None:
    _sign_up(clinic, "Dana.Reyes@example.org")
    patient = Patient.objects.get(email="dana.reyes@example.org")
    assert patient.user is not None and not patient.user.is_active
    # Not signed in before the address is confirmed: no way to tell new from known that way.
    assert ModelBackend().authenticate(None, "dana.reyes@example.org", PASSWORD) is None
    [confirm] = mail.outbox
    assert confirm.to == ["dana.reyes@example.org"]
    uid, token = _link_in(confirm)
    assert _confirm(uid, "not-the-token") is None
    confirmed = _confirm(uid, token)
    assert confirmed is not None and confirmed.pk == patient.pk
    assert confirmed.user is not None and confirmed.user.is_active
    # The link works once.
    assert _confirm(uid, token) is None


def test_signing_up_again_before_confirming_sends_the_link_again_and_keeps_the_first_details(
    clinic: Clinic,
) -> None:
    _sign_up(clinic, "dana.reyes@example.org")
    _sign_up(clinic, "dana.reyes@example.org", first_name="Mallory")
    assert Patient.objects.get(email="dana.reyes@example.org").first_name == "Dana"
    assert len(mail.outbox) == 2
    uid, token = _link_in(mail.outbox[1])
    assert _confirm(uid, token) is not None


def _mail_server_down(settings) -> None:  # type: ignore[no-untyped-def]
    """Send mail by SMTP to a port nothing listens on."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        settings.EMAIL_HOST, settings.EMAIL_PORT = probe.getsockname()


def test_a_sign_up_while_the_mail_server_is_down_says_so_and_a_retry_sends_the_link(
    settings,  # type: ignore[no-untyped-def]
    clinic: Clinic,
) -> None:
    """It used to answer 500 after the account was made; now the form says the e-mail could
    not be sent, and once the server is back the same sign-up sends a link that works."""
    _mail_server_down(settings)
    data = sign_up_data(clinic)
    down = Client().post(reverse("portal:sign_up"), data)
    assert down.status_code == 503
    assert "could not send you an e-mail just now" in down.content.decode()
    waiting = Patient.objects.get(email="dana.reyes@example.org")
    assert waiting.user is not None and not waiting.user.is_active

    for sink in mail_sink():
        settings.EMAIL_HOST, settings.EMAIL_PORT = sink.host, sink.port
        again = Client().post(reverse("portal:sign_up"), data)
        assert again.status_code == 302 and again["Location"] == reverse("portal:sign_up_sent")
        [sent] = sink.received
        body = sent.get_payload(decode=True).decode()  # type: ignore[union-attr]
        found = re.search(r"/my/sign-up/([^/]+)/([^/]+)/", body)
        assert found is not None, body
        assert _confirm(found.group(1), found.group(2)) is not None
    assert Patient.objects.filter(email="dana.reyes@example.org").count() == 1


def _account_at(kind: str, email: str) -> None:
    """An account at ``email``: a patient's, a member of staff's made inactive, or one with
    no e-mail address of its own (the address is only its username)."""
    user = get_user_model().objects.create_user(
        email,
        email="" if kind == "no_email" else email,
        password="an-old-password",  # noqa: S106
    )
    if kind == "inactive":
        user.is_active = False
        user.save(update_fields=["is_active"])


@pytest.mark.parametrize("kind", ["active", "inactive", "no_email"])
def test_a_sign_up_with_an_address_that_has_an_account_mails_it_like_a_new_one(
    settings,  # type: ignore[no-untyped-def]
    clinic: Clinic,
    kind: str,
) -> None:
    """Whatever the account, the address gets one message, so a mail outage shows for every
    address alike (it did not for an inactive account or one without an e-mail)."""
    _account_at(kind, "cleo@example.test")
    data = sign_up_data(clinic, email="cleo@example.test")
    _mail_server_down(settings)
    assert Client().post(reverse("portal:sign_up"), data).status_code == 503

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    answer = Client().post(reverse("portal:sign_up"), data)
    assert answer.status_code == 302 and answer["Location"] == reverse("portal:sign_up_sent")
    [notice] = mail.outbox
    assert notice.to == ["cleo@example.test"]
    assert "already" in notice.body and PASSWORD not in notice.body
    assert get_user_model().objects.filter(username="cleo@example.test").count() == 1
    assert not Patient.objects.filter(email="cleo@example.test").exists()


def test_the_sign_up_page_answers_the_same_for_a_known_and_an_unknown_address(
    clinic: Clinic,
) -> None:
    make_patient(clinic, name="Cleo Marsh")
    get_user_model().objects.create_user("cleo@example.test", email="cleo@example.test")
    answers = []
    for email in ("cleo@example.test", "nobody.here@example.org"):
        data = {
            "first_name": "Dana",
            "last_name": "Reyes",
            "email": email,
            "birth_date": "1990-05-17",
            "location": str(clinic.location.pk),
            "password": PASSWORD,
        }
        answer = Client().post(reverse("portal:sign_up"), data)
        answers.append((answer.status_code, answer.get("Location", "")))
        assert "exists" not in answer.content.decode()
    assert answers[0] == answers[1]
    assert get_user_model().objects.filter(username="cleo@example.test").count() == 1


# --- D: changes name the patient ----------------------------------------------------------


def _visit(clinic: Clinic, patient: Patient, **kwargs: Any) -> Appointment:
    return services.appointment_book(
        patient=patient,
        service=clinic.treatment,
        location=clinic.location,
        provider=clinic.ada,
        starts_at=local(MONDAY, 10),
        **kwargs,
    )


def test_a_status_change_is_in_the_patients_access_log_and_the_patient_search(
    clinic: Clinic,
) -> None:
    patient = make_patient(clinic)
    desk = make_staff("ida.front", "front_desk")
    visit = _visit(clinic, patient, actor=desk)
    services.appointment_set_status(
        appointment=visit, status="cancelled", actor=desk, reason="called in sick"
    )
    assert patient_access_log(patient.pk).filter(action="appointment_cancelled").exists()
    auditor = _signed_in(make_staff("aud.it", "auditor", locations=[]))
    found = auditor.get(reverse("audit:search"), {"patient": patient.pk})
    assert "appointment_cancelled" in [e.action for e in found.context["page"]]


def test_an_override_names_the_patient(clinic: Clinic) -> None:
    desk = make_staff("ida.front", "front_desk")
    _visit(clinic, make_patient(clinic))
    second = make_patient(clinic, name="Dev Patel")
    _visit(clinic, second, actor=desk, override_reason="VIP squeeze-in")
    event = AuditEvent.objects.get(action="booking_override")
    assert event.details["patient"] == second.pk
    assert patient_access_log(second.pk).filter(action="booking_override").exists()


def test_a_screening_review_names_the_patient(clinic: Clinic) -> None:
    patient = make_patient(clinic)
    screening = patient.screenings.get()
    Screening.objects.filter(pk=screening.pk).update(review=Screening.Review.PENDING)
    screening.refresh_from_db()
    ada = make_staff("ada.quill", "provider", provider=clinic.ada)
    screening_review(screening=screening, actor=ada, approve=True, reason="history is fine")
    assert patient_access_log(patient.pk).filter(action="screening_review").exists()


def test_handling_a_skin_report_names_the_patient(clinic: Clinic) -> None:
    patient = make_patient(clinic)
    visit = _visit(clinic, patient)
    report = SkinReport.objects.create(
        patient=patient,
        appointment=visit,
        day=2,
        symptoms=[],
        action=SkinReport.Action.CONTACT_CLINIC,
        result={},
    )
    ada = make_staff("ada.quill", "provider", provider=clinic.ada)
    skin_report_handle(report=report, actor=ada, note="called her, all fine")
    assert patient_access_log(patient.pk).filter(action="skin_report_handle").exists()


def test_the_patient_search_and_access_log_ignore_a_typed_search_for_the_patient(
    clinic: Clinic,
) -> None:
    # An auditor's search is recorded with what was typed ("patient": "12" as text): that
    # names no patient, so it is not in the patient's log (it was not their record opened).
    patient = make_patient(clinic)
    auditor = _signed_in(make_staff("aud.it", "auditor", locations=[]))
    auditor.get(reverse("audit:search"), {"patient": str(patient.pk)})
    auditor.get(reverse("audit:search"), {"patient": "not-a-number"})
    assert AuditEvent.objects.filter(action="audit_search").count() == 2
    assert not patient_access_log(patient.pk).exists()
    # Text where a number would be never breaks the organisation's scope (on PostgreSQL a
    # cast of it would fail): the searches are the auditor's own, so they are listed.
    page = auditor.get(reverse("audit:search"), {"action": "audit_search"})
    assert page.status_code == 200 and len(page.context["page"]) == 2
