"""Closing an account, keeping what the law requires, erasing it afterwards."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from microneedling.accounts.models import ApiToken
from microneedling.audit.models import AuditEvent
from microneedling.charting.models import ProcedureChart, SessionPhoto
from microneedling.core.errors import BookingRefused
from microneedling.core.retention import add_years
from microneedling.notifications.models import CalendarFeed
from microneedling.patients.closure import records_erase_due
from microneedling.patients.models import Patient
from microneedling.scheduling.models import Appointment, AppointmentRequest, Reservation
from microneedling.scheduling.services import appointment_request_create
from tests.web.access_world import World, build_world
from tests.web.conftest import MONDAY, NOW, Clinic, book_course, local

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen_now")]
PASSWORD = "seven quiet herons 3"  # noqa: S105 (a test account's)


@pytest.fixture
def world(clinic: Clinic, settings, tmp_path) -> World:  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = tmp_path
    built = build_world(clinic)
    built.users["patient"].set_password(PASSWORD)
    built.users["patient"].save()
    return built


def _close(world: World) -> Client:
    client = world.client("patient")
    world.token("patient")
    answer = client.post(
        reverse("portal:close_account"), {"password": PASSWORD, "understood": "on"}
    )
    assert answer.status_code == 302 and answer["Location"] == reverse("web:home")
    return client


def test_closing_needs_the_password_and_changes_nothing_without_it(world: World) -> None:
    client = world.client("patient")
    wrong = client.post(reverse("portal:close_account"), {"password": "nope", "understood": "on"})
    assert "not your password" in wrong.content.decode()
    world.cleo.patient.refresh_from_db()
    assert world.cleo.patient.closed_at is None
    assert Appointment.objects.filter(patient=world.cleo.patient, status="booked").exists()


def test_closing_cancels_visits_removes_the_login_and_keeps_the_medical_record(
    world: World,
) -> None:
    cleo = world.cleo.patient
    CalendarFeed.objects.create(patient=cleo, token_hash="d" * 64)
    client = _close(world)
    cleo.refresh_from_db()
    assert cleo.closed_at == NOW and cleo.phone == ""
    # Seven years after the last treatment; never treated here, so seven from closing.
    assert cleo.retain_until == add_years(NOW.date(), 7)
    assert not Appointment.objects.filter(patient=cleo, status="booked").exists()
    assert not Reservation.objects.filter(appointment__patient=cleo, active=True).exists()
    user = get_user_model().objects.get(pk=cleo.user_id)
    assert not user.is_active and not user.has_usable_password() and user.email == ""
    assert not ApiToken.objects.filter(user=user).exists()
    assert not CalendarFeed.objects.filter(patient=cleo).exists()
    assert client.get(reverse("portal:home")).status_code == 302  # signed out everywhere
    # What the law keeps is still there, and still readable by her clinicians.
    assert ProcedureChart.objects.filter(appointment__patient=cleo).exists()
    assert (
        world.client("provider").get(reverse("desk:visit", args=[world.cleo.visit.pk])).status_code
        == 200
    )
    assert AuditEvent.objects.filter(action="account_close", object_id=str(cleo.pk)).exists()


def test_after_closing_nothing_new_is_booked_or_left_waiting_for_the_patient(
    world: World, clinic: Clinic
) -> None:
    cleo = world.cleo.patient
    desk = world.client("front_desk")
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {world.token('front_desk')}"}

    def cleos_open_requests() -> list[int]:
        listed = desk.get("/api/v1/appointment-requests", **bearer)
        assert listed.status_code == 200
        return [r["id"] for r in listed.json() if r["patient_id"] == cleo.pk]

    assert cleos_open_requests() == [world.request_id]
    _close(world)
    assert cleos_open_requests() == []
    waiting = AppointmentRequest.objects.get(pk=world.request_id)
    assert (waiting.status, waiting.decision_reason) == ("declined", "account_closed")
    booking = {
        "patient_id": cleo.pk,
        "location_id": clinic.location.pk,
        "service_id": clinic.treatment.pk,
        "provider_id": clinic.ada.pk,
        "starts_at": local(MONDAY, 15).isoformat(),
    }
    answer = desk.post(
        "/api/v1/appointments", json.dumps(booking), content_type="application/json", **bearer
    )
    assert answer.status_code == 422
    assert "closed their account" in answer.content.decode()
    assert not Appointment.objects.filter(patient=cleo, status="booked").exists()
    cleo.refresh_from_db()
    with pytest.raises(BookingRefused, match="closed their account"):
        book_course(clinic, cleo)
    with pytest.raises(BookingRefused, match="closed their account"):
        appointment_request_create(
            patient=cleo,
            location=clinic.location,
            service=clinic.treatment,
            reason="patient_request",
            payload={},
        )


def test_closing_declines_a_request_a_provider_approved_and_the_desk_stops_listing_it(
    world: World,
) -> None:
    cleo = world.cleo.patient
    # A provider approved the screening it waited for: the request is ready to book.
    AppointmentRequest.objects.filter(pk=world.request_id).update(status="approved")
    desk = world.client("front_desk")
    assert "Approved" in desk.get(reverse("desk:requests")).content.decode()
    _close(world)
    ready = AppointmentRequest.objects.get(pk=world.request_id)
    assert (ready.status, ready.decision_reason) == ("declined", "account_closed")
    listed = desk.get(reverse("desk:requests")).content.decode()
    assert cleo.last_name not in listed and "No requests to act on" in listed


def test_the_sweep_erases_records_only_after_their_retention_and_keeps_the_trail(
    world: World, settings
) -> None:  # type: ignore[no-untyped-def]
    _close(world)
    cleo = Patient.objects.get(pk=world.cleo.patient.pk)
    photo_path = world.cleo.photo.file.path
    early = records_erase_due(today=cleo.retain_until - timedelta(days=1), apply=True)
    assert early.patients == 0 and Patient.objects.filter(pk=cleo.pk).exists()
    counted = records_erase_due(today=cleo.retain_until)
    assert counted.patients == 1 and counted.photos == 2
    assert Patient.objects.filter(pk=cleo.pk).exists()  # a dry run erases nothing
    erased = records_erase_due(today=cleo.retain_until, apply=True)
    assert erased.patients == 1
    assert not Patient.objects.filter(pk=cleo.pk).exists()
    assert not SessionPhoto.objects.filter(pk=world.cleo.photo.pk).exists()
    import os  # noqa: PLC0415

    assert not os.path.exists(photo_path)
    # Dan's record is untouched; the trail still says what happened to Cleo's, by number.
    assert Patient.objects.filter(pk=world.dan.patient.pk).exists()
    assert AuditEvent.objects.filter(action="record_erase", object_id=str(cleo.pk)).exists()
    assert AuditEvent.objects.filter(action="account_close", object_id=str(cleo.pk)).exists()
    assert timezone.now() == NOW


def test_a_visit_marked_treated_after_closing_keeps_the_record_for_its_retention(
    world: World, clinic: Clinic
) -> None:
    cleo = world.cleo.patient

    def visit_at(starts: datetime, status: str) -> Appointment:
        return Appointment.objects.create(
            patient=cleo,
            service=clinic.treatment,
            location=clinic.location,
            provider=clinic.ada,
            starts_at=starts,
            ends_at=starts + timedelta(hours=1),
            status=status,
        )

    visit_at(NOW - timedelta(days=7 * 366), "completed")  # her last treatment till now
    # Seen two days ago, but the desk had not marked the visit yet when she closed.
    seen = visit_at(NOW - timedelta(days=2), "booked")
    _close(world)
    closed = Patient.objects.get(pk=cleo.pk)
    Appointment.objects.filter(pk=seen.pk).update(status="completed")  # the desk catches up
    swept = records_erase_due(today=closed.retain_until, apply=True)
    assert swept.patients == 0 and Patient.objects.filter(pk=cleo.pk).exists()
    kept = Patient.objects.get(pk=cleo.pk)
    # The stored date now counts the treatment, so later sweeps wait for it too.
    assert kept.retain_until > closed.retain_until
    assert kept.retain_until >= add_years((NOW - timedelta(days=2)).date(), 7)


def test_erasing_a_record_withdraws_the_exports_that_hold_it_and_keeps_the_others(
    world: World, settings
) -> None:  # type: ignore[no-untyped-def]
    from pathlib import Path  # noqa: PLC0415

    from microneedling.accounts.services import api_token_issue  # noqa: PLC0415
    from microneedling.interop.export import export_folder, export_run  # noqa: PLC0415
    from microneedling.interop.models import ExportJob  # noqa: PLC0415
    from tests.web.conftest import make_superuser  # noqa: PLC0415

    root = make_superuser("export.root")
    holding, directory = (
        ExportJob.objects.create(types=types, created_by=root, request_url="http://testserver/")
        for types in (["Patient", "Appointment"], ["Location"])
    )
    assert export_run(holding.pk) == export_run(directory.pk) == "done"
    cleo_id = world.cleo.patient.pk
    assert f'"id":"{cleo_id}"' in (export_folder(holding) / "Patient.ndjson").read_text()
    _close(world)
    cleo = Patient.objects.get(pk=cleo_id)
    assert records_erase_due(today=cleo.retain_until, apply=True).patients == 1

    # The export made while Cleo's record existed is gone with it, files and all...
    holding.refresh_from_db()
    assert holding.status == ExportJob.Status.FAILED
    assert not Path(export_folder(holding)).exists()
    headers = {"HTTP_AUTHORIZATION": f"Bearer {api_token_issue(user=root)}"}
    download = Client().get(
        f"/fhir/R4/$export-file/{holding.pk}/Patient.ndjson",
        **headers,  # type: ignore[arg-type]
    )
    assert download.status_code == 404
    # ...and one that holds no patient's record stays.
    directory.refresh_from_db()
    assert directory.status == ExportJob.Status.DONE
    assert (export_folder(directory) / "Location.ndjson").exists()


def test_retention_counts_from_the_local_day_of_the_last_treatment(
    world: World, clinic: Clinic, settings
) -> None:  # type: ignore[no-untyped-def]
    # Tokyo's 00:30 on 10 February is still 9 February in UTC: counted from the UTC day,
    # the sweep would erase the record a day before the law allows.
    clinic.location.timezone = "Asia/Tokyo"
    clinic.location.save(update_fields=["timezone"])
    cleo = world.cleo.patient
    starts = datetime(2027, 2, 10, 0, 30, tzinfo=ZoneInfo("Asia/Tokyo"))
    Appointment.objects.create(
        patient=cleo,
        service=clinic.treatment,
        location=clinic.location,
        provider=clinic.ada,
        starts_at=starts,
        ends_at=starts + timedelta(hours=1),
        status="completed",
    )
    _close(world)
    years = settings.MICRONEEDLING["RETENTION"]["ADULT_YEARS"]
    kept_until = add_years(date(2027, 2, 10), years)
    assert Patient.objects.get(pk=cleo.pk).retain_until == kept_until
    swept = records_erase_due(today=kept_until - timedelta(days=1), apply=True)
    assert swept.patients == 0 and Patient.objects.filter(pk=cleo.pk).exists()


def test_erasing_a_record_takes_the_patients_name_out_of_the_rehoming_reports_that_list_them(
    world: World, clinic: Clinic
) -> None:
    from microneedling.scheduling.models import RehomingRun  # noqa: PLC0415

    cleo, dan = world.cleo, world.dan

    def listed(record: object, name: str) -> dict[str, object]:
        return {"appointment": record.visit.pk, "patient": name}  # type: ignore[attr-defined]

    # A closure run from the desk lists each visit it moved or left behind by the patient's name.
    run = RehomingRun.objects.create(
        operation=RehomingRun.Operation.CLOSE_LOCATION,
        location=clinic.location,
        from_date=MONDAY,
        status=RehomingRun.Status.DONE,
        report={
            "moves": [listed(cleo, "Cleo Marsh") | {"to": "Eastside"}, listed(dan, "Dan Reyes")],
            "stuck_visits": [listed(cleo, "Cleo Marsh") | {"reason": "no room"}],
        },
    )
    _close(world)
    closed = Patient.objects.get(pk=cleo.patient.pk)
    assert records_erase_due(today=closed.retain_until, apply=True).patients == 1

    run.refresh_from_db()
    assert "Cleo" not in json.dumps(run.report) and "Marsh" not in json.dumps(run.report)
    # The rest of the report stays: the visits by number, and the others' names.
    assert [m["appointment"] for m in run.report["moves"]] == [cleo.visit.pk, dan.visit.pk]
    assert run.report["moves"][0]["to"] == "Eastside"
    assert run.report["moves"][1]["patient"] == "Dan Reyes"
    assert run.report["stuck_visits"][0]["reason"] == "no room"
