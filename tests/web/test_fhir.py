"""The FHIR R4 API over real HTTP on the demo clinic: every resource validates with the
fhir.resources R4B models, a real FHIR client (fhirpy) searches, pages, reads $everything and
books from a Slot, and bad requests answer a 400 OperationOutcome, never a 500."""

from __future__ import annotations

import importlib
import json
from datetime import datetime, timedelta
from typing import Any

import pytest
import requests
from django.apps import apps as django_apps
from django.contrib.auth import get_user_model
from django.utils import timezone
from fhir.resources.R4B import get_fhir_model_class
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import OperationOutcome as ClientOutcome

from microneedling.accounts.services import api_token_issue
from microneedling.aftercare.services import skin_report_file
from microneedling.audit.models import AuditEvent
from microneedling.charting.services import chart_sign, chart_write, score_record
from microneedling.core.knowledge import load_pack
from microneedling.core.triage import SymptomReport
from microneedling.demo_clinic import load_demo
from microneedling.directory.models import CartridgeLot, Device
from microneedling.interop.fhir.views import ALL_TYPES
from microneedling.patients.models import Patient
from microneedling.scheduling.models import Appointment
from microneedling.scheduling.services import appointment_cancel

pytestmark = pytest.mark.django_db(transaction=True)


def _clinical_records() -> None:
    """The demo books future visits; give three patients a past, charted, scored and
    reported visit so every clinical type has rows to emit."""
    staff = get_user_model().objects.get(username="clinicadmin")
    for visit in Appointment.objects.filter(status="booked").order_by("pk")[:3]:
        yesterday = timezone.now() - timedelta(days=2)
        Appointment.objects.filter(pk=visit.pk).update(
            starts_at=yesterday, ends_at=yesterday + timedelta(minutes=85), status="completed"
        )
        visit.refresh_from_db()
        device = Device.objects.filter(location=visit.location).first()
        lot = CartridgeLot.objects.filter(location=visit.location).first()
        assert device is not None and lot is not None
        chart = chart_write(
            appointment=visit,
            actor=staff,
            data={
                "device": device,
                "cartridge_lot": lot,
                "numbing_product": "Lidocaine 4% cream",
                "numbing_minutes": 30,
                "endpoint": "pinpoint_bleeding",
                "immediate_reaction": "Even redness",
                "notes": "",
                "areas": [{"area": "face", "depth_mm": 1.0, "passes": 3}],
                "products": [{"product": "Hyaluronic serum", "sterile": True}],
            },
        )
        chart_sign(chart=chart, actor=staff)
        score_record(appointment=visit, scale="gais", value=2, actor=staff)
        skin_report_file(
            appointment=visit, symptoms=[SymptomReport(code="pus", severity="moderate")]
        )


@pytest.fixture
def demo() -> dict[str, str]:
    # Transactional tests empty every table between tests, the migrations' data included:
    # put the consent text back the way its migration writes it.
    migration = importlib.import_module("microneedling.charting.migrations.0002_consent_text_v1")
    migration.add(django_apps, None)
    load_demo(today=timezone.localdate())
    _clinical_records()
    staff = get_user_model().objects.get(username="clinicadmin")
    patient = Patient.objects.order_by("pk").first()
    assert patient is not None
    patient_user = get_user_model().objects.create_user("demo.patient", password=None)
    patient.user = patient_user
    patient.save()
    return {
        "staff": api_token_issue(user=staff),
        "operator": api_token_issue(user=get_user_model().objects.get(username="operator")),
        "patient": api_token_issue(user=patient_user),
        "patient_id": str(patient.pk),
    }


def _get(live_server, token: str, path: str) -> requests.Response:  # type: ignore[no-untyped-def]
    return requests.get(
        f"{live_server.url}/fhir/R4/{path}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )


def _validate(resource: dict[str, Any]) -> None:
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def _walk(live_server, token: str, path: str) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """Every resource of a search, following next links, each bundle validated."""
    found: list[dict[str, Any]] = []
    url: str | None = f"{live_server.url}/fhir/R4/{path}"
    while url:
        response = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=60)
        assert response.status_code == 200, response.text[:500]
        assert response.headers["Content-Type"] == "application/fhir+json"
        bundle = response.json()
        _validate(bundle)
        found += [e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "match"]
        url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)
        if bundle.get("total") is not None and url is None:
            assert len(found) == bundle["total"]
    return found


def test_every_type_and_every_search_result_of_the_demo_validates_as_r4b(demo, live_server) -> None:
    counts = {}
    for type_name in ALL_TYPES:
        if type_name == "Slot":
            continue
        resources = _walk(live_server, demo["staff"], f"{type_name}?_count=50")
        counts[type_name] = len(resources)
        for resource in resources:
            _validate(resource)
            read = _get(live_server, demo["staff"], f"{type_name}/{resource['id']}")
            assert read.status_code == 200 and read.json() == resource
    assert all(counts[t] > 0 for t in counts), counts
    # Free slots of one schedule: found, valid, and each readable while it is free.
    schedule = _walk(live_server, demo["staff"], "Schedule?_count=1")[0]
    first = (timezone.localdate() + timedelta(days=3)).isoformat()
    slots = _walk(
        live_server, demo["staff"], f"Slot?schedule=Schedule/{schedule['id']}&start=ge{first}"
    )
    assert slots
    for slot in slots[:5]:
        _validate(slot)
        assert _get(live_server, demo["staff"], f"Slot/{slot['id']}").json() == slot
    # Staff reads of clinical records are audited.
    assert AuditEvent.objects.filter(action="fhir_read").exists()


def test_patient_everything_holds_every_resource_about_them(demo, live_server) -> None:
    bundle = _get(live_server, demo["staff"], f"Patient/{demo['patient_id']}/$everything").json()
    _validate(bundle)
    kinds = {e["resource"]["resourceType"] for e in bundle["entry"]}
    assert {"Patient", "Appointment", "CarePlan", "QuestionnaireResponse", "Consent"} <= kinds
    subjects = {
        (e["resource"].get("subject") or e["resource"].get("patient") or {}).get("reference")
        for e in bundle["entry"]
        if e["resource"]["resourceType"] not in ("Patient", "Appointment")
    }
    assert subjects == {f"Patient/{demo['patient_id']}"}


def test_a_patient_sees_only_their_own_records(demo, live_server) -> None:
    own = _walk(live_server, demo["patient"], "Appointment")
    assert own and {
        p["actor"]["reference"]
        for a in own
        for p in a["participant"]
        if "Patient/" in p["actor"]["reference"]
    } == {f"Patient/{demo['patient_id']}"}
    other = Appointment.objects.exclude(patient_id=demo["patient_id"]).first()
    assert other is not None
    guessed = _get(live_server, demo["patient"], f"Appointment/{other.pk}")
    assert guessed.status_code == 404
    assert guessed.json()["resourceType"] == "OperationOutcome"
    assert len(_walk(live_server, demo["patient"], "Patient")) == 1
    # The directory is open to anyone signed in.
    assert _walk(live_server, demo["patient"], "Location")
    assert requests.get(f"{live_server.url}/fhir/R4/Patient", timeout=30).status_code == 401


def test_a_fhir_client_searches_pages_reads_everything_and_books_from_a_slot(
    demo, live_server
) -> None:
    client = SyncFHIRClient(f"{live_server.url}/fhir/R4", authorization=f"Bearer {demo['staff']}")
    patients = client.resources("Patient").limit(7).fetch_all()
    assert len(patients) == Patient.objects.count()  # across several pages
    booked = client.resources("Appointment").search(status="booked").limit(10).fetch()
    assert booked and all(a["status"] == "booked" for a in booked)
    dated = (
        client.resources("Appointment")
        .search(date__ge=timezone.localdate().isoformat())
        .limit(5)
        .fetch()
    )
    assert dated
    everything = client.execute(f"Patient/{demo['patient_id']}/$everything", method="get")
    assert everything["resourceType"] == "Bundle" and everything["entry"]

    patient = Patient.objects.get(pk=demo["patient_id"])
    schedule = client.resources("Schedule").limit(1).fetch()[0]
    first = (timezone.localdate() + timedelta(days=5)).isoformat()
    slot = (
        client.resources("Slot")
        .search(schedule=f"Schedule/{schedule['id']}", start__ge=first)
        .first()
    )
    assert slot is not None
    gap = timedelta(days=load_pack().treatment_gap_days)
    treatments = Appointment.objects.filter(
        patient=patient, service__kind="treatment", status__in=Appointment.HOLDING
    )

    def booking(at: dict[str, Any]) -> Any:
        return client.resource(
            "Appointment",
            status="booked",
            slot=[{"reference": f"Slot/{at['id']}"}],
            participant=[{"actor": {"reference": f"Patient/{patient.pk}"}, "status": "accepted"}],
        )

    start = datetime.fromisoformat(slot["start"])
    if treatments.filter(starts_at__gt=start - gap, starts_at__lt=start + gap).exists():
        # The demo patient's course treats the face too close to the slot: refused as a
        # rule naming the slot. The desk cancels the course's visits still to come and
        # books a slot far enough from the last treatment given.
        with pytest.raises(ClientOutcome) as refused:
            booking(slot).save()
        assert "Appointment.slot" in str(refused.value) and "same skin" in str(refused.value)
        for visit in treatments.filter(status__in=Appointment.TO_COME):
            appointment_cancel(appointment=visit, actor=None, reason="a single visit instead")
        last = treatments.order_by("-starts_at").first()
        if last is not None:
            after = (last.starts_at + gap + timedelta(days=1)).date().isoformat()
            slot = (
                client.resources("Slot")
                .search(schedule=f"Schedule/{schedule['id']}", start__ge=max(first, after))
                .first()
            )
            assert slot is not None
    appointment = booking(slot)
    appointment.save()
    assert appointment["id"]
    created = Appointment.objects.get(pk=int(appointment["id"]))
    assert created.starts_at == datetime.fromisoformat(slot["start"])
    assert created.patient_id == patient.pk
    # The same slot again: taken, a 409 with an OperationOutcome.
    again = client.resource(
        "Appointment",
        status="booked",
        slot=[{"reference": f"Slot/{slot['id']}"}],
        participant=[{"actor": {"reference": f"Patient/{patient.pk}"}, "status": "accepted"}],
    )
    with pytest.raises(ClientOutcome) as raised:
        again.save()
    assert "no longer free" in str(raised.value)


@pytest.mark.parametrize(
    ("path", "where"),
    [
        ("Appointment?bogus=1", "bogus"),
        ("Appointment?date=2027-02-30", "date"),
        ("Appointment?date=tomorrow", "date"),
        ("Appointment?status=happy", "status"),
        ("Appointment?patient=Location/1", "patient"),
        ("Appointment?_count=0", "_count"),
        ("Appointment?_count=abc", "_count"),
        ("Appointment?_include=Appointment:service", "_include"),
        ("Medication", None),
        ("Medication/1", None),
        ("Slot?start=ge2027-01-01", "schedule"),
        ("Slot?schedule=Schedule/1-1&start=ge2027-01-01&start=le2027-06-01", None),
    ],
)
def test_bad_requests_answer_a_400_operation_outcome(demo, live_server, path, where) -> None:
    response = _get(live_server, demo["staff"], path)
    assert response.status_code in (400, 404), response.text[:300]
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    _validate(body)
    if where:
        assert response.status_code == 400
        assert body["issue"][0]["expression"] == [where]


def test_the_capability_statement_lists_exactly_what_is_served(demo, live_server) -> None:
    statement = requests.get(f"{live_server.url}/fhir/R4/metadata", timeout=30).json()
    _validate(statement)
    served = {r["type"] for r in statement["rest"][0]["resource"]}
    assert served == set(ALL_TYPES)
    appointment = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Appointment")
    assert {i["code"] for i in appointment["interaction"]} == {"read", "search-type", "create"}
    assert {p["name"] for p in appointment["searchParam"]} >= {"patient", "date", "status"}


# --- Bulk export ---------------------------------------------------------------------------


def _run_export_tasks() -> None:
    """Run the queued export tasks as a worker would (the task rows are real)."""
    from django_tasks_db.models import DBTaskResult  # noqa: PLC0415

    from microneedling.interop.export import export_run  # noqa: PLC0415

    for task in DBTaskResult.objects.filter(task_path__endswith="export_execute"):
        export_run(*task.args_kwargs["args"])


def test_a_bulk_export_writes_valid_ndjson_for_every_type_with_progress(demo, live_server) -> None:
    headers = {"Authorization": f"Bearer {demo['operator']}", "Prefer": "respond-async"}
    kickoff = requests.get(f"{live_server.url}/fhir/R4/$export", headers=headers, timeout=30)
    assert kickoff.status_code == 202
    status_url = kickoff.headers["Content-Location"]
    waiting = requests.get(status_url, headers=headers, timeout=30)
    assert waiting.status_code == 202 and "types written" in waiting.headers["X-Progress"]

    _run_export_tasks()
    manifest = requests.get(status_url, headers=headers, timeout=30).json()
    assert manifest["requiresAccessToken"] is True
    written = {item["type"]: item for item in manifest["output"]}
    assert set(written) == set(ALL_TYPES) - {"Slot"}
    assert written["Patient"]["count"] == Patient.objects.count()
    for item in manifest["output"]:
        response = requests.get(item["url"], headers=headers, timeout=60)
        assert response.headers["Content-Type"] == "application/fhir+ndjson"
        lines = [line for line in response.text.splitlines() if line]
        assert len(lines) == item["count"]
        for line in lines:
            resource = json.loads(line)
            assert resource["resourceType"] == item["type"]
            _validate(resource)
    downloads = AuditEvent.objects.filter(action="fhir_export_download")
    assert downloads.filter(object_type="export").count() == len(written)
    # Each download is also in the access log of every patient whose records the file held.
    export_id = int(status_url.rstrip("/").rsplit("/", 1)[-1])
    patient_file = downloads.filter(
        object_type="patient", details={"export": export_id, "type": "Patient"}
    )
    assert sorted(int(e.object_id) for e in patient_file) == sorted(
        Patient.objects.values_list("pk", flat=True)
    )
    assert not downloads.filter(object_type="patient", details__type="Location").exists()

    # Patients cannot export; unknown types are refused; a finished export can be deleted.
    patient_headers = {"Authorization": f"Bearer {demo['patient']}"}
    refused = requests.get(
        f"{live_server.url}/fhir/R4/$export", headers=patient_headers, timeout=30
    )
    assert refused.status_code == 403 and refused.json()["resourceType"] == "OperationOutcome"
    bad_type = requests.get(
        f"{live_server.url}/fhir/R4/$export?_type=Slot", headers=headers, timeout=30
    )
    assert bad_type.status_code == 400
    assert requests.delete(status_url, headers=headers, timeout=30).status_code == 202
    assert requests.get(status_url, headers=headers, timeout=30).status_code == 404
