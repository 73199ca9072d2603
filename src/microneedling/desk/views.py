"""The desk's queues: side-effect reports that need the clinic."""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from microneedling.accounts.access import (
    Can,
    locations_usable,
    may,
    may_use_location,
    patients_visible,
)
from microneedling.aftercare.models import SkinReport
from microneedling.aftercare.selectors import skin_report_queue
from microneedling.aftercare.services import skin_report_handle
from microneedling.api_types import EARLIEST, LATEST
from microneedling.audit.services import audit_patient_view, audit_patients_listed
from microneedling.desk.access import check_patient, requires, staff_required
from microneedling.desk.forms import ReportHandledForm
from microneedling.desk.messages import dead_messages_of
from microneedling.desk.queues import screenings_waiting
from microneedling.directory.models import Location
from microneedling.patients.photos import photo_served
from microneedling.scheduling.models import AppointmentRequest
from microneedling.scheduling.selectors import DaySheet, day_sheet
from microneedling.scheduling.services import REQUESTS_WAITING


@staff_required
def home(request: HttpRequest) -> HttpResponse:
    """The desk's start: the queues this person's role works, and their locations' sheets."""
    user = request.user
    mine = patients_visible(user)
    clinical = may(user, Can.CLINICAL_READ)
    locations = locations_usable(user).exclude(status=Location.Status.CLOSED).order_by("name")
    return render(
        request,
        "desk/home.html",
        {
            "locations": locations,
            "clinical": clinical,
            "closures": may(user, Can.CLOSURES),
            "open_reports": skin_report_queue().filter(patient__in=mine).count() if clinical else 0,
            "pending_reviews": screenings_waiting(user).count() if clinical else 0,
            "dead_messages": dead_messages_of(user).count(),
            "open_requests": AppointmentRequest.objects.filter(
                status__in=REQUESTS_WAITING, patient__in=mine
            ).count(),
        },
    )


@requires(Can.CLINICAL_READ)
def skin_reports(request: HttpRequest) -> HttpResponse:
    """Reports above "keep an eye on it", urgent first, oldest first (of one's patients)."""
    reports = list(skin_report_queue().filter(patient__in=patients_visible(request.user)))
    audit_patients_listed(
        actor=request.user, action="skin_reports_view", rows=reports, what="skin_reports"
    )
    return render(request, "desk/skin_reports.html", {"reports": reports})


@requires(Can.CLINICAL_READ)
@require_http_methods(["GET", "POST"])
def skin_report_detail(request: HttpRequest, report_id: int) -> HttpResponse:
    """One report with its triage and photo; reading it is audited, handling it too."""
    report = get_object_or_404(
        SkinReport.objects.select_related("patient", "appointment__location"), pk=report_id
    )
    check_patient(request, report.patient_id, clinical=True)
    if request.method == "POST" and not may(request.user, Can.CLINICAL_WRITE):
        return render(request, "desk/forbidden.html", status=403)
    form = ReportHandledForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            skin_report_handle(report=report, actor=request.user, note=form.cleaned_data["note"])
        except ValueError as problem:
            form.add_error("note", str(problem))
        else:
            messages.success(request, "Marked as handled.")
            return redirect("desk:skin_reports")
    # Audited whenever the page shows the record: a form sent back with errors too.
    audit_patient_view(
        actor=request.user,
        patient_id=report.patient_id,
        action="skin_report_view",
        details={"skin_report": report.pk},
    )
    return render(request, "desk/skin_report.html", {"report": report, "form": form})


@requires(Can.CLINICAL_READ)
def skin_report_photo(request: HttpRequest, report_id: int) -> FileResponse:
    """The report's photo, to the patient's clinicians only, each viewing audited."""
    report = get_object_or_404(SkinReport, pk=report_id)
    check_patient(request, report.patient_id, clinical=True)
    if not report.photo:
        raise Http404
    audit_patient_view(
        actor=request.user,
        patient_id=report.patient_id,
        action="skin_report_photo_view",
        details={"skin_report": report.pk},
    )
    return photo_served(report.photo)


def _audit_sheet(request: HttpRequest, sheet: DaySheet) -> None:
    # The sheet names every patient booked that day and what for: each one is a record seen.
    audit_patients_listed(
        actor=request.user,
        action="day_sheet_view",
        rows=[item.appointment for _, visits in sheet.providers for item in visits],
        what="appointments",
        details={"location": sheet.location.pk, "day": sheet.day.isoformat()},
    )


@requires(Can.SCHEDULE)
def day_sheet_view(request: HttpRequest, slug: str) -> HttpResponse:
    """A location's day: providers and rooms against time, phases visible, with actions."""
    location = get_object_or_404(Location, slug=slug)
    if not may_use_location(request.user, location.pk):
        return render(request, "desk/forbidden.html", status=403)
    zone = ZoneInfo(location.timezone)
    today = timezone.now().astimezone(zone).date()
    try:
        day = date.fromisoformat(request.GET.get("day", "")) if request.GET.get("day") else today
    except ValueError:
        messages.error(request, "The day must be a date like 2027-03-08; showing today.")
        day = today
    if not EARLIEST <= day <= LATEST:  # nor a day at the ends of the calendar
        messages.error(
            request,
            f"The day must be between {EARLIEST.year} and {LATEST.year}; showing today.",
        )
        day = today
    sheet = day_sheet(location, day)
    _audit_sheet(request, sheet)
    with timezone.override(zone):  # the sheet reads in the location's own time
        return render(
            request,
            "desk/day_sheet.html",
            {
                "sheet": sheet,
                "previous": day - timedelta(days=1),
                "next": day + timedelta(days=1),
            },
        )
