"""Bulk export: the resources of the chosen types as NDJSON, one file per type, written by
a background task under the private data folder and handed out only to the staff member who
asked for them.

An export holds exactly what its requester may read through the FHIR search (their
organisation's directory, the patients ``accounts.access`` lets them see); a job without a
requester is the system's own export of everything, started from code, never over HTTP.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from microneedling.accounts.access import Can, Role, may, organization_id, role_of
from microneedling.accounts.actors import Actor, acting_user
from microneedling.interop.fhir import views as fhir
from microneedling.interop.models import ExportJob

#: What $export writes: every type we serve except Slot (free time is computed, not data).
EXPORTED = tuple(t for t in fhir.ALL_TYPES if t != "Slot")
CHUNK = 500
#: How each directory type belongs to an organisation (patients' records go by the patient).
ORGANIZATION_FIELD = {
    "Organization": "pk",
    "Location": "organization_id",
    "Practitioner": "organization_id",
    "HealthcareService": "organization_id",
}


class ExportRefused(Exception):
    """The requester may no longer export (the job fails rather than run in their name)."""


def export_folder(job: ExportJob) -> Path:
    """Where a job's files are (private: never served as static files)."""
    return Path(settings.MEDIA_ROOT) / "exports" / str(job.pk)


def export_start(*, types: list[str], actor: Actor, request_url: str) -> ExportJob:
    """Record an export in ``actor``'s name and queue its task in one transaction."""
    from microneedling.interop.tasks import export_execute  # noqa: PLC0415 (cycle)

    requester = acting_user(actor)
    if requester is None:
        # A job without a requester exports everything: no request may start one.
        raise ValueError("an export is started by a signed-in member of staff")
    with transaction.atomic():
        job = ExportJob.objects.create(types=types, created_by=requester, request_url=request_url)
        export_execute.enqueue(job.pk)
    return job


def _organization(requester: Any) -> int | None:
    """The one organisation whose directory ``requester`` exports; ``None`` for every one
    (the system, and superusers, who see everything elsewhere too)."""
    if requester is None or role_of(requester) == Role.SUPERUSER:
        return None
    org = organization_id(requester)
    if org is None:
        raise ExportRefused("the requester belongs to no organisation")
    return org


def _rows(kind: fhir.Kind, requester: Any, org: int | None) -> Any:
    """The rows of one type that go into ``requester``'s export."""
    if requester is None:
        return kind.rows()
    if kind.patient_field is not None:
        # Exactly the FHIR search's rows: in bulk, nothing the requester could not page
        # through one search at a time (clinical types included: none without the role).
        caller = fhir.Caller(user=requester, patient_id=None, staff=may(requester, Can.DESK))
        return fhir.scoped_rows(kind, caller)
    if org is None:
        return kind.rows()
    # A directory type missing from ORGANIZATION_FIELD fails the job (KeyError) rather than
    # export every organisation's rows.
    return kind.rows().filter(**{ORGANIZATION_FIELD[kind.name]: org})


def _resources(type_name: str, requester: Any) -> Iterator[tuple[dict[str, Any], int | None]]:
    """The resources of one type that ``requester`` may read, built row by row (chunked
    reads), each with the patient whose record it is part of (None for the directory);
    every resource when there is no requester (the system's own export)."""
    org = _organization(requester)
    if type_name in fhir.PAIRED:
        for provider, place in fhir.provider_sites({}):
            if org is None or org == place.organization_id == provider.organization_id:
                yield fhir.render_pair(type_name, provider, place), None
        return
    kind = fhir.KINDS[type_name]
    path = kind.patient_field.split("__") if kind.patient_field else None
    for row in _rows(kind, requester, org).iterator(chunk_size=CHUNK):
        patient: Any = row
        for part in path or ():
            patient = getattr(patient, part)
        yield kind.render(row), (patient if path else None)


def _private_folder(folder: Path) -> None:
    """``folder`` and the exports folder above it, open to this account only: their files
    hold patients' records, and the usual umask (022) would let every account read them."""
    for each in (folder.parent, folder):
        each.mkdir(mode=0o700, parents=True, exist_ok=True)
        each.chmod(0o700)  # also one made before, and whatever the umask took off


def _private_file(path: str, flags: int) -> int:
    """An ``open`` opener: a new file is readable and writable by this account only."""
    return os.open(path, flags, 0o600)


def patients_in_file(job: ExportJob, type_name: str) -> list[int]:
    """The patients whose records one file of the export holds (written beside the file,
    so that each download can be audited per patient)."""
    path = export_folder(job) / f"{type_name}.patients.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else []


def exports_forget_patients(*, patient_ids: Collection[int]) -> int:
    """Withdraw every export whose files hold a record of one of ``patient_ids`` (erased at
    the end of their retention): its files are removed and the job answers as failed, so an
    erased record does not live on in an export downloadable at any later time. The number
    of exports withdrawn."""
    wanted = set(patient_ids)
    withdrawn = 0
    for job in ExportJob.objects.exclude(status=ExportJob.Status.FAILED).order_by("pk"):
        folder = export_folder(job)
        held: set[int] = set()
        for listing in folder.glob("*.patients.json"):
            held.update(json.loads(listing.read_text(encoding="utf-8")))
        if not held & wanted:
            continue
        # Files first: a job still running then fails on its next file, and cleans up.
        shutil.rmtree(folder, ignore_errors=True)
        ExportJob.objects.filter(pk=job.pk).update(
            status=ExportJob.Status.FAILED, error="RecordErased", finished_at=timezone.now()
        )
        withdrawn += 1
    return withdrawn


def export_run(job_id: int) -> str:
    """Write the job's NDJSON files, counting progress type by type: what its requester may
    read, or everything for a job without one (started by the system, not over HTTP)."""
    taken = ExportJob.objects.filter(pk=job_id, status=ExportJob.Status.QUEUED).update(
        status=ExportJob.Status.RUNNING
    )
    if not taken:
        return "skipped"
    job = ExportJob.objects.select_related("created_by").get(pk=job_id)
    # No requester: the system's own export. (A requester deleted since leaves a job that
    # only superusers may open, see fhir.bulk, so its files reach no one new.)
    requester = job.created_by
    folder = export_folder(job)
    _private_folder(folder)
    output = []
    try:
        # Scoped by who the requester is now, not when they asked: a role taken away
        # between the kick-off and the worker takes the export away with it.
        if requester is not None and not may(requester, Can.BULK_EXPORT):
            raise ExportRefused("the requester may no longer export")
        for done, type_name in enumerate(job.types, start=1):
            count = 0
            patients: set[int] = set()
            ndjson = folder / f"{type_name}.ndjson"
            with open(ndjson, "w", encoding="utf-8", opener=_private_file) as out:
                for resource, patient in _resources(type_name, requester):
                    out.write(json.dumps(resource, separators=(",", ":")) + "\n")
                    count += 1
                    if patient is not None:
                        patients.add(patient)
            if patients:
                listing = folder / f"{type_name}.patients.json"
                with open(listing, "w", encoding="utf-8", opener=_private_file) as out:
                    out.write(json.dumps(sorted(patients)))
            output.append({"type": type_name, "count": count})
            ExportJob.objects.filter(pk=job_id).update(done_types=done, output=output)
    except Exception as error:
        # A failed job's files are never handed out, so what it wrote before failing is
        # patients' records kept for no one: removed, not left on the disk.
        shutil.rmtree(folder, ignore_errors=True)
        ExportJob.objects.filter(pk=job_id).update(
            status=ExportJob.Status.FAILED,
            error=type(error).__name__,
            finished_at=timezone.now(),
        )
        return "failed"
    # Still running: an export withdrawn meanwhile (exports_forget_patients) stays failed.
    ExportJob.objects.filter(pk=job_id, status=ExportJob.Status.RUNNING).update(
        status=ExportJob.Status.DONE, finished_at=timezone.now()
    )
    return "done"
