"""Moving a course session from the desk: pick a free time in its window, preview, confirm."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from microneedling.accounts.access import Can
from microneedling.audit.services import audit_patient_view
from microneedling.desk.access import check_location, check_patient, requires
from microneedling.portal.moving import move_step, replan_changes
from microneedling.scheduling.models import Appointment


@requires(Can.SCHEDULE)
@require_http_methods(["GET", "POST"])
def visit_move(request: HttpRequest, appointment_id: int) -> HttpResponse:
    """The front desk moves a session; the re-planned rest is shown before it is saved."""
    visit = get_object_or_404(
        Appointment.objects.select_related(
            "course_session", "location", "service", "provider", "patient"
        ).filter(course_session__isnull=False),
        pk=appointment_id,
    )
    check_patient(request, visit.patient_id)
    check_location(request, visit.location_id)
    form, replan = move_step(request, visit, zone=ZoneInfo(visit.location.timezone))
    if replan is not None and replan.applied:
        messages.success(request, "Moved; later sessions re-planned inside their windows.")
        return redirect("desk:visit", appointment_id=visit.pk)
    # Audited whenever the page shows the patient's sessions: the form, a preview, a refusal.
    audit_patient_view(
        actor=request.user,
        patient_id=visit.patient_id,
        action="visit_view_schedule_only",
        details={"appointment": visit.pk, "move": True},
    )
    changes = replan_changes(replan, ZoneInfo(visit.location.timezone))
    return render(
        request,
        "desk/move.html",
        {"visit": visit, "form": form, "replan": replan, "changes": changes},
    )
