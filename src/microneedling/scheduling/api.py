"""Scheduling endpoints: availability, screening, course search and booking, appointments."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from ninja import Field, Router, Schema, Status
from ninja.errors import HttpError

from microneedling.accounts.access import (
    Can,
    Role,
    can_act_for,
    may,
    may_use_location,
    patients_visible,
    role_of,
)
from microneedling.accounts.services import api_token_user
from microneedling.api import BearerToken, problem
from microneedling.api_types import ClinicDate, ClinicDateTime, RecordId
from microneedling.audit.middleware import client_address
from microneedling.audit.services import audit_patient_view, audit_patients_listed
from microneedling.core.errors import BookingRefused, InputError
from microneedling.core.screening import Intake
from microneedling.directory.api import service_of
from microneedling.directory.models import Location, Provider
from microneedling.patients.models import Patient
from microneedling.patients.services import screening_record
from microneedling.scheduling import services
from microneedling.scheduling.idempotency import KeyReused, run_once
from microneedling.scheduling.models import Appointment, AppointmentRequest
from microneedling.scheduling.rebooking import course_session_replace
from microneedling.scheduling.replanning import Replan, course_session_move
from microneedling.scheduling.selectors import free_starts
from microneedling.web.security import RateLimited, too_many

router = Router(tags=["scheduling"])
auth = BearerToken()
MAX_AVAILABILITY_DAYS = 62


class SlotOut(Schema):
    start: datetime
    end: datetime
    provider: str
    room: str | None
    device: str | None


def _slot_out(slot: Any) -> SlotOut:
    kinds: dict[str, str] = {}
    for needs in slot.assignment.values():
        kinds.update(needs)
    return SlotOut(
        start=slot.start,
        end=slot.end,
        provider=kinds["provider"],
        room=kinds.get("room"),
        device=kinds.get("device"),
    )


@router.get("/availability", response=list[SlotOut])
def availability(
    request: HttpRequest,
    location_id: int,
    service_id: int,
    start: ClinicDate,
    end: ClinicDate,
    provider_id: RecordId | None = None,
) -> list[SlotOut]:
    """Start times at which every phase of the service finds its resources."""
    if end < start:
        raise InputError("end", "is before start")
    if (end - start).days > MAX_AVAILABILITY_DAYS:
        raise InputError("end", f"ask for at most {MAX_AVAILABILITY_DAYS} days at a time")
    location = get_object_or_404(Location, pk=location_id)
    service = service_of(location, service_id)
    slots = free_starts(
        location=location,
        service=service,
        first_day=start,
        last_day=end,
        provider_id=provider_id,
        now=timezone.now(),
        # The desk sees the times it may book: a walk-in's too (see appointment_book).
        ignore_notice=services.schedules(_caller(request)),
    )
    return [_slot_out(s) for s in slots]


def _caller(request: HttpRequest) -> Any:
    """Who asks a public endpoint: the user of the bearer token sent with it (an unknown
    token is nobody), else whoever is signed in to the session (a visitor, a patient or
    the desk's browser)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        return api_token_user(token.strip())
    return request.user


def _throttle(request: HttpRequest) -> None:
    """Bookings per client address and minute are limited (429 past the limit)."""
    limit = settings.MICRONEEDLING["RATE_LIMITS"]["booking"]
    if too_many("booking", client_address(request) or "unknown", limit):
        raise RateLimited("booking")


def _patient(request: HttpRequest, patient_id: int) -> Patient:
    patient = get_object_or_404(Patient, pk=patient_id)
    if not can_act_for(request.user, patient):
        # Same answer as a missing record: ids must not reveal who is a patient.
        raise HttpError(404, "Not Found")
    return patient


class ScreeningIn(Schema):
    patient_id: int
    intake: Intake


@router.post("/screenings", auth=auth, response={201: dict[str, Any]})
def create_screening(request: HttpRequest, payload: ScreeningIn) -> Status[dict[str, Any]]:
    """Screen an intake for a patient and keep the verdict (audited).

    The patient themselves, or a clinical role (providers) for a patient in their scope: the
    pages let only the patient answer the intake, and the verdict is clinical, which the
    front desk, clinic admins and chain operators do not write."""
    # The role is checked before the record is looked up, so a refusal says nothing about
    # which patients exist.
    if role_of(request.user) != Role.PATIENT and not may(request.user, Can.CLINICAL_WRITE):
        raise HttpError(403, "only the patient or a provider may record a screening")
    patient = _patient(request, payload.patient_id)
    screening = screening_record(patient=patient, intake=payload.intake, actor=request.user)
    return Status(201, {"id": screening.pk, "review": screening.review, **screening.result})


class PreferencesIn(Schema):
    provider_id: RecordId | None = None
    weekdays: list[int] = Field(default_factory=list)
    times: list[tuple[str, str]] = Field(default_factory=list)


class CourseIn(Schema):
    patient_id: int
    location_id: int
    service_id: int
    indications: list[str] = Field(min_length=1)
    first_session: ClinicDate
    areas: list[str] | None = None
    preferences: PreferencesIn = Field(default_factory=PreferencesIn)


def _course_args(request: HttpRequest, payload: CourseIn) -> dict[str, Any]:
    patient = _patient(request, payload.patient_id)
    location = get_object_or_404(Location, pk=payload.location_id)
    prefs = payload.preferences
    for index, weekday in enumerate(prefs.weekdays):
        if not 0 <= weekday <= 6:
            raise InputError(f"preferences.weekdays.{index}", "must be 0 (Monday) to 6")
    return {
        "patient": patient,
        "location": location,
        "service": service_of(location, payload.service_id),
        "indications": payload.indications,
        "first_session": payload.first_session,
        "areas": payload.areas,
        "preferences": services.Preferences(
            provider_id=prefs.provider_id, weekdays=tuple(prefs.weekdays), times=tuple(prefs.times)
        ),
    }


def _plan_out(proposal: services.CourseProposal) -> dict[str, Any]:
    chosen = dict(proposal.series.choices) if proposal.series.ok else {}
    plan = proposal.plan.to_dict()
    for session in plan["sessions"]:
        slot = chosen.get(session["number"])
        session["slot"] = _slot_out(slot).model_dump(mode="json") if slot else None
    return {
        "ok": proposal.series.ok,
        "failed_session": proposal.series.failed_session,
        "reason": proposal.series.reason,
        "plan": plan,
    }


#: The course planner's names for its input, as this API's course body calls those fields.
PLANNER_FIELDS = {"indication": "indications", "area": "areas"}


@contextmanager
def _course_body_fields() -> Iterator[None]:
    """Name a planner's refusal by the course body's own field (``indications.1``) rather
    than the planner's (``indication.1``): the client must find the field it sent."""
    try:
        yield
    except InputError as error:
        head, dot, rest = error.field.partition(".")
        if head not in PLANNER_FIELDS:
            raise
        raise InputError(f"{PLANNER_FIELDS[head]}{dot}{rest}", error.problem) from error


@router.post("/courses/search", auth=auth, response=dict[str, Any])
def search_course(request: HttpRequest, payload: CourseIn) -> dict[str, Any]:
    """Plan a course and find a slot for every session, without booking anything."""
    with _course_body_fields():
        proposal = services.course_propose(actor=request.user, **_course_args(request, payload))
    return _plan_out(proposal)


def _course_out(booked: services.BookedCourse) -> dict[str, Any]:
    # The sessions and visits as the booking just wrote them (one visit each, in the same
    # order): the answer needs no read back. Times in UTC, as the database gives them.
    sessions = []
    for session, visit in zip(booked.sessions, booked.visits, strict=True):
        sessions.append(
            {
                "number": session.number,
                "earliest": session.earliest.isoformat(),
                "target": session.target.isoformat(),
                "latest": session.latest.isoformat(),
                "status": session.status,
                "appointment": {
                    "id": visit.pk,
                    "starts_at": visit.starts_at.astimezone(UTC).isoformat(),
                    "ends_at": visit.ends_at.astimezone(UTC).isoformat(),
                    "provider_id": visit.provider_id,
                    "status": visit.status,
                },
            }
        )
    course = booked.course
    return {
        "id": course.pk,
        "status": course.status,
        "indications": course.indications,
        "protocols": course.protocols,
        "sessions": sessions,
    }


@router.post("/courses", auth=auth)
def book_course(request: HttpRequest, payload: CourseIn) -> HttpResponse:
    """Book every session of a course at once, or nothing (409 names the session).

    Send an ``Idempotency-Key`` header: a retried request returns the first answer.
    """
    _throttle(request)
    args = _course_args(request, payload)

    def work() -> tuple[int, Any]:
        try:
            with _course_body_fields():
                booked = services.course_booking(actor=request.user, **args)
        except BookingRefused as refused:
            if refused.code != "review_pending":
                raise
            pending = services.appointment_request_create(
                patient=args["patient"],
                location=args["location"],
                service=args["service"],
                reason="clinician_review",
                payload=payload.model_dump(mode="json"),
            )
            return 202, {
                "request_id": pending.pk,
                "status": pending.status,
                "detail": "a provider must review the screening before booking",
            }
        return 201, _course_out(booked)

    return _respond(request, "courses", payload.model_dump(mode="json"), work)


def _respond(request: HttpRequest, scope: str, payload: Any, work: Any) -> HttpResponse:
    try:
        status, body = run_once(request, scope=scope, payload=payload, work=work)
    except KeyReused as error:
        return problem(
            422,
            "Idempotency-Key reused",
            str(error),
            errors=[{"field": "Idempotency-Key", "message": str(error)}],
        )
    return HttpResponse(
        json.dumps(body, default=str), status=status, content_type="application/json"
    )


class AppointmentIn(Schema):
    patient_id: int
    location_id: int
    service_id: int
    provider_id: int
    starts_at: ClinicDateTime
    override_reason: str = ""


class AppointmentOut(Schema):
    id: int
    patient_id: int
    location_id: int
    service_id: int
    provider_id: int
    starts_at: datetime
    ends_at: datetime
    status: str
    course_session_id: int | None


@router.post("/appointments", auth=auth)
def book_appointment(request: HttpRequest, payload: AppointmentIn) -> HttpResponse:
    """Book one visit (409 names the resource in conflict). Honours ``Idempotency-Key``."""
    _throttle(request)
    patient = _patient(request, payload.patient_id)
    location = get_object_or_404(Location, pk=payload.location_id)
    service = service_of(location, payload.service_id)
    provider = get_object_or_404(Provider, pk=payload.provider_id, active=True)
    if payload.override_reason and not may(request.user, Can.OVERRIDE):
        raise HttpError(403, "only the desk and clinic admins may override a conflict")

    def work() -> tuple[int, Any]:
        services.visit_gate(
            patient=patient,
            service=service,
            location=location,
            starts_at=payload.starts_at,
            field="service_id",
            day_field="starts_at",
        )
        appointment = services.appointment_book(
            patient=patient,
            service=service,
            location=location,
            provider=provider,
            starts_at=payload.starts_at,
            actor=request.user,
            override_reason=payload.override_reason,
        )
        return 201, AppointmentOut.from_orm(appointment).model_dump(mode="json")

    return _respond(request, "appointments", payload.model_dump(mode="json"), work)


def _visit_to_change(request: HttpRequest, appointment_id: int) -> Appointment:
    """The visit a status change, move or replacement is asked for, if the caller may
    change it: the patient their own; staff a visit in scope *at a location they work at*.
    Seeing a patient, who may have visits at several of the chain's locations, does not make
    every one of those diaries one's own (the desk's pages refuse the same)."""
    appointment = get_object_or_404(Appointment, pk=appointment_id)
    if not can_act_for(request.user, appointment.patient):
        raise HttpError(404, "Not Found")
    if role_of(request.user) != Role.PATIENT and not may_use_location(
        request.user, appointment.location_id
    ):
        raise HttpError(403, "you do not work at this visit's location")
    return appointment


class StatusIn(Schema):
    status: str
    reason: str = ""


@router.post("/appointments/{appointment_id}/status", auth=auth, response=AppointmentOut)
def change_status(request: HttpRequest, appointment_id: int, payload: StatusIn) -> Appointment:
    """Check in, start, complete, cancel, mark a no-show or an error."""
    appointment = _visit_to_change(request, appointment_id)
    if payload.status != "cancelled" and not may(request.user, Can.SCHEDULE):
        raise HttpError(403, "only staff may change this status")
    return services.appointment_set_status(
        appointment=appointment, status=payload.status, actor=request.user, reason=payload.reason
    )


class MoveIn(Schema):
    starts_at: ClinicDateTime
    apply: bool = False


@router.post("/appointments/{appointment_id}/move", auth=auth, response=dict[str, Any])
def move_appointment(request: HttpRequest, appointment_id: int, payload: MoveIn) -> dict[str, Any]:
    """Move a course session and re-plan the rest; ``apply=false`` only previews."""
    appointment = _visit_to_change(request, appointment_id)
    result = course_session_move(
        appointment=appointment,
        starts_at=payload.starts_at,
        actor=request.user,
        apply=payload.apply,
    )
    _audit_preview(request, appointment, result)
    return _replan_out(result)


class ReplaceIn(Schema):
    status: Literal["cancelled", "no_show"]
    reason: str = ""
    apply: bool = False


@router.post("/appointments/{appointment_id}/replace", auth=auth, response=dict[str, Any])
def replace_appointment(
    request: HttpRequest, appointment_id: int, payload: ReplaceIn
) -> dict[str, Any]:
    """Cancel a course session (or, staff only, mark it a no-show), book its replacement and
    re-plan the later sessions if they no longer fit; ``apply=false`` only previews."""
    appointment = _visit_to_change(request, appointment_id)
    if payload.status != "cancelled" and not may(request.user, Can.SCHEDULE):
        raise HttpError(403, "only staff may mark a no-show")
    result = course_session_replace(
        appointment=appointment,
        status=payload.status,
        actor=request.user,
        apply=payload.apply,
        reason=payload.reason,
    )
    _audit_preview(request, appointment, result)
    return _replan_out(result)


def _audit_preview(request: HttpRequest, appointment: Appointment, result: Replan) -> None:
    # A staff preview shows the patient's sessions and times while changing nothing, so it
    # is a read of the record (an applied change is audited as the change it is).
    if result.applied or role_of(request.user) == Role.PATIENT:
        return
    audit_patient_view(
        actor=request.user,
        patient_id=appointment.patient_id,
        action="visit_view_schedule_only",
        details={"appointment": appointment.pk, "preview": True},
    )


def _replan_out(result: Replan) -> dict[str, Any]:
    return {
        "course_id": result.course_id,
        "applied": result.applied,
        "sessions": [
            {
                "number": c.number,
                "appointment_id": c.appointment_id,
                "replaces_appointment_id": c.replaces,
                "old_start": c.old_start.isoformat(),
                "new_start": c.new_start.isoformat(),
                "changed": c.changed,
                "provider_id": c.provider_id,
                "window": {
                    "earliest": c.window[0].isoformat(),
                    "target": c.window[1].isoformat(),
                    "latest": c.window[2].isoformat(),
                },
            }
            for c in result.changes
        ],
    }


class RequestOut(Schema):
    id: int
    patient_id: int
    location_id: int
    service_id: int
    reason: str
    status: str
    created_at: datetime


class RequestIn(Schema):
    patient_id: int
    location_id: int
    service_id: int
    provider_id: int | None = None
    preferred_dates: list[ClinicDate] = Field(default_factory=list, max_length=10)
    note: str = Field(default="", max_length=500)


@router.post("/appointment-requests", auth=auth, response={201: RequestOut})
def create_request(request: HttpRequest, payload: RequestIn) -> Status[AppointmentRequest]:
    """A patient (or staff for them) asks for an appointment; the front desk answers it."""
    patient = _patient(request, payload.patient_id)
    location = get_object_or_404(Location, pk=payload.location_id)
    service = service_of(location, payload.service_id)
    # The location's own day: a date already past there is no day the desk can offer.
    today = timezone.now().astimezone(ZoneInfo(location.timezone)).date()
    for index, day in enumerate(payload.preferred_dates):
        if day < today:
            raise InputError(f"preferred_dates.{index}", f"{day.isoformat()} is in the past")
    provider = None
    if payload.provider_id is not None:
        provider = Provider.objects.filter(pk=payload.provider_id, active=True).first()
        if provider is None:
            raise InputError("provider_id", "no active provider has this id")
    created = services.appointment_request_create(
        patient=patient,
        location=location,
        service=service,
        provider=provider,
        reason="patient_request",
        payload=payload.model_dump(mode="json"),
    )
    return Status(201, created)


@router.get("/appointment-requests", auth=auth, response=list[RequestOut])
def list_requests(
    request: HttpRequest, status: Literal["open", "approved", "declined", "booked"] = "open"
) -> list[AppointmentRequest]:
    """Requests waiting for staff (staff only)."""
    if not may(request.user, Can.SCHEDULE):
        raise HttpError(403, "staff only")
    mine = patients_visible(request.user)
    found = list(
        AppointmentRequest.objects.filter(status=status, patient__in=mine).order_by("created_at")
    )
    audit_patients_listed(actor=request.user, action="requests_view", rows=found, what="requests")
    return found
