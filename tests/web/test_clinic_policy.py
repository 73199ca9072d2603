"""A clinic's own policy: booking numbers and choices where the sources differ, set in the
admin (audited) and followed by booking, course planning and screening."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from microneedling.audit.models import AuditEvent
from microneedling.core.errors import BookingConflict
from microneedling.core.screening import Intake
from microneedling.directory.models import ClinicPolicy
from microneedling.directory.policy import booking_rules
from microneedling.directory.policy_form import NUMBER_FIELDS
from microneedling.patients.services import screening_record
from microneedling.scheduling import services
from tests.web.conftest import NOW, Clinic, local, make_patient, make_staff, make_superuser

MONDAY = date(2027, 3, 8)
pytestmark = pytest.mark.usefixtures("frozen_now")


def test_without_a_stored_policy_the_deployment_settings_apply(clinic: Clinic, settings) -> None:
    settings.MICRONEEDLING = {**settings.MICRONEEDLING, "SLOT_GRID_MINUTES": 20}
    rules = booking_rules(clinic.org.pk)
    assert rules.grid_minutes == 20
    assert rules.pack_policy.positions == {}
    assert rules.window(NOW)[0] - NOW == timedelta(hours=settings.MICRONEEDLING["MIN_NOTICE_HOURS"])


def test_a_clinic_on_an_hourly_grid_refuses_a_quarter_past_start(clinic: Clinic) -> None:
    patient = make_patient(clinic)
    ClinicPolicy.objects.create(organization=clinic.org, slot_grid_minutes=60)
    with pytest.raises(BookingConflict):
        services.appointment_book(
            patient=patient,
            service=clinic.treatment,
            location=clinic.location,
            provider=clinic.ada,
            starts_at=local(MONDAY, 9, 15),
        )
    booked = services.appointment_book(
        patient=patient,
        service=clinic.treatment,
        location=clinic.location,
        provider=clinic.ada,
        starts_at=local(MONDAY, 10),
    )
    assert booked.starts_at == local(MONDAY, 10)


def test_a_clinic_asking_a_week_of_notice_refuses_a_booking_for_tomorrow(clinic: Clinic) -> None:
    patient = make_patient(clinic)
    ClinicPolicy.objects.create(organization=clinic.org, min_notice_hours=24 * 7)
    with pytest.raises(BookingConflict):
        services.appointment_book(
            patient=patient,
            service=clinic.treatment,
            location=clinic.location,
            provider=clinic.ada,
            starts_at=local(NOW.date() + timedelta(days=1), 10),
        )


def test_the_desk_books_a_walk_in_inside_the_notice_without_an_override(clinic: Clinic) -> None:
    desk = make_staff("front.desk", "front_desk")
    patient = make_patient(clinic, screen_on=NOW.date())
    soon = local(NOW.date(), 10)  # two hours from now: patients give twelve hours' notice
    assert booking_rules(clinic.org.pk).window(NOW)[0] > soon

    def book(who: Any, actor: Any) -> Any:
        return services.appointment_book(
            patient=who,
            service=clinic.treatment,
            location=clinic.location,
            provider=clinic.ada,
            starts_at=soon,
            actor=actor,
        )

    with pytest.raises(BookingConflict):
        book(patient, None)  # as booked online: too little notice
    walk_in = book(patient, desk)
    assert walk_in.starts_at == soon and not walk_in.override_reason
    assert not walk_in.reservations.filter(overlap_allowed=True).exists()
    # The walk-in holds its time like any booking: the desk cannot book over it by mistake.
    with pytest.raises(BookingConflict):
        book(make_patient(clinic, name="Dora Lane", screen_on=NOW.date()), desk)
    # Nor can anyone book a time already past.
    with pytest.raises(BookingConflict):
        services.appointment_book(
            patient=patient,
            service=clinic.treatment,
            location=clinic.location,
            provider=clinic.ben,
            starts_at=NOW - timedelta(hours=1),
            actor=desk,
        )


def test_the_clinics_protocol_choice_sets_the_number_of_sessions(clinic: Clinic) -> None:
    patient = make_patient(clinic)

    def sessions() -> int:
        proposal = services.course_propose(
            patient=patient,
            location=clinic.location,
            service=clinic.treatment,
            indications=["acne_scars"],
            first_session=MONDAY,
        )
        return len(proposal.plan.sessions)

    assert sessions() == 3  # the pack's default protocol
    ClinicPolicy.objects.create(
        organization=clinic.org, protocols={"acne_scars": "protocol.acne_scars.seed000"}
    )
    assert sessions() == 6


def _screen_after_isotretinoin(clinic: Clinic) -> str:
    patient = make_patient(clinic, name="Iris Vale")
    intake = Intake.model_validate(
        {
            "planned_date": "2027-03-08",
            "birth_date": "1990-04-02",
            "fitzpatrick_type": 2,
            "treatment_areas": ["face"],
            "pregnant": False,
            "breastfeeding": False,
            "medications": [{"code": "isotretinoin", "last_dose": "2027-01-10"}],
        }
    )
    return screening_record(patient=patient, intake=intake).verdict


def test_screening_follows_the_waiting_period_the_clinic_chose(clinic: Clinic) -> None:
    assert _screen_after_isotretinoin(clinic) == "deferred"  # the labelling's six months
    ClinicPolicy.objects.create(
        organization=clinic.org,
        positions={"dispute.isotretinoin_wait": "no_delay_superficial"},
    )
    assert _screen_after_isotretinoin(clinic) == "eligible"


def test_a_stored_choice_the_pack_does_not_hold_fails_validation_naming_it(clinic: Clinic) -> None:
    policy = ClinicPolicy(
        organization=clinic.org, protocols={"acne_scars": "protocol.acne_scars.nowhere"}
    )
    with pytest.raises(Exception, match="acne_scars") as raised:
        policy.full_clean()
    assert "protocols" in raised.value.message_dict  # type: ignore[attr-defined]


# --- The admin page -----------------------------------------------------------------------


@pytest.fixture
def admin_client(clinic: Clinic) -> Client:
    client = Client()
    client.force_login(make_superuser("root.admin"))
    return client


def _form(clinic: Clinic, **changes: Any) -> dict[str, Any]:
    return {
        "organization": clinic.org.pk,
        "slot_grid_minutes": 15,
        "min_notice_hours": 12,
        "booking_horizon_days": 400,
        "reminder_hours": "[48, 24]",
        "quiet_from": "21:00",
        "quiet_until": "08:00",
        "reason": "Our physicians follow the ASDS consensus.",
        "positions__dispute__isotretinoin_wait": "no_delay_superficial",
        "protocols__acne_scars": "protocol.acne_scars.seed000",
        **changes,
    }


def test_the_admin_offers_every_dispute_and_protocol_of_the_pack(
    admin_client: Client, clinic: Clinic
) -> None:
    page = admin_client.get(reverse("admin:directory_clinicpolicy_add")).content.decode()
    assert "How long after isotretinoin may the skin be needled?" in page
    assert 'value="no_delay_superficial"' in page
    assert 'value="protocol.acne_scars.seed000"' in page
    # A concern with one protocol has nothing to choose.
    assert "protocols__melasma" not in page


def test_saving_a_policy_in_the_admin_stores_the_choices_and_audits_the_reason(
    admin_client: Client, clinic: Clinic
) -> None:
    response = admin_client.post(reverse("admin:directory_clinicpolicy_add"), _form(clinic))
    assert response.status_code == 302, response.content.decode()[:2000]
    policy = ClinicPolicy.objects.get(organization=clinic.org)
    assert policy.positions == {"dispute.isotretinoin_wait": "no_delay_superficial"}
    assert policy.protocols == {"acne_scars": "protocol.acne_scars.seed000"}
    event = AuditEvent.objects.get(action="clinic_policy_create")
    assert event.reason == "Our physicians follow the ASDS consensus."
    assert event.details["changed"]["dispute.isotretinoin_wait"] == "no_delay_superficial"

    change = reverse("admin:directory_clinicpolicy_change", args=[policy.pk])
    # The admin renders the stored numbers as hidden initial values (their defaults are
    # callables), which is how it tells they did not change.
    unchanged = {f"initial-{name}": getattr(policy, name) for name in NUMBER_FIELDS[1:]}
    unchanged["initial-reminder_hours"] = "[48, 24]"
    response = admin_client.post(
        change,
        _form(clinic, positions__dispute__isotretinoin_wait="", reason="Back to the labelling.")
        | unchanged,
    )
    assert response.status_code == 302
    policy.refresh_from_db()
    assert policy.positions == {}
    changed = AuditEvent.objects.get(action="clinic_policy_change").details["changed"]
    assert changed == {"dispute.isotretinoin_wait": "pack default"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("reason", ""),
        ("slot_grid_minutes", "7"),
        ("booking_horizon_days", "3"),
        ("reminder_hours", "[48, 48]"),
        ("reminder_hours", "[0.5]"),
    ],
)
def test_a_bad_policy_form_names_the_field_and_saves_nothing(
    admin_client: Client, clinic: Clinic, field: str, value: str
) -> None:
    response = admin_client.post(
        reverse("admin:directory_clinicpolicy_add"), _form(clinic, **{field: value})
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == [field]
    assert not ClinicPolicy.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="clinic_policy").exists()


def test_a_change_to_zero_or_to_no_reminders_is_audited_as_that_value(
    admin_client: Client, clinic: Clinic
) -> None:
    response = admin_client.post(reverse("admin:directory_clinicpolicy_add"), _form(clinic))
    assert response.status_code == 302
    policy = ClinicPolicy.objects.get(organization=clinic.org)
    response = admin_client.post(
        reverse("admin:directory_clinicpolicy_change", args=[policy.pk]),
        _form(clinic, min_notice_hours="0", reminder_hours="[]", reason="Walk-ins welcome."),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    policy.refresh_from_db()
    assert policy.min_notice_hours == 0 and policy.reminder_hours == []
    changed = AuditEvent.objects.get(action="clinic_policy_change").details["changed"]
    # Zero hours and an empty list are values the clinic chose, not the pack's default.
    assert changed["min_notice_hours"] == 0
    assert changed["reminder_hours"] == []


def test_a_clinic_policy_cannot_be_deleted_in_the_admin(
    admin_client: Client, clinic: Clinic
) -> None:
    admin_client.post(reverse("admin:directory_clinicpolicy_add"), _form(clinic))
    policy = ClinicPolicy.objects.get(organization=clinic.org)
    page = admin_client.post(
        reverse("admin:directory_clinicpolicy_delete", args=[policy.pk]), {"post": "yes"}
    )
    assert page.status_code == 403
    bulk = admin_client.post(
        reverse("admin:directory_clinicpolicy_changelist"),
        {"action": "delete_selected", "_selected_action": [policy.pk], "post": "yes"},
    )
    assert bulk.status_code in (200, 302)
    assert ClinicPolicy.objects.filter(pk=policy.pk).exists()


def test_choosing_doctors_only_flags_treatments_already_booked_with_an_aesthetician(
    admin_client: Client, clinic: Clinic
) -> None:
    """Visits booked before the change stay booked (the patient was told their time); the
    operator is told how many, and the day sheet flags each for the desk to move."""
    from microneedling.scheduling.selectors import day_sheet  # noqa: PLC0415

    with_ben = services.appointment_book(
        patient=make_patient(clinic),
        service=clinic.treatment,
        location=clinic.location,
        provider=clinic.ben,
        starts_at=local(MONDAY, 10),
    )
    with_ada = services.appointment_book(
        patient=make_patient(clinic, name="Dev Patel"),
        service=clinic.treatment,
        location=clinic.location,
        provider=clinic.ada,
        starts_at=local(MONDAY, 10),
    )

    def flagged() -> set[int]:
        sheet = day_sheet(clinic.location, MONDAY)
        return {
            v.appointment.pk
            for _, visits in sheet.providers
            for v in visits
            if v.provider_may_not_treat
        }

    assert flagged() == set()
    response = admin_client.post(
        reverse("admin:directory_clinicpolicy_add"),
        _form(clinic, **{"positions__dispute__who_performs": "doctor_or_np"}),
        follow=True,
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "1 treatment visit still to come is booked with a provider who may not" in page
    assert f"Riverbend on {MONDAY.isoformat()}" in page
    assert flagged() == {with_ben.pk}
    assert with_ada.pk not in flagged()
    # Once the visit is cancelled there is nothing to move.
    services.appointment_cancel(appointment=with_ben, actor=None, reason="moved to Dr. Quill")
    assert flagged() == set()


def test_the_desk_sees_the_flag_on_its_day_sheet(clinic: Clinic) -> None:
    from microneedling.scheduling.selectors import sheet_visit  # noqa: PLC0415
    from tests.web.conftest import client_of, make_staff  # noqa: PLC0415

    visit = services.appointment_book(
        patient=make_patient(clinic),
        service=clinic.treatment,
        location=clinic.location,
        provider=clinic.ben,
        starts_at=local(MONDAY, 10),
    )
    ClinicPolicy.objects.create(
        organization=clinic.org, positions={"dispute.who_performs": "doctor_or_np"}
    )
    assert sheet_visit(visit.pk).provider_may_not_treat
    desk = client_of(make_staff("ida", "front_desk", locations=[clinic.location]))
    page = desk.get(
        reverse("desk:day_sheet", args=[clinic.location.slug]) + f"?day={MONDAY}"
    ).content.decode()
    assert "Ben Ortiz may not do the needling" in page
