"""FHIR Bulk Data export: ``$export`` kick-off, its status, its files, and cancelling it.

For those who may export (``Can.BULK_EXPORT``). Kick-off answers 202 with the status address
in ``Content-Location``; the status answers 202 with ``X-Progress`` while the task works, then
the manifest; each file is NDJSON (``application/fhir+ndjson``), and every download is
audited. An export holds what its requester may read, and its status, files and cancelling
answer only to them (and to superusers): anyone else gets the same 404 as for an export that
does not exist.
"""

from __future__ import annotations

import shutil

from django.http import FileResponse, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase

from microneedling.accounts.access import Can, Role, may, role_of
from microneedling.audit.services import audit_patients_seen, audit_record
from microneedling.interop.export import EXPORTED, export_folder, export_start, patients_in_file
from microneedling.interop.fhir.search import FhirError, bad
from microneedling.interop.fhir.views import Caller, base_url, caller_of, fhir_view, respond
from microneedling.interop.models import ExportJob


def _staff(request: HttpRequest) -> Caller:
    caller = caller_of(request)
    if not may(caller.user, Can.BULK_EXPORT):
        raise FhirError(403, "forbidden", "bulk export is for the chain's operators")
    return caller


@fhir_view
def export_kickoff(request: HttpRequest) -> HttpResponse:
    """Start an export of every type (or those in ``_type``)."""
    caller = _staff(request)
    if request.method != "GET":
        raise FhirError(405, "not-supported", "start an export with GET")
    unknown = set(request.GET) - {"_type", "_outputFormat"}
    if unknown:
        raise bad(sorted(unknown)[0], "is not an export parameter we support")
    output_format = request.GET.get("_outputFormat", "application/fhir+ndjson")
    if output_format not in ("application/fhir+ndjson", "application/ndjson", "ndjson"):
        raise bad("_outputFormat", "only NDJSON is offered")
    wanted = [t for value in request.GET.getlist("_type") for t in value.split(",") if t]
    for type_name in wanted:
        if type_name not in EXPORTED:
            raise bad("_type", f"{type_name!r} is not a type we export")
    job = export_start(
        types=wanted or list(EXPORTED),
        actor=caller.user,
        request_url=request.build_absolute_uri(),
    )
    response = HttpResponse(status=202)
    response["Content-Location"] = f"{base_url(request)}/$export-status/{job.pk}"
    return response


def _job(job_id: int, caller: Caller) -> ExportJob:
    """The export ``job_id`` if ``caller`` asked for it (a superuser: any), else a 404."""
    jobs = ExportJob.objects.filter(pk=job_id)
    if role_of(caller.user) != Role.SUPERUSER:
        # Another operator's export may hold patients they may not see: it answers as a
        # missing one, so ids reveal nothing either.
        jobs = jobs.filter(created_by_id=caller.user.pk)
    job = jobs.first()
    if job is None:
        raise FhirError(404, "not-found", f"no export {job_id}")
    return job


@fhir_view
def export_status(request: HttpRequest, job_id: int) -> HttpResponse:
    """202 with progress while running; the manifest when done; DELETE cancels and removes."""
    job = _job(job_id, _staff(request))
    if request.method == "DELETE":
        shutil.rmtree(export_folder(job), ignore_errors=True)
        job.delete()
        return HttpResponse(status=202)
    if job.status in (ExportJob.Status.QUEUED, ExportJob.Status.RUNNING):
        response = HttpResponse(status=202)
        response["X-Progress"] = f"{job.done_types} of {len(job.types)} types written"
        response["Retry-After"] = "2"
        return response
    if job.status == ExportJob.Status.FAILED:
        raise FhirError(500, "exception", f"the export failed ({job.error})")
    base = base_url(request)
    return respond(
        {
            "transactionTime": (job.finished_at or job.created_at).isoformat(),
            "request": job.request_url,
            "requiresAccessToken": True,
            "output": [
                {
                    "type": item["type"],
                    "url": f"{base}/$export-file/{job.pk}/{item['type']}.ndjson",
                    "count": item["count"],
                }
                for item in job.output
            ],
            "error": [],
        }
    )


@fhir_view
def export_file(request: HttpRequest, job_id: int, type_name: str) -> HttpResponseBase:
    """One NDJSON file of a finished export (audited: it holds many patients' records)."""
    caller = _staff(request)
    job = _job(job_id, caller)
    path = export_folder(job) / f"{type_name}.ndjson"
    if job.status != ExportJob.Status.DONE or type_name not in job.types or not path.exists():
        raise FhirError(404, "not-found", f"no {type_name} file in export {job_id}")
    audit_record(
        actor=caller.user,
        action="fhir_export_download",
        object_type="export",
        object_id=job.pk,
        details={"type": type_name},
    )
    # And once for each patient in the file, so that the patient's own access log and an
    # auditor's search by patient both find the download.
    where = {"export": job.pk, "type": type_name}
    audit_patients_seen(
        actor=caller.user,
        action="fhir_export_download",
        details_by_patient=dict.fromkeys(patients_in_file(job, type_name), where),
    )
    return FileResponse(path.open("rb"), content_type="application/fhir+ndjson")
