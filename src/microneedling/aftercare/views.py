"""The patient's care pages: before and after a visit, and the skin report with its advice."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import uuid4

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from microneedling.aftercare.forms import SatisfactionForm, SkinReportForm
from microneedling.aftercare.models import SkinReport
from microneedling.aftercare.selectors import care_plan
from microneedling.aftercare.services import skin_report_file
from microneedling.charting.services import score_record
from microneedling.core.knowledge import load_pack
from microneedling.core.triage.engine import MAX_DAYS
from microneedling.patients.models import Patient
from microneedling.portal.views import patient_required
from microneedling.scheduling.idempotency import KeyReused, run_once
from microneedling.scheduling.models import Appointment
from microneedling.scheduling.selectors import patient_visit

#: The pack's scale the patient rates themselves.
SATISFACTION = "patient_satisfaction"
ACTION_HEADLINES = {
    "expected": "This is part of normal healing.",
    "monitor": "Keep an eye on it.",
    "contact_clinic": "Please contact your clinic today.",
    "urgent": "Contact your clinic now.",
}


@patient_required
@require_http_methods(["GET", "POST"])
def visit_care(request: HttpRequest, patient: Patient, appointment_id: int) -> HttpResponse:
    """What to stop and when, what happens on the day, the aftercare day by day, and after a
    completed visit the patient's own satisfaction score."""
    visit = patient_visit(patient, appointment_id)
    if visit is None:
        return render(request, "portal/not_found.html", status=404)
    scale = next(s for s in load_pack().data.scales if s.code == SATISFACTION)
    completed = visit.status == Appointment.Status.COMPLETED
    form = SatisfactionForm(
        request.POST if request.method == "POST" and completed else None,
        levels=[(str(level.value), level.label) for level in scale.levels],
    )
    if form.is_valid():
        score_record(
            appointment=visit,
            scale=SATISFACTION,
            value=form.cleaned_data["satisfaction"],
            actor=request.user,
        )
        messages.success(request, "Thank you for telling us.")
        return redirect("portal:visit_care", appointment_id=visit.pk)
    return render(
        request,
        "aftercare/care.html",
        {
            "visit": visit,
            "plan": care_plan(visit),
            "can_report": _reportable(visit),
            "reports": visit.skin_reports.order_by("-created_at"),
            "satisfaction_form": form if completed else None,
            "satisfaction": visit.scores.filter(scale=SATISFACTION).first(),
        },
    )


def _reportable(visit: Appointment) -> bool:
    # A visit still marked booked after its start may well have happened (not every desk
    # checks patients in), so only the statuses that say it did not are refused.
    # Triage reads local days since the session up to its bound (a day short of it here, as
    # local days can be one more than elapsed ones); a visit further back is history, not
    # healing (an imported visit from years ago, say).
    since = timezone.now() - visit.starts_at
    return (
        timedelta(0) <= since <= timedelta(days=MAX_DAYS - 1)
        and visit.status not in Appointment.NOT_TREATED
    )


@patient_required
@require_http_methods(["GET", "POST"])
def skin_report(request: HttpRequest, patient: Patient, appointment_id: int) -> HttpResponse:
    """How is your skin? The answer is triaged at once and the advice shown."""
    visit = patient_visit(patient, appointment_id)
    if visit is None or not _reportable(visit):
        return render(request, "portal/not_found.html", status=404)
    posted = request.method == "POST"
    form = SkinReportForm(
        request.POST if posted else None,
        request.FILES if posted else None,
        pack=load_pack(),
        initial={"submission": uuid4().hex},
    )
    if request.method == "POST" and form.is_valid():

        def work() -> tuple[int, Any]:
            report = skin_report_file(
                appointment=visit,
                symptoms=form.symptoms,
                notes=form.cleaned_data["notes"],
                photo=form.cleaned_data["photo"],
            )
            return 201, {"report": report.pk}

        described = {
            "appointment": visit.pk,
            "symptoms": [s.model_dump() for s in form.symptoms],
            "notes": form.cleaned_data["notes"],
        }
        try:
            _, body = run_once(
                request,
                scope="skin_report",
                payload=described,
                work=work,
                key=form.cleaned_data["submission"],
            )
        except KeyReused:
            form.add_error(None, "This form was sent already; open it again to send another.")
        else:
            return redirect("portal:skin_report_result", report_id=body["report"])
    return render(request, "aftercare/report.html", {"visit": visit, "form": form})


@patient_required
def skin_report_result(request: HttpRequest, patient: Patient, report_id: int) -> HttpResponse:
    """What the patient should do now, symptom by symptom."""
    report = SkinReport.objects.filter(patient=patient, pk=report_id).first()
    if report is None:
        return render(request, "portal/not_found.html", status=404)
    return render(
        request,
        "aftercare/result.html",
        {"report": report, "headline": ACTION_HEADLINES[report.action]},
    )
