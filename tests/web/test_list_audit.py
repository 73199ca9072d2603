"""Pages and answers that show several patients at once, or one patient's visits while
changing nothing, leave one audit event per patient shown: the day sheet, the desk's queues,
the requests over the API, move previews, a refused status change, and each download of a
bulk export. Each event names the patient, so it is in the patient's own access log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from microneedling.accounts.services import api_token_issue
from microneedling.aftercare.models import SkinReport
from microneedling.audit.models import AuditEvent
from microneedling.audit.selectors import patient_access_log
from microneedling.interop.export import export_run
from microneedling.patients.models import Patient, Screening
from microneedling.scheduling import services
from microneedling.scheduling.models import Appointment, AppointmentRequest
from tests.web.conftest import (
    MONDAY,
    Clinic,
    book_course,
    build_clinic,
    client_of,
    local,
    make_patient,
    make_staff,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen_now")]


def _visit(clinic: Clinic, patient: Patient, hour: int, *, service=None) -> Appointment:  # type: ignore[no-untyped-def]
    return services.appointment_book(
        patient=patient,
        service=service or clinic.treatment,
        location=clinic.location,
        provider=clinic.ada,
        starts_at=local(MONDAY, hour),
    )


def _seen(action: str) -> dict[int, dict[str, Any]]:
    """The patients an action's events name, with each event's details."""
    events = AuditEvent.objects.filter(action=action, object_type="patient")
    assert events.count() == len({e.object_id for e in events}), "one event per patient"
    return {int(e.object_id): e.details for e in events}


def test_the_day_sheet_audits_each_patient_it_names_with_their_visits(clinic: Clinic) -> None:
    cleo, dan = make_patient(clinic), make_patient(clinic, name="Dan Reyes")
    # A treatment and a consultation (two treatments of the face in a day would be refused).
    cleo_visits = [_visit(clinic, cleo, 9), _visit(clinic, cleo, 15, service=clinic.consultation)]
    dan_visit = _visit(clinic, dan, 12)
    elsewhere = build_clinic(name="Eastside")
    _visit(elsewhere, make_patient(elsewhere, name="Eve Long"), 10)  # not on this sheet
    desk = make_staff("ida.front", "front_desk", locations=[clinic.location])

    page = client_of(desk).get(
        reverse("desk:day_sheet", args=[clinic.location.slug]), {"day": MONDAY.isoformat()}
    )
    assert page.status_code == 200 and "Dan" in page.content.decode()
    seen = _seen("day_sheet_view")
    assert set(seen) == {cleo.pk, dan.pk}
    assert sorted(seen[cleo.pk]["appointments"]) == sorted(v.pk for v in cleo_visits)
    assert seen[dan.pk] == {
        "location": clinic.location.pk,
        "day": MONDAY.isoformat(),
        "appointments": [dan_visit.pk],
    }
    event = patient_access_log(dan.pk).get(action="day_sheet_view")
    assert event.actor == desk and event.role == "front_desk"


def test_an_empty_day_sheet_audits_no_one(clinic: Clinic) -> None:
    _visit(clinic, make_patient(clinic), 10)
    desk = make_staff("ida.front", "front_desk", locations=[clinic.location])
    other_day = MONDAY.replace(day=MONDAY.day + 1)
    client_of(desk).get(
        reverse("desk:day_sheet", args=[clinic.location.slug]), {"day": other_day.isoformat()}
    )
    assert not AuditEvent.objects.filter(action="day_sheet_view").exists()


def _pending_screening(patient: Patient) -> Screening:
    screening = patient.screenings.get()
    Screening.objects.filter(pk=screening.pk).update(review=Screening.Review.PENDING)
    return screening


def _skin_report(patient: Patient, visit: Appointment) -> SkinReport:
    return SkinReport.objects.create(
        patient=patient,
        appointment=visit,
        day=2,
        symptoms=[],
        action=SkinReport.Action.CONTACT_CLINIC,
        result={},
    )


def _request(clinic: Clinic, patient: Patient) -> AppointmentRequest:
    return services.appointment_request_create(
        patient=patient,
        location=clinic.location,
        service=clinic.treatment,
        provider=None,
        reason="patient_request",
        payload={},
    )


@pytest.mark.parametrize(
    ("page", "action", "what", "role"),
    [
        ("desk:screenings", "screenings_view", "screenings", "provider"),
        ("desk:skin_reports", "skin_reports_view", "skin_reports", "provider"),
        ("desk:requests", "requests_view", "requests", "front_desk"),
    ],
)
def test_each_desk_queue_audits_every_patient_it_lists(
    clinic: Clinic, page: str, action: str, what: str, role: str
) -> None:
    cleo, dan = make_patient(clinic), make_patient(clinic, name="Dan Reyes")
    shown = {}
    for hour, patient in ((9, cleo), (12, dan)):
        visit = _visit(clinic, patient, hour)
        row: Any = {
            "screenings": lambda p=patient: _pending_screening(p),
            "skin_reports": lambda p=patient, v=visit: _skin_report(p, v),
            "requests": lambda p=patient: _request(clinic, p),
        }[what]()
        shown[patient.pk] = [row.pk]
    staff = make_staff(
        "staff",
        role,
        locations=[clinic.location],
        provider=clinic.ada if role == "provider" else None,
    )

    answer = client_of(staff).get(reverse(page))
    assert answer.status_code == 200 and "Dan" in answer.content.decode()
    assert {patient: details[what] for patient, details in _seen(action).items()} == shown


def test_the_requests_list_over_the_api_audits_every_patient_it_returns(clinic: Clinic) -> None:
    cleo = make_patient(clinic)
    request = _request(clinic, cleo)
    token = api_token_issue(user=make_staff("ida.front", "front_desk", locations=[clinic.location]))
    answer = Client().get("/api/v1/appointment-requests", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert answer.status_code == 200 and [r["id"] for r in answer.json()] == [request.pk]
    assert _seen("requests_view") == {cleo.pk: {"requests": [request.pk]}}


def test_a_move_previewed_by_staff_is_audited_and_one_by_the_patient_is_not(
    clinic: Clinic,
) -> None:
    cleo = make_patient(clinic)
    course = book_course(clinic, cleo)
    second = course.sessions.order_by("number")[1].appointments.get()
    body = json.dumps({"starts_at": second.starts_at.isoformat(), "apply": False})
    url = f"/api/v1/appointments/{second.pk}/move"
    desk = make_staff("ida.front", "front_desk", locations=[clinic.location])
    cleo.user = get_user_model().objects.create_user(username=cleo.email, password=None)
    cleo.save(update_fields=["user"])
    for user in (cleo.user, desk):
        token = api_token_issue(user=user)
        answer = Client().post(
            url, body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
        )
        assert answer.status_code == 200, answer.content
    events = AuditEvent.objects.filter(action="visit_view_schedule_only", object_id=str(cleo.pk))
    assert [(e.actor, e.details) for e in events] == [
        (desk, {"appointment": second.pk, "preview": True})
    ]

    # The desk's move page shows the same sessions, so opening it is audited too.
    page = client_of(desk).get(reverse("desk:visit_move", args=[second.pk]))
    assert page.status_code == 200
    assert events.filter(details__move=True).count() == 1


def test_a_refused_status_change_from_the_day_sheet_audits_the_row_it_shows(
    clinic: Clinic,
) -> None:
    cleo = make_patient(clinic)
    visit = _visit(clinic, cleo, 10)
    desk = make_staff("ida.front", "front_desk", locations=[clinic.location])
    row = client_of(desk).post(
        reverse("desk:visit_status", args=[visit.pk]), {"status": "bogus"}, HTTP_HX_REQUEST="true"
    )
    assert "Not changed" in row.content.decode() and cleo.first_name in row.content.decode()
    event = patient_access_log(cleo.pk).get(action="visit_view_schedule_only")
    assert event.details == {"appointment": visit.pk, "refused_status": "bogus"}


def test_each_download_of_an_export_file_is_audited_for_every_patient_in_it(
    clinic: Clinic, settings: Any, tmp_path: Path
) -> None:
    settings.MEDIA_ROOT = tmp_path
    cleo, dan = make_patient(clinic), make_patient(clinic, name="Dan Reyes")
    _visit(clinic, cleo, 9)
    _visit(clinic, dan, 12)
    operator = make_staff("otto", "chain_operator")
    headers = {"HTTP_AUTHORIZATION": f"Bearer {api_token_issue(user=operator)}"}
    kickoff = Client().get("/fhir/R4/$export?_type=Appointment,Location", **headers)  # type: ignore[arg-type]
    job_id = int(kickoff["Content-Location"].rsplit("/", 1)[1])
    assert export_run(job_id) == "done"

    for type_name in ("Appointment", "Location"):
        answer = Client().get(f"/fhir/R4/$export-file/{job_id}/{type_name}.ndjson", **headers)  # type: ignore[arg-type]
        assert answer.status_code == 200
    assert _seen("fhir_export_download") == {
        cleo.pk: {"export": job_id, "type": "Appointment"},
        dan.pk: {"export": job_id, "type": "Appointment"},
    }
    assert patient_access_log(dan.pk).filter(actor=operator).count() == 1
    # The file itself is still recorded once, as before.
    assert (
        AuditEvent.objects.filter(action="fhir_export_download", object_type="export").count() == 2
    )


@pytest.mark.parametrize("output", ["--json", "--csv"])
def test_a_closure_report_from_the_command_line_audits_every_patient_it_names(
    clinic: Clinic, output: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from microneedling.cli import main  # noqa: PLC0415

    cleo, dan = make_patient(clinic), make_patient(clinic, name="Dan Reyes")
    visits = {cleo.pk: [_visit(clinic, cleo, 9).pk], dan.pk: [_visit(clinic, dan, 12).pk]}
    where = ["--csv", str(tmp_path / "moves.csv")] if output == "--csv" else ["--json"]
    command = ["close-location", clinic.location.slug, "--from", "2027-03-01", "--dry-run"]
    assert main([*command, *where]) == 0
    assert "Dan Reyes" in capsys.readouterr().out + (
        (tmp_path / "moves.csv").read_text() if output == "--csv" else ""
    )
    seen = _seen("rehoming_report_view")
    assert {patient: details["appointments"] for patient, details in seen.items()} == visits
    assert {d["via"] for d in seen.values()} == {"command line"}
    assert all(d["os_user"] and d["operation"] == "location_close" for d in seen.values())


def test_a_closure_summary_that_names_no_one_audits_no_one(
    clinic: Clinic, capsys: pytest.CaptureFixture[str]
) -> None:
    from microneedling.cli import main  # noqa: PLC0415

    patient = make_patient(clinic, name="Dan Reyes")
    _visit(clinic, patient, 9)
    assert main(["close-location", clinic.location.slug, "--from", "2027-03-01", "--dry-run"]) == 0
    assert "Dan" not in capsys.readouterr().out
    assert _seen("rehoming_report_view") == {}
