"""One visit at the desk: its status actions, the procedure chart and the outcome scores."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from microneedling.accounts.access import Can, may, may_use_location
from microneedling.audit.services import audit_patient_view
from microneedling.charting.models import SessionPhoto
from microneedling.charting.selectors import (
    chart_version,
    course_photos,
    course_scores,
    latest_chart,
)
from microneedling.charting.services import (
    STARTED,
    chart_sign,
    chart_write,
    consent_is_current,
    score_record,
    session_photo_add,
)
from microneedling.core.errors import BookingConflict, BookingRefused, InputError
from microneedling.core.knowledge import load_pack
from microneedling.desk.access import (
    charts_here,
    check_location,
    check_patient,
    requires,
)
from microneedling.desk.forms import ChartForm, PhotoForm, ScoreForm
from microneedling.patients.photos import photo_served
from microneedling.scheduling import services
from microneedling.scheduling.models import Appointment
from microneedling.scheduling.selectors import courses_with_visits as patient_courses_all
from microneedling.scheduling.selectors import sheet_visit

#: The status buttons the desk offers from each status.
ACTIONS = {
    "booked": [("checked_in", "Check in"), ("no_show", "No-show")],
    "checked_in": [("in_progress", "Start"), ("no_show", "No-show")],
    "in_progress": [("completed", "Complete")],
}


def _visit(appointment_id: int) -> Appointment:
    return get_object_or_404(
        Appointment.objects.select_related(
            "patient", "location", "service", "provider", "course_session"
        ),
        pk=appointment_id,
    )


@requires(Can.SCHEDULE)
@require_http_methods(["GET", "POST"])
def visit(request: HttpRequest, appointment_id: int) -> HttpResponse:
    """The visit page; POSTs write or amend the chart, sign it, or record a score.

    The front desk sees the visit and its status actions; the chart, photos and scores
    only show to those whose role reads clinical notes, and only they may write them."""
    appointment = _visit(appointment_id)
    check_patient(request, appointment.patient_id)
    clinical = may(request.user, Can.CLINICAL_READ)  # within scope: checked just above
    # Another location's visit of one's patient may be read here, not checked in or moved.
    schedules_here = may_use_location(request.user, appointment.location_id)
    pack = load_pack()
    chart = latest_chart(appointment) if clinical else None
    action = request.POST.get("action") if request.method == "POST" else None
    # Clinical roles write; at another location's visit only its own provider does.
    writes_here = may(request.user, Can.CLINICAL_WRITE) and charts_here(
        request.user,
        location_id=appointment.location_id,
        provider_id=appointment.provider_id,
        works_there=schedules_here,
    )
    if action is not None and not writes_here:
        return render(request, "desk/forbidden.html", status=403)
    editing = action in ("chart", "amend") or request.GET.get("amend") == "1"
    chart_form = ChartForm(
        request.POST if action in ("chart", "amend") else None,
        appointment=appointment,
        pack=pack,
        initial=ChartForm.initial_from(chart) if chart is not None and editing else None,
    )
    score_form = ScoreForm(request.POST if action == "score" else None, pack=pack)
    photo_form = PhotoForm(
        request.POST if action == "photo" else None, request.FILES if action == "photo" else None
    )
    try:
        if action in ("chart", "amend") and chart_form.is_valid():
            chart_write(
                appointment=appointment,
                actor=request.user,
                data=chart_form.chart_data(),
                amends=chart if action == "amend" else None,
            )
            messages.success(request, "Chart saved as a draft: check it, then sign it.")
            return redirect("desk:visit", appointment_id=appointment.pk)
        if action == "sign" and chart is not None:
            # The version of the draft the page showed: an edit since then is not signed.
            chart_sign(chart=chart, actor=request.user, seen=request.POST.get("version", ""))
            messages.success(request, "Chart signed and locked.")
            return redirect("desk:visit", appointment_id=appointment.pk)
        if action == "photo" and photo_form.is_valid():
            session_photo_add(
                appointment=appointment,
                kind=photo_form.cleaned_data["kind"],
                file=photo_form.cleaned_data["file"],
                actor=request.user,
            )
            messages.success(request, "Photo kept with the session.")
            return redirect("desk:visit", appointment_id=appointment.pk)
        if action == "score" and score_form.is_valid():
            score_record(
                appointment=appointment,
                scale=score_form.cleaned_data["scale"],
                value=score_form.cleaned_data["value"],
                notes=score_form.cleaned_data["notes"],
                actor=request.user,
            )
            messages.success(request, "Score recorded.")
            return redirect("desk:visit", appointment_id=appointment.pk)
    except InputError as error:
        form = {"score": score_form, "photo": photo_form}.get(action or "", chart_form)
        field = error.field.split(".")[0]
        if field == "areas" and "." in error.field:
            index = int(error.field.split(".")[1])
            field = f"depth_{chart_form.area_codes[index]}"
        if field in form.fields:
            form.add_error(field, error.problem)
        else:  # about the visit or the chart as a whole: shown whichever forms the page has
            messages.error(request, f"Not saved: {error.problem}.")
    # Audited whenever the page shows the record: a form sent back with errors too.
    audit_patient_view(
        actor=request.user,
        patient_id=appointment.patient_id,
        action="visit_view" if clinical else "visit_view_schedule_only",
        details={"appointment": appointment.pk},
    )
    context: dict[str, Any] = {
        "visit": appointment,
        "clinical": clinical,
        "may_chart": clinical and writes_here,
        "chart": chart,
        "chart_form": chart_form,
        "score_form": score_form,
        "scores": appointment.scores.order_by("scale"),
        "photo_form": photo_form,
        "photos": appointment.photos.order_by("taken_at"),
        "consent": consent_is_current(
            appointment.patient,
            timezone.now().astimezone(ZoneInfo(appointment.location.timezone)).date(),
        ),
        "actions": ACTIONS.get(appointment.status, []) if schedules_here else [],
        "may_move": schedules_here,
        "editing": editing,
        "chart_version": chart_version(chart) if chart is not None else "",
        "started": appointment.status in STARTED,
        "treated": appointment.status not in Appointment.NOT_TREATED,
        "not_cleared": _not_cleared(appointment),
    }
    return render(request, "desk/visit.html", context)


def _not_cleared(appointment: Appointment) -> str:
    """Why the patient's newest screening stops this treatment from starting ("" if it does
    not): the desk and the provider see it before the patient is in the chair."""
    if appointment.status not in (*Appointment.TO_COME, Appointment.Status.CHECKED_IN):
        return ""
    try:
        services.treatment_cleared_check(appointment)
    except BookingRefused as refused:
        return refused.message
    return ""


@requires(Can.SCHEDULE)
@require_POST
def visit_status(request: HttpRequest, appointment_id: int) -> HttpResponse:
    """Check in, start, complete or mark a no-show; refusals come back as a message."""
    appointment = _visit(appointment_id)
    check_patient(request, appointment.patient_id)
    check_location(request, appointment.location_id)
    status = request.POST.get("status", "")
    problem = ""
    try:
        services.appointment_set_status(
            appointment=appointment, status=status, actor=request.user, reason="desk"
        )
    except (BookingRefused, BookingConflict) as error:
        problem = f"Not changed: {error.message}."
    if request.headers.get("HX-Request"):
        # From the day sheet: send back just this visit's row, changed (or with the refusal).
        if problem:  # a change is audited as one; a refused one still shows the row
            audit_patient_view(
                actor=request.user,
                patient_id=appointment.patient_id,
                action="visit_view_schedule_only",
                details={"appointment": appointment.pk, "refused_status": status[:40]},
            )
        with timezone.override(ZoneInfo(appointment.location.timezone)):
            return render(
                request,
                "desk/_sheet_visit.html",
                {"item": sheet_visit(appointment.pk), "problem": problem},
            )
    if problem:
        messages.error(request, problem)
    else:
        messages.success(
            request, f"{appointment.patient.first_name}: {appointment.get_status_display()}."
        )
    back = request.POST.get("next") or ""
    if back.startswith("/desk/"):
        return redirect(back)
    return redirect("desk:visit", appointment_id=appointment.pk)


@requires(Can.CLINICAL_READ)
def session_photo(request: HttpRequest, photo_id: int) -> FileResponse:
    """A session photo, to the patient's clinicians only, each viewing audited."""
    photo = get_object_or_404(SessionPhoto.objects.select_related("appointment"), pk=photo_id)
    check_patient(request, photo.appointment.patient_id, clinical=True)
    audit_patient_view(
        actor=request.user,
        patient_id=photo.appointment.patient_id,
        action="session_photo_view",
        details={"photo": photo.pk},
    )
    return photo_served(photo.file)


@requires(Can.CLINICAL_READ)
def course_compare(request: HttpRequest, course_id: int) -> HttpResponse:
    """Before and after side by side, with the scores over the course (audited)."""
    course = get_object_or_404(patient_courses_all().filter(pk=course_id))
    check_patient(request, course.patient_id, clinical=True)
    before, after = course_photos(course)
    audit_patient_view(
        actor=request.user,
        patient_id=course.patient_id,
        action="course_compare_view",
        details={"course": course.pk},
    )
    return render(
        request,
        "desk/compare.html",
        {"course": course, "before": before, "after": after, "scores": course_scores(course)},
    )
