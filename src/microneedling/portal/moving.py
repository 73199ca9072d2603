"""The move step shared by the patient's and the desk's pages: the free starts inside the
session's window as choices, then a preview or the move itself."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from django.http import HttpRequest
from django.utils import timezone

from microneedling.core.errors import BookingConflict, BookingRefused
from microneedling.portal.forms import MoveForm
from microneedling.scheduling.models import Appointment
from microneedling.scheduling.replanning import Replan, course_session_move
from microneedling.scheduling.selectors import session_move_options


def move_step(
    request: HttpRequest, visit: Appointment, *, zone: tzinfo
) -> tuple[MoveForm, Replan | None]:
    """The form of free starts and, on a valid POST, the re-plan: previewed, or saved when
    the action is ``apply``. A refusal is put beside the field; nothing is saved then.

    The starts read in ``zone``, the one the rest of the page reads in (the patient's own
    on their pages, the location's at the desk): a list in another zone than the course
    and preview beside it would have the patient choose an hour off from what they meant.
    """
    now = timezone.now()
    options = [
        (s.isoformat(), s.astimezone(zone).strftime("%A %d %B, %H:%M"))
        for s in session_move_options(visit, now=now)
    ]
    form = MoveForm(request.POST if request.method == "POST" else None, options=options)
    if request.method != "POST" or not form.is_valid():
        return form, None
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
        return form, None
    return form, replan


def replan_changes(replan: Replan | None, zone: ZoneInfo) -> list[dict[str, Any]]:
    """Each session's time now and after the change, for the preview table."""
    if replan is None:
        return []
    return [
        {
            "number": change.number,
            "old": change.old_start.astimezone(zone),
            "new": change.new_start.astimezone(zone),
            "changed": change.changed,
        }
        for change in replan.changes
    ]
