"""The patient's course pages: plan and book a whole course, see it, move or cancel a session
(each change previewed before it is saved). Thin views over the scheduling services."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from microneedling.charting.selectors import course_scores
from microneedling.core.errors import BookingConflict, BookingRefused, InputError
from microneedling.core.knowledge import load_pack
from microneedling.directory.models import Location
from microneedling.directory.selectors import treatment_service_for
from microneedling.patients.models import Patient
from microneedling.portal.forms import TIMES_OF_DAY, CoursePlanForm
from microneedling.portal.moving import move_step, replan_changes
from microneedling.portal.views import patient_required
from microneedling.scheduling import services
from microneedling.scheduling.idempotency import KeyReused, run_once
from microneedling.scheduling.models import Appointment
from microneedling.scheduling.rebooking import course_session_replace
from microneedling.scheduling.replanning import Replan
from microneedling.scheduling.selectors import patient_courses, patient_visit
from microneedling.web.security import rate_limit


def _initial_plan(patient: Patient) -> dict[str, Any]:
    """Start from the latest answers: their areas and the first day allowed."""
    screening = patient.screenings.newest_first().first()
    tomorrow = timezone.localdate() + timedelta(days=1)
    initial: dict[str, Any] = {"first_session": tomorrow}
    location = (
        Location.objects.filter(organization_id=patient.organization_id)
        .exclude(status=Location.Status.CLOSED)
        .order_by("name")
        .first()
    )
    if location is not None:
        initial["location"] = location.pk
    if screening is not None:
        intake = screening.intake
        initial["areas"] = intake.get("treatment_areas", [])
        planned = date.fromisoformat(intake["planned_date"])
        allowed = screening.deferred_until or planned
        initial["first_session"] = max(tomorrow, planned, allowed)
    return initial


#: The planner's names for its input, as the plan form calls those fields.
PLANNER_FIELDS = {"area": "areas", "indication": "indications", "first_session": "first_session"}


@rate_limit("booking")
@patient_required
@require_http_methods(["GET", "POST"])
def course_plan(request: HttpRequest, patient: Patient) -> HttpResponse:
    """Choose concerns and areas, see the proposed course as a timeline, book it all."""
    pack = load_pack()
    posted = None
    if request.method == "POST":
        posted = request.POST.copy()
        if not posted.get("submission"):
            posted["submission"] = uuid4().hex
    form = CoursePlanForm(
        posted,
        pack=pack,
        organization_id=patient.organization_id,
        initial={**_initial_plan(patient), "submission": uuid4().hex},
    )
    proposal = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        location = data["location"]
        service = treatment_service_for(location, data["areas"])
        if service is None:
            form.add_error("areas", "No single visit here covers all these areas; choose fewer.")
        else:
            args: dict[str, Any] = {
                "patient": patient,
                "location": location,
                "service": service,
                "indications": data["indications"],
                "first_session": data["first_session"],
                "areas": data["areas"],
                "preferences": services.Preferences(
                    weekdays=tuple(data["weekdays"]), times=TIMES_OF_DAY[data["time_of_day"]]
                ),
            }
            try:
                services.booking_gate(patient, data["first_session"], areas=data["areas"])
                if request.POST.get("action") == "book":
                    return _book(request, args, key=data["submission"])
                proposal = services.course_propose(**args)
                if not proposal.series.ok:
                    form.add_error(
                        None, _no_fit(proposal.series.failed_session, proposal.series.reason)
                    )
                    proposal = None
            except BookingRefused as refused:
                form.add_error(
                    refused.field if refused.field in form.fields else None, refused.message
                )
            except BookingConflict as conflict:
                form.add_error(None, _no_fit(conflict.session, conflict.message))
            except KeyReused:
                form.add_error(
                    None, "This form already booked a course; open the plan again to book another."
                )
            except InputError as wrong:
                # The planner names its own input ("area.0"): show it on the form's field.
                field = PLANNER_FIELDS.get(wrong.field.split(".")[0])
                form.add_error(field, f"{wrong.problem[:1].upper()}{wrong.problem[1:]}.")
    return render(
        request,
        "portal/course_plan.html",
        {"form": form, "proposal": proposal, "timeline": _timeline(proposal)},
    )


def _book(request: HttpRequest, args: dict[str, Any], *, key: str) -> HttpResponse:
    """Book the course once per form: a repeated "Book all" finds the first one's course."""

    def work() -> tuple[int, Any]:
        course = services.course_book(actor=request.user, **args)
        return 201, {"course": course.pk}

    described = {**args, "patient": args["patient"].pk, "location": args["location"].pk}
    described["service"] = args["service"].pk
    _, body = run_once(request, scope="portal_course", payload=described, work=work, key=key)
    messages.success(request, "Your course is booked. See you soon!")
    return redirect("portal:course", course_id=body["course"])


def _no_fit(session: int | None, reason: str | None) -> str:
    where = f"Session {session}" if session else "The course"
    return f"{where} could not be placed: {reason or 'no free times'}. Try another start day."


def _timeline(proposal: services.CourseProposal | None) -> list[dict[str, Any]]:
    """Each proposed session with its window and the time found for it."""
    if proposal is None:
        return []
    zone = ZoneInfo(proposal.calendar.zone)
    chosen = dict(proposal.series.choices)
    rows = []
    for session in proposal.plan.sessions:
        slot = chosen.get(session.number)
        rows.append(
            {
                "number": session.number,
                "earliest": session.earliest,
                "latest": session.latest,
                "start": slot.start.astimezone(zone) if slot else None,
            }
        )
    return rows


@patient_required
def course_detail(request: HttpRequest, patient: Patient, course_id: int) -> HttpResponse:
    """My course: every session with its window and visit, and what can be changed."""
    course = patient_courses(patient).filter(pk=course_id).first()
    if course is None:
        return render(request, "portal/not_found.html", status=404)
    zone = ZoneInfo(course.location.timezone)
    now = timezone.now()
    rows = []
    for session in course.sessions.all():
        visits = list(session.appointments.all())
        current = next((v for v in visits if v.status in Appointment.HOLDING), None)
        rows.append(
            {
                "session": session,
                "visit": current,
                "local_start": current.starts_at.astimezone(zone) if current else None,
                "history": [v for v in visits if v is not current],
                # The same test the services apply: a booked visit still to come.
                "changeable": current is not None
                and current.status == Appointment.Status.BOOKED
                and current.starts_at > now,
            }
        )
    return render(
        request,
        "portal/course.html",
        {"course": course, "rows": rows, "scores": course_scores(course)},
    )


def _own_course_visit(patient: Patient, appointment_id: int) -> Appointment | None:
    visit = patient_visit(patient, appointment_id)
    return visit if visit is not None and visit.course_session is not None else None


@patient_required
@require_http_methods(["GET", "POST"])
def session_move(request: HttpRequest, patient: Patient, appointment_id: int) -> HttpResponse:
    """Choose a new time inside the session's window; see the re-planned rest; confirm."""
    visit = _own_course_visit(patient, appointment_id)
    if visit is None:
        return render(request, "portal/not_found.html", status=404)
    # In the patient's own zone, as the course page and the preview below the list read.
    form, replan = move_step(request, visit, zone=timezone.get_current_timezone())
    if replan is not None and replan.applied:
        messages.success(request, "Your session has moved; the rest of the course follows.")
        return redirect("portal:course", course_id=replan.course_id)
    zone = ZoneInfo(visit.location.timezone)
    return render(
        request,
        "portal/move.html",
        {"visit": visit, "form": form, "replan": replan, "changes": replan_changes(replan, zone)},
    )


@patient_required
@require_http_methods(["GET", "POST"])
def session_cancel(request: HttpRequest, patient: Patient, appointment_id: int) -> HttpResponse:
    """Cancel a session: see the replacement (and any later change) first, then confirm."""
    visit = _own_course_visit(patient, appointment_id)
    if visit is None:
        return render(request, "portal/not_found.html", status=404)
    zone = ZoneInfo(visit.location.timezone)
    replan: Replan | None = None
    problem = ""
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "cancel_only":
                services.appointment_cancel(appointment=visit, actor=request.user, reason="patient")
                messages.success(request, "The session is cancelled. Book it again from here.")
                return redirect("portal:course", course_id=visit.course_session.course_id)  # type: ignore[union-attr]
            replan = course_session_replace(
                appointment=visit,
                status="cancelled",
                actor=request.user,
                apply=action == "apply",
                reason="patient",
            )
        except (BookingRefused, BookingConflict) as error:
            problem = error.message
        else:
            if replan.applied:
                messages.success(request, "Cancelled, and the session is booked again.")
                return redirect("portal:course", course_id=replan.course_id)
    return render(
        request,
        "portal/cancel.html",
        {
            "visit": visit,
            "replan": replan,
            "changes": replan_changes(replan, zone),
            "problem": problem,
        },
    )
