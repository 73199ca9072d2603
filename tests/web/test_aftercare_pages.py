"""Care before and after a visit, skin reports triaged on the way in, and the providers' queue
(Django's test client, both engines)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from microneedling.aftercare.models import SkinReport
from microneedling.audit.models import AuditEvent
from microneedling.core.knowledge import load_pack
from microneedling.directory.models import ClinicPolicy
from microneedling.scheduling import services
from microneedling.scheduling.models import Appointment
from tests.web.access_world import PNG
from tests.web.conftest import Clinic, local, make_patient, make_staff
from tests.web.test_course_pages import signed_in

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen_now")]
MONDAY = date(2027, 3, 8)


def visit_for(clinic: Clinic) -> tuple[Client, Appointment]:
    patient = make_patient(clinic, medications=[{"code": "ibuprofen", "last_dose": None}])
    client = signed_in(patient)
    visit = services.appointment_book(
        patient=patient,
        service=clinic.treatment,
        location=clinic.location,
        provider=clinic.ada,
        starts_at=local(MONDAY, 10),
    )
    return client, visit


def staff_client() -> Client:
    user = make_staff("ada.quill", "provider")
    client = Client()
    client.force_login(user)
    return client


def test_the_care_page_dates_the_medicine_pause_from_the_visit(clinic: Clinic) -> None:
    client, visit = visit_for(clinic)
    page = client.get(reverse("portal:visit_care", args=[visit.pk]))
    plan = page.context["plan"]
    assert plan.session_day == MONDAY
    holds = {name: (stop, resume) for name, stop, resume, _ in plan.holds}
    assert "ibuprofen" in holds
    stop, resume = holds["ibuprofen"]
    assert stop < MONDAY < resume
    assert plan.visit_minutes == 85  # the service's four phases
    # Before the visit there is nothing to report yet.
    assert not page.context["can_report"]
    assert client.get(reverse("portal:skin_report", args=[visit.pk])).status_code == 404


def test_the_care_page_times_makeup_by_the_clinic_s_chosen_position(clinic: Clinic) -> None:
    client, visit = visit_for(clinic)

    def makeup_line() -> tuple[str, date | None]:
        plan = client.get(reverse("portal:visit_care", args=[visit.pk])).context["plan"]
        return next((line.text, line.until) for line in plan.after if "akeup" in line.text)

    assert makeup_line()[1] == MONDAY + timedelta(days=1)  # the pack's default: a day
    ClinicPolicy.objects.create(
        organization=clinic.org, positions={"dispute.makeup_after": "avoid_during_downtime"}
    )
    text, until = makeup_line()
    assert until == MONDAY + timedelta(days=2)  # seed-001: the one-to-two-day downtime
    assert "two days" in text


def test_the_care_page_tells_the_downtime_of_the_clinic_s_chosen_position(clinic: Clinic) -> None:
    client, visit = visit_for(clinic)

    positions = load_pack().disputes["dispute.downtime"].positions
    downtime_texts = {position.params["message"] for position in positions}

    def downtime_line() -> tuple[str, date | None]:
        plan = client.get(reverse("portal:visit_care", args=[visit.pk])).context["plan"]
        return next((line.text, line.until) for line in plan.after if line.text in downtime_texts)

    text, until = downtime_line()
    assert until == MONDAY + timedelta(days=7)  # the pack's default: settled within a week
    assert "up to a week" in text
    ClinicPolicy.objects.create(
        organization=clinic.org, positions={"dispute.downtime": "two_to_four_days"}
    )
    text, until = downtime_line()
    assert until == MONDAY + timedelta(days=4)  # seed-000: two to four days
    assert "two to four days on average" in text


def test_an_alarming_report_goes_to_the_queue_and_the_patient_is_told_to_call(
    clinic: Clinic,
) -> None:
    client, visit = visit_for(clinic)
    with time_machine.travel(local(MONDAY + timedelta(days=3), 9), tick=False):
        client.force_login(visit.patient.user)  # days later: the old session has ended
        response = client.post(
            reverse("portal:skin_report", args=[visit.pk]),
            {"symptom_pus": "moderate", "symptom_redness": "mild", "notes": "Yellow spots"},
        )
        report = SkinReport.objects.get()
        assert response["Location"] == reverse("portal:skin_report_result", args=[report.pk])
        advice = client.get(response["Location"]).content.decode()
    assert report.action == "urgent" and report.day == 3
    assert "Contact your clinic now." in advice

    desk = staff_client()
    queue = desk.get(reverse("desk:skin_reports")).content.decode()
    assert visit.patient.last_name in queue
    detail = desk.get(reverse("desk:skin_report", args=[report.pk]))
    assert detail.status_code == 200
    assert AuditEvent.objects.filter(action="skin_report_view").count() == 1
    blank = desk.post(reverse("desk:skin_report", args=[report.pk]), {"note": "  "})
    assert 'id="id_note_error"' in blank.content.decode()
    report.refresh_from_db()
    assert report.status == "open"
    desk.post(reverse("desk:skin_report", args=[report.pk]), {"note": "Called; review booked"})
    report.refresh_from_db()
    assert report.status == "handled"
    assert visit.patient.last_name not in desk.get(reverse("desk:skin_reports")).content.decode()


def test_sending_a_skin_report_twice_files_it_once(clinic: Clinic) -> None:
    client, visit = visit_for(clinic)
    url = reverse("portal:skin_report", args=[visit.pk])
    with time_machine.travel(local(MONDAY + timedelta(days=3), 9), tick=False):
        client.force_login(visit.patient.user)
        form = client.get(url)
        key = form.context["form"].initial["submission"]
        assert f'name="submission" value="{key}"' in form.content.decode()
        sent = {"symptom_pus": "moderate", "notes": "Yellow spots", "submission": key}
        first = client.post(url, sent)
        again = client.post(url, sent)  # a double click, or the page sent again
    report = SkinReport.objects.get()
    assert first["Location"] == again["Location"]
    assert first["Location"] == reverse("portal:skin_report_result", args=[report.pk])


def test_expected_redness_stays_out_of_the_queue(clinic: Clinic) -> None:
    client, visit = visit_for(clinic)
    with time_machine.travel(local(MONDAY + timedelta(days=1), 9), tick=False):
        client.force_login(visit.patient.user)  # days later: the old session has ended
        client.post(reverse("portal:skin_report", args=[visit.pk]), {"symptom_redness": "mild"})
    report = SkinReport.objects.get()
    assert report.action == "expected"
    assert not report.needs_staff
    assert (
        visit.patient.last_name
        not in staff_client().get(reverse("desk:skin_reports")).content.decode()
    )


def test_a_clinic_that_hears_about_every_bruise_gets_it_in_the_queue(clinic: Clinic) -> None:
    ClinicPolicy.objects.create(
        organization=clinic.org, positions={"dispute.bruising_peeling": "call_the_doctor"}
    )
    client, visit = visit_for(clinic)
    with time_machine.travel(local(MONDAY + timedelta(days=1), 9), tick=False):
        client.force_login(visit.patient.user)  # days later: the old session has ended
        client.post(reverse("portal:skin_report", args=[visit.pk]), {"symptom_bruising": "mild"})
    report = SkinReport.objects.get()
    assert report.action == "contact_clinic"  # the pack's default would call it expected
    assert report.needs_staff


@pytest.mark.parametrize(
    ("status", "reportable"),
    [("cancelled", False), ("no_show", False), ("booked", True), ("completed", True)],
)
def test_only_a_visit_that_may_have_happened_takes_a_skin_report(
    clinic: Clinic, status: str, reportable: bool
) -> None:
    client, visit = visit_for(clinic)
    Appointment.objects.filter(pk=visit.pk).update(status=status)  # as the desk left it
    with time_machine.travel(local(MONDAY + timedelta(days=1), 9), tick=False):
        client.force_login(visit.patient.user)
        care = client.get(reverse("portal:visit_care", args=[visit.pk]))
        assert care.context["can_report"] is reportable
        answer = client.post(
            reverse("portal:skin_report", args=[visit.pk]), {"symptom_redness": "severe"}
        )
    assert answer.status_code == (302 if reportable else 404)
    assert SkinReport.objects.filter(appointment=visit).exists() is reportable


@pytest.mark.parametrize(("days_after", "reportable"), [(3000, True), (3700, False)])
def test_a_visit_more_than_ten_years_back_takes_no_skin_report(
    clinic: Clinic, days_after: int, reportable: bool
) -> None:
    # Triage counts days up to ten years; older visits (imported history) are not healing.
    client, visit = visit_for(clinic)
    Appointment.objects.filter(pk=visit.pk).update(status="completed")
    with time_machine.travel(local(MONDAY + timedelta(days=days_after), 9), tick=False):
        client.force_login(visit.patient.user)
        answer = client.post(
            reverse("portal:skin_report", args=[visit.pk]), {"symptom_redness": "mild"}
        )
    assert answer.status_code == (302 if reportable else 404)
    assert SkinReport.objects.filter(appointment=visit).exists() is reportable


@pytest.mark.parametrize(
    ("data", "field", "problem"),
    [
        ({}, None, "Choose at least one"),
        ({"symptom_redness": "mild", "photo": b"GIF89a-not-allowed"}, "photo", "JPEG or PNG"),
        ({"symptom_redness": "extreme"}, "symptom_redness", "valid choice"),
    ],
)
def test_a_bad_report_names_the_problem_and_saves_nothing(
    clinic: Clinic, data: dict[str, object], field: str | None, problem: str
) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile  # noqa: PLC0415

    client, visit = visit_for(clinic)
    if "photo" in data:
        data = {**data, "photo": SimpleUploadedFile("skin.gif", data["photo"])}  # type: ignore[arg-type]
    with time_machine.travel(local(MONDAY + timedelta(days=1), 9), tick=False):
        client.force_login(visit.patient.user)  # days later: the old session has ended
        response = client.post(reverse("portal:skin_report", args=[visit.pk]), data)
    assert response.status_code == 200
    text = response.content.decode()
    assert problem in text
    if field:
        assert f'id="id_{field}_error"' in text
    assert not SkinReport.objects.exists()


def test_a_photo_is_kept_privately_and_shown_to_staff_only(
    clinic: Clinic, settings, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from django.core.files.uploadedfile import SimpleUploadedFile  # noqa: PLC0415

    settings.MEDIA_ROOT = tmp_path
    client, visit = visit_for(clinic)
    with time_machine.travel(local(MONDAY + timedelta(days=2), 9), tick=False):
        client.force_login(visit.patient.user)  # days later: the old session has ended
        client.post(
            reverse("portal:skin_report", args=[visit.pk]),
            {"symptom_blisters": "mild", "photo": SimpleUploadedFile("skin.png", PNG)},
        )
    report = SkinReport.objects.get()
    url = reverse("desk:skin_report_photo", args=[report.pk])
    assert client.get(url).status_code == 403  # the patient is not staff
    response = staff_client().get(url)
    assert b"".join(response.streaming_content) == PNG
    assert AuditEvent.objects.filter(action="skin_report_photo_view").count() == 1


def _png_hiding_a_page() -> bytes:
    import io  # noqa: PLC0415

    from PIL import Image  # noqa: PLC0415
    from PIL.PngImagePlugin import PngInfo  # noqa: PLC0415

    info = PngInfo()
    info.add_text("c", '<meta http-equiv="refresh" content="0;url=https://evil.example/">')
    out = io.BytesIO()
    Image.new("RGB", (4, 3), (200, 120, 110)).save(out, format="PNG", pnginfo=info)
    return out.getvalue()


def test_a_photo_named_as_a_web_page_is_stored_and_served_as_the_image_it_is(
    clinic: Clinic, settings, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from django.core.files.uploadedfile import SimpleUploadedFile  # noqa: PLC0415

    settings.MEDIA_ROOT = tmp_path
    client, visit = visit_for(clinic)
    image = _png_hiding_a_page()
    with time_machine.travel(local(MONDAY + timedelta(days=2), 9), tick=False):
        client.force_login(visit.patient.user)
        client.post(
            reverse("portal:skin_report", args=[visit.pk]),
            {"symptom_blisters": "mild", "photo": SimpleUploadedFile("rash.html", image)},
        )
    report = SkinReport.objects.get()
    # The sender's name is not kept: a valid PNG carrying markup stays a PNG to the desk.
    assert report.photo.name.endswith(".png") and "rash" not in report.photo.name
    desk = staff_client()
    served = desk.get(reverse("desk:skin_report_photo", args=[report.pk]))
    assert served["Content-Type"] == "image/png"
    assert "photo.png" in served["Content-Disposition"]
    assert b"".join(served.streaming_content) == image
    # A photo stored before names were replaced is still served by what its bytes are.
    SkinReport.objects.filter(pk=report.pk).update(photo="skin-reports/old/rash.html")
    (tmp_path / "skin-reports" / "old").mkdir(parents=True)
    (tmp_path / "skin-reports" / "old" / "rash.html").write_bytes(image)
    old = desk.get(reverse("desk:skin_report_photo", args=[report.pk]))
    assert old["Content-Type"] == "image/png"


def test_the_desk_refuses_patients(clinic: Clinic) -> None:
    client, _ = visit_for(clinic)
    assert client.get(reverse("desk:skin_reports")).status_code == 403


def test_after_a_completed_visit_the_patient_rates_their_satisfaction(clinic: Clinic) -> None:
    from microneedling.charting.services import consent_sign  # noqa: PLC0415

    client, visit = visit_for(clinic)
    patient = visit.patient
    consent_sign(patient=patient, signature=f"{patient.first_name} {patient.last_name}", actor=None)
    for status in ("checked_in", "in_progress", "completed"):
        services.appointment_set_status(
            appointment=visit, status=status, actor=None, now=visit.starts_at
        )
    url = reverse("portal:visit_care", args=[visit.pk])
    assert "How satisfied are you" in client.get(url).content.decode()
    missing = client.post(url, {})
    assert 'id="id_satisfaction_error"' in missing.content.decode()
    client.post(url, {"satisfaction": "4"})
    assert visit.scores.get(scale="patient_satisfaction").value == 4
    # The answer is the patient's: the desk neither offers the scale nor may give it for them.
    desk = staff_client()
    visit_page = reverse("desk:visit", args=[visit.pk])
    assert 'value="patient_satisfaction"' not in desk.get(visit_page).content.decode()
    refused = desk.post(
        visit_page, {"action": "score", "scale": "patient_satisfaction", "value": 1}
    )
    assert refused.status_code == 200
    score = visit.scores.get(scale="patient_satisfaction")
    assert (score.value, score.recorded_by) == (4, patient.user)
