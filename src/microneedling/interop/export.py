"""Bulk export: every resource of the chosen types as NDJSON, one file per type, written by
a background task under the private data folder and handed out only to staff."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from microneedling.accounts.actors import Actor, acting_user
from microneedling.interop.fhir import views as fhir
from microneedling.interop.models import ExportJob

#: What $export writes: every type we serve except Slot (free time is computed, not data).
EXPORTED = tuple(t for t in fhir.ALL_TYPES if t != "Slot")
CHUNK = 500


def export_folder(job: ExportJob) -> Path:
    """Where a job's files are (private: never served as static files)."""
    return Path(settings.MEDIA_ROOT) / "exports" / str(job.pk)


def export_start(*, types: list[str], actor: Actor, request_url: str) -> ExportJob:
    """Record an export and queue its task in one transaction."""
    from microneedling.interop.tasks import export_execute  # noqa: PLC0415 (cycle)

    with transaction.atomic():
        job = ExportJob.objects.create(
            types=types, created_by=acting_user(actor), request_url=request_url
        )
        export_execute.enqueue(job.pk)
    return job


def _resources(type_name: str) -> Any:
    """Every resource of one type, built row by row (chunked reads)."""
    if type_name in fhir.PAIRED:
        for provider, place in fhir.provider_sites({}):
            yield fhir.render_pair(type_name, provider, place)
        return
    kind = fhir.KINDS[type_name]
    for row in kind.rows().iterator(chunk_size=CHUNK):
        yield kind.render(row)


def export_run(job_id: int) -> str:
    """Write the job's NDJSON files, counting progress type by type."""
    taken = ExportJob.objects.filter(pk=job_id, status=ExportJob.Status.QUEUED).update(
        status=ExportJob.Status.RUNNING
    )
    if not taken:
        return "skipped"
    job = ExportJob.objects.get(pk=job_id)
    folder = export_folder(job)
    folder.mkdir(parents=True, exist_ok=True)
    output = []
    try:
        for done, type_name in enumerate(job.types, start=1):
            count = 0
            with (folder / f"{type_name}.ndjson").open("w", encoding="utf-8") as out:
                for resource in _resources(type_name):
                    out.write(json.dumps(resource, separators=(",", ":")) + "\n")
                    count += 1
            output.append({"type": type_name, "count": count})
            ExportJob.objects.filter(pk=job_id).update(done_types=done, output=output)
    except Exception as error:
        ExportJob.objects.filter(pk=job_id).update(
            status=ExportJob.Status.FAILED,
            error=type(error).__name__,
            finished_at=timezone.now(),
        )
        return "failed"
    ExportJob.objects.filter(pk=job_id).update(
        status=ExportJob.Status.DONE, finished_at=timezone.now()
    )
    return "done"
