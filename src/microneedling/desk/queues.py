"""The desk's review queues: screenings a provider must decide, and appointment requests."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from microneedling.desk.access import staff_required
from microneedling.desk.forms import ScreeningDecisionForm
from microneedling.patients.models import Screening
from microneedling.patients.services import screening_review
from microneedling.scheduling.models import AppointmentRequest


@staff_required
def screenings(request: HttpRequest) -> HttpResponse:
    """Screenings waiting for a provider, oldest first."""
    waiting = (
        Screening.objects.filter(review=Screening.Review.PENDING)
        .select_related("patient")
        .order_by("created_at")
    )
    return render(request, "desk/screenings.html", {"screenings": waiting})


@staff_required
@require_http_methods(["GET", "POST"])
def screening_decide(request: HttpRequest, screening_id: int) -> HttpResponse:
    """Approve or decline one screening, with a reason (audited)."""
    screening = get_object_or_404(Screening.objects.select_related("patient"), pk=screening_id)
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
    reasons = [r for r in screening.result.get("reasons", []) if r["outcome"] != "eligible"]
    return render(
        request, "desk/screening.html", {"screening": screening, "reasons": reasons, "form": form}
    )


@staff_required
def requests_list(request: HttpRequest) -> HttpResponse:
    """Open appointment requests, oldest first."""
    open_requests = (
        AppointmentRequest.objects.filter(status=AppointmentRequest.Status.OPEN)
        .select_related("patient", "location", "service", "provider")
        .order_by("created_at")
    )
    return render(request, "desk/requests.html", {"requests": open_requests})
