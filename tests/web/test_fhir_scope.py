"""Whose records the FHIR API hands out in bulk, and what a search leaves in the audit trail.

Two organisations share the database: Riverbend Group (the test organisation, with patient
Cleo Marsh) and Faraway Group (its own location, providers, services and patient Dora Vance).
A chain operator of Riverbend exports; nothing of Faraway may be in their files, and their
export jobs are theirs alone. A search that matches a patient is audited even when the page
it asks for is past the last one.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from microneedling.accounts.models import StaffMember
from microneedling.accounts.services import api_token_issue
from microneedling.audit.models import AuditEvent
from microneedling.directory.models import Location, Organization, Provider, Service
from microneedling.interop.export import export_run
from microneedling.interop.models import ExportJob
from microneedling.patients.models import Patient
from tests.web.conftest import (
    Clinic,
    book_course,
    build_clinic,
    make_patient,
    make_staff,
    make_superuser,
)

pytestmark = pytest.mark.usefixtures("frozen_now")


@dataclass
class TwoOrgs:
    """Riverbend (ours) and Faraway (another organisation in the same database)."""

    ours: Clinic
    theirs: Clinic
    cleo: Patient
    dora: Patient


@pytest.fixture
def two_orgs(clinic: Clinic, settings, tmp_path: Path) -> TwoOrgs:  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = tmp_path
    cleo = make_patient(clinic)
    book_course(clinic, cleo)
    far = build_clinic(name="Faraway")
    elsewhere = Organization.objects.create(name="Faraway Group", slug="faraway-group")
    Location.objects.filter(pk=far.location.pk).update(organization=elsewhere)
    Provider.objects.filter(pk__in=[far.ada.pk, far.ben.pk]).update(organization=elsewhere)
    Service.objects.filter(pk__in=[far.treatment.pk, far.consultation.pk]).update(
        organization=elsewhere
    )
    far.location.refresh_from_db()
    far.treatment.refresh_from_db()
    far.consultation.refresh_from_db()
    theirs = replace(far, org=elsewhere)
    dora = make_patient(theirs, name="Dora Vance")
    book_course(theirs, dora)
    return TwoOrgs(ours=clinic, theirs=theirs, cleo=cleo, dora=dora)


def _bearer(user: Any) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {api_token_issue(user=user)}"}


def _export(headers: dict[str, str], query: str = "") -> int:
    """Kick an export off as the holder of ``headers`` and run its task as a worker would;
    the job's id."""
    kickoff = Client().get(f"/fhir/R4/$export{query}", **headers)  # type: ignore[arg-type]
    assert kickoff.status_code == 202, kickoff.content
    job_id = int(kickoff["Content-Location"].rsplit("/", 1)[1])
    assert export_run(job_id) == "done"
    return job_id


def _exported(headers: dict[str, str], job_id: int) -> dict[str, list[dict[str, Any]]]:
    """Every file of a finished export, downloaded through the API: type → resources."""
    manifest = Client().get(f"/fhir/R4/$export-status/{job_id}", **headers)  # type: ignore[arg-type]
    assert manifest.status_code == 200, manifest.content
    files: dict[str, list[dict[str, Any]]] = {}
    for item in manifest.json()["output"]:
        answer = Client().get(
            f"/fhir/R4/$export-file/{job_id}/{item['type']}.ndjson",
            **headers,  # type: ignore[arg-type]
        )
        assert answer.status_code == 200
        text = b"".join(answer.streaming_content).decode()  # type: ignore[attr-defined]
        files[item["type"]] = [json.loads(line) for line in text.splitlines() if line]
    return files


def _references(value: Any) -> Iterator[str]:
    """Every ``reference`` anywhere inside a resource."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "reference" and isinstance(inner, str):
                yield inner
            else:
                yield from _references(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _references(inner)


def _pointers(files: dict[str, list[dict[str, Any]]]) -> set[str]:
    """Each exported resource as ``Type/id`` plus every reference the resources make."""
    found: set[str] = set()
    for resources in files.values():
        for resource in resources:
            found.add(f"{resource['resourceType']}/{resource['id']}")
            found |= set(_references(resource))
    return found


def _faraway(world: TwoOrgs) -> set[str]:
    theirs = world.theirs
    return {
        f"Patient/{world.dora.pk}",
        f"Organization/{theirs.org.pk}",
        f"Location/{theirs.location.pk}",
        f"Practitioner/{theirs.ada.pk}",
        f"Practitioner/{theirs.ben.pk}",
        f"HealthcareService/{theirs.treatment.pk}",
        f"HealthcareService/{theirs.consultation.pk}",
    }


def test_a_chain_operators_export_holds_nothing_of_another_organisation(
    two_orgs: TwoOrgs,
) -> None:
    headers = _bearer(make_staff("otto", "chain_operator"))
    files = _exported(headers, _export(headers))

    found = _pointers(files)
    leaked = found & _faraway(two_orgs)
    assert not leaked, f"another organisation's records in the export: {sorted(leaked)}"
    # Not empty either: their own organisation's patient, diary and directory are all there.
    assert f"Patient/{two_orgs.cleo.pk}" in found
    assert f"Location/{two_orgs.ours.location.pk}" in found
    assert f"Practitioner/{two_orgs.ours.ada.pk}" in found
    assert files["Appointment"]
    cleo = f"Patient/{two_orgs.cleo.pk}"
    assert {r["subject"]["reference"] for r in files["CarePlan"]} == {cleo}
    at_riverbend = f"-{two_orgs.ours.location.pk}"
    for type_name in ("PractitionerRole", "Schedule"):
        assert files[type_name]
        assert all(r["id"].endswith(at_riverbend) for r in files[type_name]), type_name


def test_an_export_of_patients_matches_what_the_requesters_search_returns(
    two_orgs: TwoOrgs,
) -> None:
    headers = _bearer(make_staff("otto", "chain_operator"))
    search = Client().get("/fhir/R4/Patient?name=Vance", **headers)  # type: ignore[arg-type]
    assert search.json()["total"] == 0

    files = _exported(headers, _export(headers, "?_type=Patient"))
    assert [p["id"] for p in files["Patient"]] == [str(two_orgs.cleo.pk)]


def test_a_chain_operators_export_leaves_out_the_clinical_notes_their_search_does_not_show(
    two_orgs: TwoOrgs,
) -> None:
    # Chain operators run the chain without reading clinical notes (accounts.access): the
    # screening answers are no more theirs in bulk than one at a time.
    headers = _bearer(make_staff("otto", "chain_operator"))
    search = Client().get("/fhir/R4/QuestionnaireResponse", **headers)  # type: ignore[arg-type]
    assert search.json()["total"] == 0

    files = _exported(headers, _export(headers, "?_type=QuestionnaireResponse"))
    assert files["QuestionnaireResponse"] == []


def test_a_superusers_export_holds_every_organisation(two_orgs: TwoOrgs) -> None:
    headers = _bearer(make_superuser("root"))
    files = _exported(headers, _export(headers, "?_type=Patient,Location"))
    found = _pointers(files)
    assert {f"Patient/{two_orgs.cleo.pk}", f"Patient/{two_orgs.dora.pk}"} <= found
    assert f"Location/{two_orgs.theirs.location.pk}" in found


def test_an_export_job_records_who_asked_for_it(two_orgs: TwoOrgs) -> None:
    otto = make_staff("otto", "chain_operator")
    job_id = _export(_bearer(otto), "?_type=Patient")
    assert ExportJob.objects.get(pk=job_id).created_by == otto


def test_another_operators_export_answers_404_to_status_files_and_delete(
    two_orgs: TwoOrgs,
) -> None:
    owner = _bearer(make_staff("otto", "chain_operator"))
    other = _bearer(make_staff("olga", "chain_operator"))
    job_id = _export(owner, "?_type=Patient")
    status = f"/fhir/R4/$export-status/{job_id}"
    file = f"/fhir/R4/$export-file/{job_id}/Patient.ndjson"

    assert Client().get(status, **other).status_code == 404  # type: ignore[arg-type]
    assert Client().get(file, **other).status_code == 404  # type: ignore[arg-type]
    assert Client().delete(status, **other).status_code == 404  # type: ignore[arg-type]
    assert ExportJob.objects.filter(pk=job_id).exists()
    assert not AuditEvent.objects.filter(action="fhir_export_download").exists()

    # The requester still has it, and so does the system's administrator.
    assert Client().get(file, **owner).status_code == 200  # type: ignore[arg-type]
    root = _bearer(make_superuser("root"))
    assert Client().get(status, **root).status_code == 200  # type: ignore[arg-type]
    assert Client().delete(status, **owner).status_code == 202  # type: ignore[arg-type]
    assert not ExportJob.objects.filter(pk=job_id).exists()


def test_an_export_still_queued_answers_404_to_another_operator(two_orgs: TwoOrgs) -> None:
    owner = _bearer(make_staff("otto", "chain_operator"))
    other = _bearer(make_staff("olga", "chain_operator"))
    kickoff = Client().get("/fhir/R4/$export?_type=Patient", **owner)  # type: ignore[arg-type]
    status = kickoff["Content-Location"].removeprefix("http://testserver")
    assert Client().get(status, **other).status_code == 404  # type: ignore[arg-type]
    assert Client().get(status, **owner).status_code == 202  # type: ignore[arg-type]


def test_an_export_whose_requester_lost_the_role_before_it_ran_writes_nothing(
    two_orgs: TwoOrgs,
) -> None:
    otto = make_staff("otto", "chain_operator")
    kickoff = Client().get("/fhir/R4/$export?_type=Patient", **_bearer(otto))  # type: ignore[arg-type]
    job_id = int(kickoff["Content-Location"].rsplit("/", 1)[1])
    StaffMember.objects.filter(user=otto).update(role="front_desk")

    assert export_run(job_id) == "failed"
    job = ExportJob.objects.get(pk=job_id)
    assert job.output == [] and job.error == "ExportRefused"


# --- Searches past the last page -----------------------------------------------------------


def test_a_staff_search_past_the_last_page_is_audited_for_the_patients_it_matched(
    two_orgs: TwoOrgs,
) -> None:
    ida = make_staff("ida", "front_desk", locations=[two_orgs.ours.location])
    answer = Client().get(
        "/fhir/R4/Patient?name=Marsh&birthdate=1990-04-02&_offset=1000",
        **_bearer(ida),  # type: ignore[arg-type]
    )
    bundle = answer.json()
    assert bundle["total"] == 1 and bundle["entry"] == []
    events = AuditEvent.objects.filter(actor=ida, object_type="patient")
    assert [e.object_id for e in events] == [str(two_orgs.cleo.pk)]
    assert events[0].details["resource"] == "Patient"


def test_a_staff_search_past_the_last_page_of_visits_names_their_patient(
    two_orgs: TwoOrgs,
) -> None:
    ida = make_staff("ida", "front_desk", locations=[two_orgs.ours.location])
    answer = Client().get(
        f"/fhir/R4/Appointment?patient={two_orgs.cleo.pk}&_offset=500",
        **_bearer(ida),  # type: ignore[arg-type]
    )
    assert answer.json()["total"] > 0 and answer.json()["entry"] == []
    events = AuditEvent.objects.filter(actor=ida, object_type="patient")
    assert {e.object_id for e in events} == {str(two_orgs.cleo.pk)}
    assert {e.action for e in events} == {"fhir_search_match"}


def test_a_search_that_matches_nobody_audits_nobody(two_orgs: TwoOrgs) -> None:
    ida = make_staff("ida", "front_desk", locations=[two_orgs.ours.location])
    answer = Client().get(
        "/fhir/R4/Patient?name=Nobody&_offset=1000",
        **_bearer(ida),  # type: ignore[arg-type]
    )
    assert answer.json()["total"] == 0
    assert not AuditEvent.objects.filter(actor=ida, object_type="patient").exists()


def test_an_exports_files_are_readable_by_the_server_account_only(
    two_orgs: TwoOrgs, settings: Any
) -> None:
    headers = _bearer(make_staff("otto", "chain_operator"))
    # The usual umask, which would leave new files readable by every account.
    previous = os.umask(0o022)
    try:
        job_id = _export(headers, "?_type=Patient,Appointment")
    finally:
        os.umask(previous)
    exports = Path(settings.MEDIA_ROOT) / "exports"
    folder = exports / str(job_id)
    assert stat.S_IMODE(exports.stat().st_mode) == 0o700
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    written = sorted(folder.iterdir())
    assert {p.name for p in written} >= {"Patient.ndjson", "Patient.patients.json"}
    for path in written:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name


def test_an_export_that_fails_part_way_leaves_no_patient_file_behind(
    two_orgs: TwoOrgs, settings: Any
) -> None:
    # Patients are written first; the next type is one this version does not export (a
    # job queued before an upgrade), so the job fails after a file of patients exists.
    job = ExportJob.objects.create(
        types=["Patient", "NoLongerExported"],
        created_by=make_superuser("root"),
        request_url="http://testserver/fhir/R4/$export",
    )
    assert export_run(job.pk) == "failed"
    job.refresh_from_db()
    assert job.status == ExportJob.Status.FAILED and job.output[0]["count"] >= 2
    folder = Path(settings.MEDIA_ROOT) / "exports" / str(job.pk)
    assert not folder.exists() or list(folder.iterdir()) == []
