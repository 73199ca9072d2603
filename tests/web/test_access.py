"""Roles and object-level access: who sees whose records, and the trail it leaves."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
import requests
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from microneedling.accounts.models import BreakGlassGrant
from microneedling.accounts.services import api_token_issue
from microneedling.audit.models import AuditEvent
from microneedling.charting.models import ProcedureChart
from microneedling.scheduling.models import Appointment
from microneedling.scheduling.selectors import session_move_options
from microneedling.scheduling.services import appointment_book
from tests.web.access_world import World, build_world
from tests.web.conftest import (
    MONDAY,
    Clinic,
    book_course,
    book_visit,
    build_clinic,
    client_of,
    local,
    make_patient,
    make_staff,
)
from tests.web.test_desk_pages import chart_data, lot

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen_now")]


@pytest.fixture
def world(clinic: Clinic, settings, tmp_path) -> World:  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = tmp_path
    return build_world(clinic)


def test_a_patient_gets_not_found_for_another_patients_visit_course_and_report(
    world: World,
) -> None:
    cleo = world.client("patient")
    dan = world.dan
    for url in (
        reverse("portal:course", args=[dan.course.pk]),
        reverse("portal:visit_care", args=[dan.visit.pk]),
        reverse("portal:visit_calendar", args=[dan.visit.pk]),
        reverse("portal:session_move", args=[dan.visit.pk]),
        reverse("portal:skin_report_result", args=[dan.report.pk]),
    ):
        answer = cleo.get(url)
        assert answer.status_code == 404, url
        # The whole name: a random CSRF token on the page may hold the letters "Dan".
        assert "Dan Reyes" not in answer.content.decode(), url
    # Her own open fine.
    assert cleo.get(reverse("portal:course", args=[world.cleo.course.pk])).status_code == 200


def test_a_patient_cannot_open_photos_or_charts_through_the_desk(world: World) -> None:
    cleo = world.client("patient")
    for url in (
        reverse("desk:session_photo", args=[world.cleo.photo.pk]),
        reverse("desk:session_photo", args=[world.dan.photo.pk]),
        reverse("desk:visit", args=[world.dan.visit.pk]),
        reverse("desk:skin_report_photo", args=[world.dan.report.pk]),
        reverse("desk:course_compare", args=[world.dan.course.pk]),
    ):
        answer = cleo.get(url)
        assert answer.status_code == 403, url
        assert not answer.has_header("Content-Disposition")


def test_a_patient_reads_only_their_own_fhir_resources(world: World, live_server) -> None:  # type: ignore[no-untyped-def]
    token = world.token("patient")
    headers = {"Authorization": f"Bearer {token}"}
    base = f"{live_server.url}/fhir/R4"
    for kind, row in (
        ("Appointment", world.dan.visit),
        ("Procedure", world.dan.chart),
        ("Patient", world.dan.patient),
        ("AdverseEvent", world.dan.report),
    ):
        answer = requests.get(f"{base}/{kind}/{row.pk}", headers=headers, timeout=30)
        assert answer.status_code == 404, kind
        assert answer.json()["resourceType"] == "OperationOutcome"
    mine = requests.get(f"{base}/Appointment", headers=headers, timeout=30).json()
    patients = {e["resource"]["participant"][0]["actor"]["reference"] for e in mine["entry"]}
    assert patients == {f"Patient/{world.cleo.patient.pk}"}
    other = requests.get(
        f"{base}/Patient/{world.dan.patient.pk}/$everything", headers=headers, timeout=30
    )
    assert other.status_code == 404


def test_the_front_desk_sees_the_visit_but_not_the_chart_photos_or_reports(world: World) -> None:
    desk = world.client("front_desk")
    page = desk.get(reverse("desk:visit", args=[world.cleo.visit.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Cleo" in html and "Lidocaine" not in html and "session_photo" not in html
    assert "for the patient's clinicians" in html
    for url in (
        reverse("desk:session_photo", args=[world.cleo.photo.pk]),
        reverse("desk:skin_report", args=[world.cleo.report.pk]),
        reverse("desk:screening", args=[world.cleo.screening.pk]),
        reverse("desk:course_compare", args=[world.cleo.course.pk]),
    ):
        assert desk.get(url).status_code == 403, url
    refused = desk.post(reverse("desk:visit", args=[world.cleo.visit.pk]), {"action": "sign"})
    assert refused.status_code == 403


def test_a_provider_sees_the_chart_of_their_locations_patients_only(world: World) -> None:
    ada = world.client("provider")
    page = ada.get(reverse("desk:visit", args=[world.cleo.visit.pk]))
    assert page.status_code == 200 and "Lidocaine" in page.content.decode()
    elsewhere = ada.get(reverse("desk:visit", args=[world.eve.visit.pk]))
    assert elsewhere.status_code == 403
    assert "Eve Long" not in elsewhere.content.decode()  # (a CSRF token may hold "Eve")
    assert "break-glass" in elsewhere.content.decode()  # the form's action


def test_the_desk_cannot_mark_or_move_another_locations_visit_of_a_patient_it_sees(
    clinic: Clinic,
) -> None:
    # Cleo is one of Riverbend's patients (a visit there) and has a course at Eastside.
    east = build_clinic(name="Eastside")
    cleo = make_patient(clinic)
    book_visit(clinic, cleo, local(MONDAY + timedelta(days=2), 15), service=clinic.consultation)
    course = book_course(east, cleo)
    there = Appointment.objects.get(course_session__course=course, course_session__number=2)
    single = appointment_book(
        patient=cleo,
        service=east.consultation,
        location=east.location,
        provider=east.ben,
        starts_at=local(MONDAY + timedelta(days=3), 10),
    )
    desk = client_of(make_staff("ida", "front_desk", locations=[clinic.location]))
    # She may read the visit (her record is in scope), without Eastside's diary actions.
    page = desk.get(reverse("desk:visit", args=[there.pk]))
    assert page.status_code == 200
    assert reverse("desk:visit_status", args=[there.pk]) not in page.content.decode()
    assert reverse("desk:visit_move", args=[there.pk]) not in page.content.decode()
    for status in ("cancelled", "entered_in_error"):
        refused = desk.post(reverse("desk:visit_status", args=[single.pk]), {"status": status})
        assert refused.status_code == 403
    refused = desk.post(
        reverse("desk:visit_status", args=[single.pk]),
        {"status": "cancelled"},
        HTTP_HX_REQUEST="true",
    )
    assert refused.status_code == 403
    before = there.starts_at
    assert desk.get(reverse("desk:visit_move", args=[there.pk])).status_code == 403
    target = session_move_options(there, now=timezone.now())[0].isoformat()
    moved = desk.post(
        reverse("desk:visit_move", args=[there.pk]), {"starts_at": target, "action": "apply"}
    )
    assert moved.status_code == 403
    single.refresh_from_db()
    there.refresh_from_db()
    assert single.status == there.status == "booked" and there.starts_at == before
    assert single.reservations.filter(active=True).exists()
    # Eastside's own desk still does it.
    east_desk = client_of(make_staff("erin", "front_desk", locations=[east.location]))
    east_desk.post(reverse("desk:visit_status", args=[single.pk]), {"status": "cancelled"})
    single.refresh_from_db()
    assert single.status == "cancelled"


def test_a_provider_charts_only_visits_where_they_work_or_that_were_their_own(
    clinic: Clinic,
) -> None:
    # Cleo is a Riverbend patient (a visit there) treated at Eastside by its own Ada.
    east = build_clinic(name="Eastside")
    cleo = make_patient(clinic)
    book_visit(clinic, cleo, local(MONDAY + timedelta(days=2), 15), service=clinic.consultation)
    there = appointment_book(
        patient=cleo,
        service=east.treatment,
        location=east.location,
        provider=east.ada,
        starts_at=local(MONDAY + timedelta(days=3), 10),
    )
    cartridge = lot(east)
    ada = client_of(make_staff("ada.quill", "provider", provider=clinic.ada, locations=[]))
    url = reverse("desk:visit", args=[there.pk])
    page = ada.get(url)
    assert page.status_code == 200 and 'value="chart"' not in page.content.decode()
    for data in (
        chart_data(east, cartridge),
        {"action": "score", "scale": "gais", "value": 2},
    ):
        assert ada.post(url, data).status_code == 403
    assert not ProcedureChart.objects.filter(appointment=there).exists()
    assert not there.scores.exists()
    # Eastside's provider of the visit charts it.
    own = client_of(make_staff("ada.east", "provider", provider=east.ada, locations=[]))
    own.post(url, chart_data(east, cartridge))
    assert ProcedureChart.objects.filter(appointment=there).exists()


def test_break_glass_opens_one_record_for_an_hour_with_the_reason_audited(world: World) -> None:
    ada = world.client("provider")
    url = reverse("desk:visit", args=[world.eve.visit.pk])
    glass = reverse("desk:break_glass", args=[world.eve.patient.pk])
    too_short = ada.post(glass, {"reason": "need", "next": url})
    assert too_short.status_code == 302 and not BreakGlassGrant.objects.exists()
    reason = "Eve called with a severe reaction; her own clinic is closed tonight"
    opened = ada.post(glass, {"reason": reason, "next": url})
    assert opened.status_code == 302 and opened["Location"] == url
    assert ada.get(url).status_code == 200
    event = AuditEvent.objects.get(action="break_glass")
    assert event.reason == reason and event.role == "provider"
    assert event.object_id == str(world.eve.patient.pk)
    # Dan's record, never asked for, stays closed (he is Riverbend's, so pick Eve's only).
    assert ada.get(reverse("desk:visit", args=[world.eve.visit.pk])).status_code == 200
    # The front desk cannot break the glass at all.
    desk = world.client("front_desk")
    assert desk.post(glass, {"reason": reason}).status_code == 403


def test_every_read_of_a_chart_leaves_an_audit_row_with_role_and_address(world: World) -> None:
    ada = world.client("provider")
    before = AuditEvent.objects.count()
    for _ in range(3):
        ada.get(reverse("desk:visit", args=[world.cleo.visit.pk]), REMOTE_ADDR="10.1.2.3")
    rows = AuditEvent.objects.filter(action="visit_view").order_by("pk")
    assert AuditEvent.objects.count() == before + 3 and rows.count() == 3
    assert {(r.role, r.ip, r.actor.username, r.object_id) for r in rows} == {
        ("provider", "10.1.2.3", "ada.quill", str(world.cleo.patient.pk))
    }


def test_charts_consents_and_scores_read_in_the_admin_are_audited_per_patient(
    world: World,
) -> None:
    root = world.client("superuser")
    charts = {world.cleo.chart.pk: world.cleo.patient.pk, world.eve.chart.pk: world.eve.patient.pk}
    listing = root.get(reverse("admin:charting_procedurechart_changelist"))
    assert listing.status_code == 200
    listed = AuditEvent.objects.filter(action="admin_list", role="superuser")
    # Every patient whose chart the page shows, each with the charts of theirs it showed.
    shown = {int(e.object_id): e.details["procedurechart"] for e in listed}
    for chart, patient in charts.items():
        assert chart in shown[patient]
    page = root.get(
        reverse("admin:charting_procedurechart_change", args=[world.eve.chart.pk]),
        REMOTE_ADDR="10.9.8.7",
    )
    assert page.status_code == 200
    [opened] = AuditEvent.objects.filter(action="admin_view")
    assert (opened.object_id, opened.ip, opened.details["procedurechart"]) == (
        str(world.eve.patient.pk),
        "10.9.8.7",
        world.eve.chart.pk,
    )
    # A row that is not there shows nobody and names nobody.
    missing = root.get(reverse("admin:charting_procedurechart_change", args=[999999]))
    assert missing.status_code == 302
    assert AuditEvent.objects.filter(action="admin_view").count() == 1


def test_the_auditor_searches_the_trail_and_nobody_else_may(world: World) -> None:
    world.client("provider").get(reverse("desk:visit", args=[world.cleo.visit.pk]))
    auditor = world.client("auditor")
    page = auditor.get(reverse("audit:search"), {"patient": world.cleo.patient.pk})
    assert page.status_code == 200
    events = list(page.context["page"])
    assert events and all(e.object_id == str(world.cleo.patient.pk) for e in events)
    assert "ada.quill" in page.content.decode()
    assert AuditEvent.objects.filter(action="audit_search", actor__username="aud.it").exists()
    for role in ("front_desk", "provider", "clinic_admin", "patient"):
        assert world.client(role).get(reverse("audit:search")).status_code in (302, 403), role
    # The auditor reads the trail, not the records.
    assert auditor.get(reverse("desk:visit", args=[world.cleo.visit.pk])).status_code == 403


def test_a_patient_sees_who_opened_their_record(world: World) -> None:
    world.client("provider").get(reverse("desk:visit", args=[world.cleo.visit.pk]))
    page = world.client("patient").get(reverse("portal:record"))
    rows = page.context["rows"]
    assert [(r["who"], r["role"], r["what"]) for r in rows] == [
        ("ada.quill", "Provider", "visit view")
    ]


def test_the_record_pdf_keeps_accented_names_and_folds_only_what_its_font_lacks(
    world: World,
) -> None:
    patient = world.cleo.patient
    patient.first_name, patient.last_name = "Zoë", "Núñez-Őrs"
    patient.save(update_fields=["first_name", "last_name"])
    pdf = world.client("patient").get(reverse("portal:record_pdf")).content
    # Latin-1 letters are written as they are; "Ő", outside it, becomes its base letter.
    assert "Zoë Núñez-Ors".encode("latin-1") in pdf
    assert b"?" not in pdf.split(b"Zo", 1)[1][:20]


def test_a_patient_downloads_their_whole_record_as_pdf_and_fhir(world: World) -> None:
    cleo = world.client("patient")
    pdf = cleo.get(reverse("portal:record_pdf"))
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-") and b"Cleo Marsh" in pdf.content
    assert b"Dan" not in pdf.content
    bundle = json.loads(cleo.get(reverse("portal:record_fhir")).content)
    assert bundle["resourceType"] == "Bundle"
    types = {e["resource"]["resourceType"] for e in bundle["entry"]}
    assert {"Patient", "Appointment", "Procedure"} <= types
    references = json.dumps(bundle)
    assert f'Patient/{world.dan.patient.pk}"' not in references


def test_the_api_refuses_staff_changing_another_locations_visit_of_a_patient_they_see(
    clinic: Clinic, client: Client
) -> None:
    # As on the desk's pages: Cleo is Riverbend's patient with a course at Eastside.
    east = build_clinic(name="Eastside")
    cleo = make_patient(clinic)
    book_visit(clinic, cleo, local(MONDAY + timedelta(days=2), 15), service=clinic.consultation)
    course = book_course(east, cleo)
    there = Appointment.objects.get(course_session__course=course, course_session__number=2)
    before = there.starts_at
    target = session_move_options(there, now=timezone.now())[0].isoformat()
    ours = api_token_issue(user=make_staff("ida", "front_desk", locations=[clinic.location]))
    theirs = api_token_issue(user=make_staff("erin", "front_desk", locations=[east.location]))

    def post(token: str, action: str, body: dict[str, object]) -> Any:
        return client.post(
            f"/api/v1/appointments/{there.pk}/{action}",
            data=json.dumps(body),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )

    for action, body in (
        ("status", {"status": "cancelled", "reason": "phoned"}),
        ("status", {"status": "entered_in_error", "reason": "wrong patient"}),
        ("move", {"starts_at": target, "apply": True}),
        ("replace", {"status": "cancelled", "apply": True}),
    ):
        refused = post(ours, action, body)
        assert refused.status_code == 403, action
        assert "location" in refused.json()["detail"], action
    there.refresh_from_db()
    assert there.status == "booked" and there.starts_at == before
    assert there.reservations.filter(active=True).exists()
    # Eastside's own desk may.
    assert post(theirs, "status", {"status": "cancelled", "reason": "phoned"}).status_code == 200
    there.refresh_from_db()
    assert there.status == "cancelled"


def test_a_tokens_user_comes_with_their_role_and_a_patients_token_is_still_a_patients(
    clinic: Clinic, django_assert_num_queries
) -> None:
    # The membership is read with the token (one query), and a patient's token, which has
    # none, still finds the patient.
    from django.contrib.auth import get_user_model  # noqa: PLC0415

    from microneedling.accounts.access import Role, organization_id, role_of  # noqa: PLC0415
    from microneedling.accounts.services import api_token_issue, api_token_user  # noqa: PLC0415
    from tests.web.conftest import make_patient, make_staff  # noqa: PLC0415

    operator = make_staff("op", "chain_operator")
    secret = api_token_issue(user=operator)
    with django_assert_num_queries(1):
        user = api_token_user(secret)
        assert user is not None
        assert role_of(user) == Role.CHAIN_OPERATOR
        assert organization_id(user) == clinic.location.organization_id
    patient = make_patient(clinic)
    patient.user = get_user_model().objects.create_user("cleo.marsh")
    patient.save(update_fields=["user"])
    user = api_token_user(api_token_issue(user=patient.user))
    assert user is not None and role_of(user) == Role.PATIENT
