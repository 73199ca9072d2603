"""Reads of courses and appointments for the pages: a fixed number of queries however many
sessions or visits are shown."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Prefetch, QuerySet

from microneedling.core.availability import find_starts
from microneedling.core.knowledge import load_pack
from microneedling.directory.models import Location, Provider, Room, Service
from microneedling.directory.policy import booking_rules
from microneedling.directory.selectors import providers_at
from microneedling.patients.models import Patient
from microneedling.scheduling.calendars import day_bounds, location_calendar
from microneedling.scheduling.models import Appointment, Course, CourseSession, Reservation


def patient_courses(patient: Patient) -> QuerySet[Course]:
    """The patient's courses, newest first, with sessions, their visits (with provider and
    location) and the visits' outcome scores loaded: four queries in all."""
    return courses_with_visits().filter(patient=patient)


def courses_with_visits() -> QuerySet[Course]:
    """Courses, newest first, with sessions, visits and scores loaded (see above)."""
    visits = (
        Appointment.objects.select_related("provider", "location")
        .prefetch_related("scores")
        .order_by("starts_at")
    )
    sessions = CourseSession.objects.order_by("number").prefetch_related(
        Prefetch("appointments", queryset=visits)
    )
    return (
        Course.objects.select_related("location", "service", "patient")
        .prefetch_related(Prefetch("sessions", queryset=sessions))
        .order_by("-created_at")
    )


def session_move_options(appointment: Appointment, *, now: datetime) -> list[datetime]:
    """Starts inside the session's window (from the minimum notice on) at which the same
    provider, a room and a pen are free for the whole visit: what a move may choose."""
    session = appointment.course_session
    if session is None:
        return []
    location = appointment.location
    zone = ZoneInfo(location.timezone)
    first_day = max(session.earliest, (now + timedelta(days=1)).astimezone(zone).date())
    if first_day > session.latest:
        return []
    rules = booking_rules(location.organization_id)
    calendar = location_calendar(
        location=location,
        service=appointment.service,
        first_day=first_day,
        last_day=session.latest,
        provider_ids=[appointment.provider_id],
        patient_id=appointment.patient_id,
        # A move frees the visit's own time first, so that time is open to it: its patient
        # hold (the whole visit) would otherwise hide every start that overlaps it.
        excluding_appointment=appointment.pk,
        rules=rules,
        areas=session.course.areas,
        course_id=session.course_id,
    )
    start, end = day_bounds(first_day, session.latest, location.timezone)
    not_before, not_after = rules.window(now)
    slots = find_starts(
        phases=calendar.phases,
        resources=list(calendar.resources),
        start=start,
        end=end,
        grid_minutes=rules.grid_minutes,
        zone=location.timezone,
        not_before=not_before,
        not_after=not_after,
        provider_ids=[f"provider:{appointment.provider_id}"],
        patient_busy=calendar.patient_blocked,
    )
    return [slot.start for slot in slots if slot.start != appointment.starts_at]


@dataclass(frozen=True)
class SheetVisit:
    """One visit on the day sheet with its phases in local time."""

    appointment: Appointment
    starts: datetime
    ends: datetime
    #: ``(phase name, local start, local end, needs the provider)``
    phases: tuple[tuple[str, datetime, datetime, bool], ...]
    room_id: int | None
    #: A treatment still to come, booked with a provider whose role may not do the needling
    #: under the position the clinic has chosen since (seed-004: doctors and nurse
    #: practitioners only): the desk moves it to one who may.
    provider_may_not_treat: bool = False


def treating_roles_of(organization_id: int) -> tuple[str, ...] | None:
    """The provider roles that may do the needling at the organisation under its chosen
    position, or None when any provider may (one query)."""
    return load_pack().treating_roles(booking_rules(organization_id).pack_policy)


def provider_may_not_treat(visit: Appointment, roles: tuple[str, ...] | None) -> bool:
    """Whether ``visit`` is a treatment still to come with a provider outside ``roles``."""
    return (
        roles is not None
        and visit.service.kind == Service.Kind.TREATMENT
        and visit.status in Appointment.TO_COME
        and visit.provider.role not in roles
    )


def visits_with_non_treating_providers(
    organization_id: int, *, now: datetime
) -> QuerySet[Appointment]:
    """Treatments still to come at the organisation's locations booked with a provider who
    may not do the needling under its chosen position (none when any provider may)."""
    roles = treating_roles_of(organization_id)
    if roles is None:
        return Appointment.objects.none()
    return (
        Appointment.objects.filter(
            location__organization_id=organization_id,
            service__kind=Service.Kind.TREATMENT,
            status__in=Appointment.TO_COME,
            starts_at__gte=now,
        )
        .exclude(provider__role__in=roles)
        .select_related("location", "provider")
        .order_by("starts_at")
    )


@dataclass(frozen=True)
class DaySheet:
    """A location's day: each provider's and each room's visits in time order."""

    location: Location
    day: date
    providers: tuple[tuple[Provider, tuple[SheetVisit, ...]], ...]
    rooms: tuple[tuple[Room, tuple[SheetVisit, ...]], ...]


#: Visits the day sheet leaves out (they hold nothing).
_OFF_SHEET = (Appointment.Status.CANCELLED, Appointment.Status.ENTERED_IN_ERROR)


def day_sheet(location: Location, day: date) -> DaySheet:
    """The day sheet in six queries whatever the number of visits: the visits (with patient,
    provider and service), their phases, their room reservations, the location's rooms and
    providers, and the clinic's policy (who may do the needling)."""
    start, end = day_bounds(day, day, location.timezone)
    zone = ZoneInfo(location.timezone)
    visits = list(
        Appointment.objects.filter(location=location, starts_at__gte=start, starts_at__lt=end)
        .exclude(status__in=_OFF_SHEET)
        .select_related("patient", "provider", "service", "course_session")
        .prefetch_related(
            "service__phases",
            Prefetch(
                "reservations",
                queryset=Reservation.objects.filter(resource__startswith="room:"),
                to_attr="room_holds",
            ),
        )
        .order_by("starts_at")
    )
    rooms = list(Room.objects.filter(location=location, active=True).order_by("name"))
    names = _phase_names()
    roles = treating_roles_of(location.organization_id)
    sheet_visits = [_sheet_visit(visit, zone, names, roles) for visit in visits]
    providers = {v.appointment.provider_id: v.appointment.provider for v in sheet_visits}
    for provider in providers_at(location, on=day):
        providers.setdefault(provider.pk, provider)
    return DaySheet(
        location=location,
        day=day,
        providers=tuple(
            (p, tuple(v for v in sheet_visits if v.appointment.provider_id == p.pk))
            for p in sorted(providers.values(), key=lambda p: p.display_name)
        ),
        rooms=tuple((r, tuple(v for v in sheet_visits if v.room_id == r.pk)) for r in rooms),
    )


def sheet_visit(appointment_id: int) -> SheetVisit:
    """One visit as the day sheet shows it (after an action changed it), in five queries."""
    visit = (
        Appointment.objects.select_related("patient", "provider", "service", "course_session")
        .prefetch_related(
            "service__phases",
            Prefetch(
                "reservations",
                queryset=Reservation.objects.filter(resource__startswith="room:"),
                to_attr="room_holds",
            ),
        )
        .select_related("location")
        .get(pk=appointment_id)
    )
    return _sheet_visit(
        visit,
        ZoneInfo(visit.location.timezone),
        _phase_names(),
        treating_roles_of(visit.location.organization_id),
    )


def _phase_names() -> dict[str, str]:
    return {phase.code: phase.name for phase in load_pack().data.visit}


def _sheet_visit(
    visit: Appointment, zone: ZoneInfo, names: dict[str, str], roles: tuple[str, ...] | None
) -> SheetVisit:
    """The visit with its phases in local time and its room (from prefetched holds)."""
    at = visit.starts_at.astimezone(zone)
    phases = []
    for phase in visit.service.phases.all():
        until = at + timedelta(minutes=phase.minutes)
        phases.append((names.get(phase.code, phase.code), at, until, phase.needs_provider))
        at = until
    holds = visit.room_holds  # type: ignore[attr-defined]
    return SheetVisit(
        appointment=visit,
        starts=visit.starts_at.astimezone(zone),
        ends=visit.ends_at.astimezone(zone),
        phases=tuple(phases),
        room_id=int(holds[0].resource.split(":", 1)[1]) if holds else None,
        provider_may_not_treat=provider_may_not_treat(visit, roles),
    )


def patient_visit(patient: Patient, appointment_id: int) -> Appointment | None:
    """One of the patient's own visits (None for anyone else's), with what its pages show."""
    return (
        Appointment.objects.select_related(
            "patient", "location", "service", "provider", "course_session"
        )
        .prefetch_related("service__phases")
        .filter(patient=patient, pk=appointment_id)
        .first()
    )


def free_starts(
    *,
    location: Location,
    service: Any,
    first_day: date,
    last_day: date,
    provider_id: int | None = None,
    now: datetime,
    ignore_notice: bool = False,
) -> list[Any]:
    """Start times from ``first_day`` to ``last_day`` at which every phase of ``service``
    finds its resources (one provider's, with ``provider_id``), within the clinic's notice
    and horizon: what the availability API and the FHIR Slots offer. ``ignore_notice``
    (staff who schedule) offers every free time from ``now`` on."""
    rules = booking_rules(location.organization_id)
    calendar = location_calendar(
        location=location,
        service=service,
        first_day=first_day,
        last_day=last_day,
        provider_ids=None if provider_id is None else [provider_id],
        rules=rules,
    )
    not_before, not_after = rules.window(now)
    if ignore_notice:
        not_before = now
    start, end = day_bounds(first_day, last_day, calendar.zone)
    return find_starts(
        phases=calendar.phases,
        resources=list(calendar.resources),
        start=start,
        end=end,
        grid_minutes=rules.grid_minutes,
        zone=calendar.zone,
        not_before=not_before,
        not_after=not_after,
        provider_ids=None if provider_id is None else [f"provider:{provider_id}"],
    )
