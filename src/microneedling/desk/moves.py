"""Moving a course session from the desk: pick a free time in its window, preview, confirm."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from microneedling.core.errors import BookingConflict, BookingRefused
from microneedling.desk.access import staff_required
from microneedling.portal.forms import MoveForm
from microneedling.scheduling.models import Appointment
from microneedling.scheduling.replanning import Replan, course_session_move
from microneedling.scheduling.selectors import session_move_options


@staff_required
@require_http_methods(["GET", "POST"])
def visit_move(request: HttpRequest, appointment_id: int) -> HttpResponse:
    """The front desk moves a session; the re-planned rest is shown before it is saved."""
    visit = get_object_or_404(
        Appointment.objects.select_related(
            "course_session", "location", "service", "provider", "patient"
        ).filter(course_session__isnull=False),
        pk=appointment_id,
    )
    now = timezone.now()
    zone = ZoneInfo(visit.location.timezone)
    options = [
        (s.isoformat(), s.astimezone(zone).strftime("%A %d %B, %H:%M"))
        for s in session_move_options(visit, now=now)
    ]
    form = MoveForm(request.POST if request.method == "POST" else None, options=options)
    replan: Replan | None = None
    if request.method == "POST" and form.is_valid():
        try:
            replan = course_session_move(
                appointment=visit,
                starts_at=datetime.fromisoformat(form.cleaned_data["starts_at"]),
                actor=request.user,
                apply=request.POST.get("action") == "apply",
                now=now,
            )
        except (BookingRefused, BookingConflict) as problem:
            form.add_error("starts_at", problem.message)
        else:
            if replan.applied:
                messages.success(request, "Moved; later sessions re-planned inside their windows.")
                return redirect("desk:visit", appointment_id=visit.pk)
    changes = [
        {
            "number": c.number,
            "old": c.old_start.astimezone(zone),
            "new": c.new_start.astimezone(zone),
            "changed": c.changed,
        }
        for c in (replan.changes if replan else ())
    ]
    return render(
        request,
        "desk/move.html",
        {"visit": visit, "form": form, "replan": replan, "changes": changes},
    )
