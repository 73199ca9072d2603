"""The desk's follow-up when a patient's answers change after treatment was booked.

A newer intake (a pregnancy, a new medicine, a recent peel) or a provider's decision on it
may stop visits already booked: "Start" refuses them on the day, but the clinic needs to
know before, to call the patient and move or cancel. Each patient with such visits has one
open request on the desk's list (reason ``screening_changed``), naming the visits and why;
it closes itself once newer answers clear them or none of them is still to come.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from microneedling.core.errors import BookingRefused
from microneedling.directory.models import Service
from microneedling.patients.models import Patient, Screening
from microneedling.scheduling.models import Appointment, AppointmentRequest
from microneedling.scheduling.services import booked_visit_cleared_check
from microneedling.scheduling.spacing import patient_lock

#: The request's reason on the desk's list.
REASON = "screening_changed"


def screening_followup_refresh(
    *, patient: Patient, now: datetime | None = None
) -> AppointmentRequest | None:
    """Bring the patient's follow-up request in line with their newest screening: opened
    (or brought up to date) when it stops some of their treatment visits still to come,
    closed when it stops none. The open request, or ``None``.

    A patient never screened here (visits imported from an old system) has nothing to
    follow up: their first intake is taken before the first treatment starts."""
    now = now or timezone.now()
    with transaction.atomic():
        # Before anything is read: two refreshes at once (the patient's answers and a
        # provider's decision, a cancellation) must each read what the other committed, and
        # must not open two requests.
        patient_lock(patient.pk)
        screening = patient.screenings.newest_first().first()
        stopped = [] if screening is None else _stopped_visits(patient, screening, now)
        waiting = (
            AppointmentRequest.objects.filter(
                patient=patient, reason=REASON, status=AppointmentRequest.Status.OPEN
            )
            .order_by("pk")
            .first()
        )
        if not stopped:
            if waiting is not None:
                _close(waiting, now)
            return None
        first, why = stopped[0]
        payload = {
            "appointment": first.pk,
            "appointments": [visit.pk for visit, _ in stopped],
            "why": why,
        }
        if waiting is None:
            return AppointmentRequest.objects.create(
                patient=patient,
                location=first.location,
                service=first.service,
                provider=first.provider,
                screening=screening,
                reason=REASON,
                payload=payload,
            )
        waiting.location, waiting.service, waiting.provider = (
            first.location,
            first.service,
            first.provider,
        )
        waiting.screening, waiting.payload = screening, payload
        waiting.save(update_fields=["location", "service", "provider", "screening", "payload"])
        return waiting


def _stopped_visits(
    patient: Patient, screening: Screening, now: datetime
) -> list[tuple[Appointment, str]]:
    """The patient's treatment visits still to come that ``screening`` (their newest) stops,
    each with why, soonest first."""
    stopped: list[tuple[Appointment, str]] = []
    upcoming = (
        Appointment.objects.filter(
            patient=patient,
            status__in=Appointment.TO_COME,
            ends_at__gt=now,
            service__kind=Service.Kind.TREATMENT,
        )
        .select_related("location", "service", "provider", "course_session__course")
        .order_by("starts_at", "pk")
    )
    for visit in upcoming:
        try:
            booked_visit_cleared_check(screening, visit)
        except BookingRefused as refused:
            stopped.append((visit, refused.message))
    return stopped


def _close(waiting: AppointmentRequest, now: datetime) -> None:
    """Close the follow-up: its visits are cleared, or none is left to come. Only while it
    is open (a desk closing it by hand at the same moment keeps its own decision), and never
    "approved": the desk's list keeps approved requests as ready to book, and these visits
    are booked already."""
    cleared = _still_to_come(waiting, now)
    AppointmentRequest.objects.filter(pk=waiting.pk, status=AppointmentRequest.Status.OPEN).update(
        status=AppointmentRequest.Status.BOOKED if cleared else AppointmentRequest.Status.DECLINED,
        decided_at=now,
        decision_reason=(
            "the newest answers clear every visit" if cleared else "no visit is left to come"
        ),
    )


def _still_to_come(request: AppointmentRequest, now: datetime) -> bool:
    """Whether any visit the request named is still to come (else it closes as moot)."""
    return Appointment.objects.filter(
        pk__in=request.payload.get("appointments", []),
        status__in=Appointment.TO_COME,
        ends_at__gt=now,
    ).exists()


def screening_followup_after_visit(*, appointment: Appointment, now: datetime) -> None:
    """After one of the patient's visits changed (cancelled, checked in, missed, moved to a
    day its screening clears): a follow-up request naming it may list less, or nothing.
    One query when the patient has no follow-up open, as nearly every patient has not."""
    if AppointmentRequest.objects.filter(
        patient_id=appointment.patient_id,
        reason=REASON,
        status=AppointmentRequest.Status.OPEN,
    ).exists():
        screening_followup_refresh(patient=appointment.patient, now=now)
