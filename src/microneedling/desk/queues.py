"""The desk's review queues: screenings a provider must decide, and appointment requests."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from microneedling.accounts.access import Can, may, patients_visible
from microneedling.audit.services import audit_patient_view, audit_patients_listed
from microneedling.core.errors import InputError
from microneedling.desk.access import check_patient, requires
from microneedling.desk.forms import ScreeningDecisionForm
from microneedling.patients.models import Screening
from microneedling.patients.services import screening_review
from microneedling.scheduling.models import AppointmentRequest
from microneedling.scheduling.services import REQUESTS_WAITING, appointment_request_close


def screenings_waiting(user: Any) -> QuerySet[Screening]:
    """Screenings of ``user``'s patients waiting for a provider: each patient's newest only
    (answers given again since replace the older ones, which no longer decide anything)."""
    newest = (
        Screening.objects.filter(patient_id=OuterRef("patient_id")).newest_first().values("pk")[:1]
    )
    return Screening.objects.filter(
        review=Screening.Review.PENDING,
        patient__in=patients_visible(user),
        pk=Subquery(newest),
    )


@requires(Can.CLINICAL_READ)
def screenings(request: HttpRequest) -> HttpResponse:
    """Screenings of one's patients waiting for a provider, oldest first."""
    waiting = list(
        screenings_waiting(request.user).select_related("patient").order_by("created_at")
    )
    audit_patients_listed(
        actor=request.user, action="screenings_view", rows=waiting, what="screenings"
    )
    return render(request, "desk/screenings.html", {"screenings": waiting})


@requires(Can.CLINICAL_READ)
@require_http_methods(["GET", "POST"])
def screening_decide(request: HttpRequest, screening_id: int) -> HttpResponse:
    """Approve or decline one screening, with a reason (audited)."""
    screening = get_object_or_404(Screening.objects.select_related("patient"), pk=screening_id)
    check_patient(request, screening.patient_id, clinical=True)
    if request.method == "POST" and not may(request.user, Can.CLINICAL_WRITE):
        return render(request, "desk/forbidden.html", status=403)
    form = ScreeningDecisionForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        decision = form.cleaned_data["decision"]
        try:
            screening_review(
                screening=screening,
                actor=request.user,
                approve=decision == "approve",
                reason=form.cleaned_data["reason"],
            )
        except ValueError as problem:
            form.add_error(None, str(problem))
        else:
            messages.success(request, f"Screening {decision}d.")
            return redirect("desk:screenings")
    # Audited whenever the page shows the record: a form sent back with errors too.
    audit_patient_view(
        actor=request.user,
        patient_id=screening.patient_id,
        action="screening_view",
        details={"screening": screening.pk},
    )
    reasons = [r for r in screening.result.get("reasons", []) if r["outcome"] != "eligible"]
    return render(
        request, "desk/screening.html", {"screening": screening, "reasons": reasons, "form": form}
    )


@requires(Can.SCHEDULE)
def requests_list(request: HttpRequest) -> HttpResponse:
    """Appointment requests of one's patients still to act on, oldest first."""
    open_requests = list(
        AppointmentRequest.objects.filter(
            status__in=REQUESTS_WAITING, patient__in=patients_visible(request.user)
        )
        .select_related("patient", "location", "service", "provider")
        .order_by("created_at")
    )
    audit_patients_listed(
        actor=request.user, action="requests_view", rows=open_requests, what="requests"
    )
    # Why newer answers stop a treatment is the screening's: for those who read it only.
    clinical = may(request.user, Can.CLINICAL_READ)
    return render(request, "desk/requests.html", {"requests": open_requests, "clinical": clinical})


@requires(Can.SCHEDULE)
@require_POST
def request_close(request: HttpRequest, request_id: int) -> HttpResponse:
    """Close one request the desk has dealt with some other way, with a reason (audited)."""
    # Another scope's request answers as a missing one: ids must not reveal patients.
    waiting = get_object_or_404(
        AppointmentRequest.objects.filter(patient__in=patients_visible(request.user)),
        pk=request_id,
    )
    try:
        appointment_request_close(
            request=waiting, actor=request.user, reason=request.POST.get("reason", "")
        )
    except InputError as problem:
        messages.error(request, f"Not closed: {problem.problem}.")
    else:
        messages.success(request, "Request closed.")
    return redirect("desk:requests")
