"""Closing a location or moving a provider, with every future visit it displaces given a new
place and time: a preview first, then one transaction.

The directory change (the closure, or the provider's diary moving) and the re-homing are
worked out together inside a transaction; a preview rolls it back, an apply commits it only
after the plan has been checked (no double booking, every visit inside its allowed days,
every visit accounted for). A process killed while applying leaves the old schedule, since
nothing is committed until the end.
"""

from __future__ import annotations

import csv
import io
import time as clock
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from itertools import pairwise
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from microneedling.accounts.actors import Actor
from microneedling.audit.services import audit_patients_listed, audit_patients_seen, audit_record
from microneedling.core.availability import Phase
from microneedling.core.errors import BookingConflict, BookingRefused, InputError
from microneedling.core.geo import distance_km
from microneedling.core.knowledge import load_pack
from microneedling.core.rehoming import (
    Placement,
    Plan,
    Site,
    Visit,
    plan_rehoming,
    plan_violations,
    sites_without,
)
from microneedling.core.retention import add_years
from microneedling.core.series.spacing import Treatment, shares_skin
from microneedling.directory.models import (
    Location,
    LocationClosure,
    Provider,
    ProviderSchedule,
    Service,
)
from microneedling.directory.policy import booking_rules
from microneedling.directory.selectors import place_from_zip
from microneedling.notifications import events
from microneedling.notifications.outbox import Audience, audience_of
from microneedling.patients.models import NEWEST_FIRST, Screening
from microneedling.scheduling import booking
from microneedling.scheduling.calendars import (
    location_calendar,
    patient_resource,
    service_phases,
)
from microneedling.scheduling.models import Appointment, AppointmentRequest, Reservation
from microneedling.scheduling.services import location_open_check, rehoming_requests_close
from microneedling.scheduling.spacing import TOO_SOON, spacing_busy, treatments_near

#: A visit that is not a course session may move this many days either way.
SINGLE_VISIT_SLACK_DAYS = 7
#: At most this many ids (visits, courses, patients) are named in one statement while
#: re-homing: a closure can displace more than SQLite takes as parameters in one statement.
ID_BATCH = 2000
#: At most this many open locations nearest the affected one are offered as receivers.
RECEIVING_SITES = 5
ACTIVE = (Appointment.Status.BOOKED, Appointment.Status.CHECKED_IN)
#: A closure or a move is planned at most this many years ahead: no diary reaches further,
#: and a mistyped year would otherwise close a location until 9999 (or overflow a date).
MAX_YEARS_AHEAD = 5
Id = TypeVar("Id", int, str)

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Move:
    """One visit's new place and time."""

    appointment_id: int
    patient: str
    from_location: str
    to_location: str
    from_start: datetime
    to_start: datetime
    from_provider: str
    to_provider: str
    distance_km: float
    shift_days: int


@dataclass(frozen=True)
class Stuck:
    """A visit that could not be re-homed, and why (it stays, with a request for the desk)."""

    appointment_id: int
    patient: str
    starts_at: datetime
    reason: str


@dataclass
class RehomingReport:
    """What an operation did or would do."""

    operation: str
    subject: str
    from_date: date
    applied: bool
    moves: list[Move] = field(default_factory=list)
    stuck: list[Stuck] = field(default_factory=list)
    affected: int = 0
    active_before: int = 0
    active_after: int = 0
    violations: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Counts, shares and means for people and for JSON."""
        moved = len(self.moves)
        return {
            "operation": self.operation,
            "subject": self.subject,
            "from_date": self.from_date.isoformat(),
            "applied": self.applied,
            "affected": self.affected,
            "rehomed": moved,
            "stuck": len(self.stuck),
            "share_rehomed": moved / self.affected if self.affected else 1.0,
            "mean_distance_km": sum(m.distance_km for m in self.moves) / moved if moved else 0.0,
            "mean_shift_days": sum(abs(m.shift_days) for m in self.moves) / moved if moved else 0.0,
            "same_provider": sum(m.from_provider == m.to_provider for m in self.moves),
            "active_before": self.active_before,
            "active_after": self.active_after,
            "reconciles": self.active_before == self.active_after,
            "violations": self.violations,
            "seconds": self.seconds,
        }

    def as_dict(self) -> dict[str, Any]:
        """The summary with every move and every stuck visit."""
        return {
            **self.summary(),
            "moves": [
                {
                    "appointment": m.appointment_id,
                    "patient": m.patient,
                    "from": m.from_location,
                    "to": m.to_location,
                    "from_start": m.from_start.isoformat(),
                    "to_start": m.to_start.isoformat(),
                    "from_provider": m.from_provider,
                    "to_provider": m.to_provider,
                    "distance_km": round(m.distance_km, 1),
                    "shift_days": m.shift_days,
                }
                for m in self.moves
            ],
            "stuck_visits": [
                {
                    "appointment": s.appointment_id,
                    "patient": s.patient,
                    "starts_at": s.starts_at.isoformat(),
                    "reason": s.reason,
                }
                for s in self.stuck
            ],
        }


class _Preview(Exception):
    """Raised at the end of a preview to roll everything back."""


def _local_start(day: date, zone: str) -> datetime:
    return datetime.combine(day, datetime.min.time(), tzinfo=ZoneInfo(zone))


def _slack_by_course(appointments: Sequence[Appointment]) -> dict[int, int]:
    """Days each course's sessions may move while every gap between them stays valid,
    whichever of them move: half the smallest room any gap has to its limits."""
    course_ids = {a.course_session.course_id for a in appointments if a.course_session}
    if not course_ids:
        return {}
    rows = (
        row
        for batch in _batches(course_ids)
        for row in Appointment.objects.filter(
            course_session__course_id__in=batch, status__in=ACTIVE
        )
        .select_related("course_session__course", "location")
        .order_by("course_session__course_id", "course_session__number")
    )
    days: dict[int, list[date]] = {}
    gaps: dict[int, tuple[int, int]] = {}
    for row in rows:
        session = row.course_session
        if session is None:
            continue
        course = session.course
        zone = ZoneInfo(row.location.timezone)
        days.setdefault(course.pk, []).append(row.starts_at.astimezone(zone).date())
        gaps[course.pk] = (course.gap_min_days, course.gap_max_days)
    slack = {}
    for course_id, course_days in days.items():
        low, high = gaps[course_id]
        room = [min((b - a).days - low, high - (b - a).days) for a, b in pairwise(course_days)]
        slack[course_id] = max(0, min(room, default=2 * SINGLE_VISIT_SLACK_DAYS) // 2)
    return slack


@lru_cache(maxsize=4096)
def _zip_point(zip_code: str) -> tuple[float, float] | None:
    try:
        place = place_from_zip(zip_code)
    except InputError:
        return None
    return place.latitude, place.longitude


def _home(appointment: Appointment) -> tuple[float, float]:
    """Where the patient travels from: their ZIP code, else the location they chose."""
    point = _zip_point(appointment.patient.zip_code) if appointment.patient.zip_code else None
    return point or (appointment.location.latitude, appointment.location.longitude)


def displaced_visits(
    appointments: Sequence[Appointment],
    *,
    today: date,
    prefer_site: int | None,
) -> list[Visit]:
    """The engine's view of the affected visits: phases, provider, the patient's home and
    other visits, and the days each may move to (course window and gap slack, never today
    or earlier)."""
    slack = _slack_by_course(appointments)
    treaters = _treating_providers(appointments)
    deferred = _deferrals(appointments)
    phases: dict[int, Any] = {}
    visits = []
    for appointment in appointments:
        zone = appointment.location.timezone
        day = appointment.starts_at.astimezone(ZoneInfo(zone)).date()
        session = appointment.course_session
        if session is not None:
            room = slack.get(session.course_id, 0)
            first = max(session.earliest, day - timedelta(days=room))
            last = min(session.latest, day + timedelta(days=room))
        else:
            first = day - timedelta(days=SINGLE_VISIT_SLACK_DAYS)
            last = day + timedelta(days=SINGLE_VISIT_SLACK_DAYS)
        treatment = appointment.service.kind == Service.Kind.TREATMENT
        if treatment and appointment.patient_id in deferred:
            # A new day for a treatment is a new booking as far as screening goes: never
            # sooner than the patient's latest screening defers treatment to.
            first = max(first, deferred[appointment.patient_id])
        if appointment.service_id not in phases:
            phases[appointment.service_id] = service_phases(appointment.service)
        visits.append(
            Visit(
                id=appointment.pk,
                phases=phases[appointment.service_id],
                start=appointment.starts_at,
                zone=zone,
                provider=f"provider:{appointment.provider_id}",
                home=_home(appointment),
                first_day=max(first, today + timedelta(days=1)),
                last_day=last,
                prefer_site=prefer_site,
                patient=patient_resource(appointment.patient_id),
                providers=treaters if treatment else None,
            )
        )
    busy = _patients_other_visits(appointments, visits)
    spaced = _spacing_of(appointments, visits)
    return [
        replace(v, patient_busy=(*busy.get(v.patient or "", ()), *spaced.get(v.id, ())))
        for v in visits
    ]


def _spacing_of(
    appointments: Sequence[Appointment], visits: Sequence[Visit]
) -> dict[int, tuple[tuple[datetime, datetime], ...]]:
    """Per displaced treatment (id), the days too close to its patient's other treatments
    of the same skin that stay where they are (its own course's sessions left out: the
    course's window and gap slack space them), read a batch of patients per query. Two
    displaced treatments of one patient are checked against each other as they are written
    (see ``_write_move``)."""
    treatments = {a.pk: a for a in appointments if a.service.kind == Service.Kind.TREATMENT}
    if not treatments:
        return {}
    reach = timedelta(days=load_pack().treatment_gap_days + 1)
    first = min(v.first_day for v in visits if v.id in treatments) - reach
    last = max(v.last_day for v in visits if v.id in treatments) + reach
    moving = {a.pk for a in appointments}
    others: dict[int, list[tuple[int | None, Treatment]]] = {}
    for batch in _batches({a.patient_id for a in treatments.values()}):
        rows = Appointment.objects.filter(
            patient_id__in=batch,
            service__kind=Service.Kind.TREATMENT,
            status__in=Appointment.HOLDING,
            starts_at__gte=datetime.combine(first, time.min, tzinfo=UTC),
            starts_at__lt=datetime.combine(last, time.min, tzinfo=UTC),
        ).values_list(
            "pk",
            "patient_id",
            "starts_at",
            "location__timezone",
            "service__areas",
            "course_session__course_id",
            "course_session__course__areas",
        )
        for pk, patient_id, starts_at, zone, areas, course_id, course_areas in rows:
            if pk in moving:
                continue
            day = starts_at.astimezone(ZoneInfo(zone)).date()
            others.setdefault(patient_id, []).append(
                (course_id, Treatment(day=day, areas=tuple(course_areas or areas or ())))
            )
    spaced = {}
    for visit in visits:
        appointment = treatments.get(visit.id)
        if appointment is None or appointment.patient_id not in others:
            continue
        own = appointment.course_session.course_id if appointment.course_session else None
        old_day = appointment.starts_at.astimezone(ZoneInfo(visit.zone)).date()
        near = [
            t
            for course_id, t in others[appointment.patient_id]
            if (own is None or course_id != own) and not _already_close(t, old_day)
        ]
        spaced[visit.id] = spacing_busy(near, _areas_of(appointment), zone=visit.zone)
    return spaced


def _already_close(treatment: Treatment, day: date) -> bool:
    """Whether ``treatment`` was already within the interval of a visit on ``day`` before
    the run (two treatments agreed close together: a staff override, an import). A move
    need not keep a distance they never had; it only must not bring others closer."""
    return abs((treatment.day - day).days) < load_pack().treatment_gap_days


def _areas_of(appointment: Appointment) -> list[str]:
    """The areas a visit treats: its course's, else its service's."""
    session = appointment.course_session
    if session is not None and session.course.areas:
        return list(session.course.areas)
    return list(appointment.service.areas or ())


def _treating_providers(appointments: Sequence[Appointment]) -> frozenset[str] | None:
    """The providers (``provider:<id>``) the clinic lets do the needling, or ``None`` when
    its position lets anyone: the receiving sites list every provider (a consultation may be
    with anyone), so each treatment is kept to these here."""
    if not appointments:
        return None
    organization_id = appointments[0].location.organization_id
    roles = load_pack().treating_roles(booking_rules(organization_id).pack_policy)
    if roles is None:
        return None
    ids = Provider.objects.filter(organization_id=organization_id, role__in=roles)
    return frozenset(f"provider:{pk}" for pk in ids.values_list("pk", flat=True))


def _deferrals(appointments: Sequence[Appointment]) -> dict[int, date]:
    """Per patient (id), the day their latest screening defers treatment to, for those whose
    latest screening does (read a batch of patients per query)."""
    patients = {a.patient_id for a in appointments}
    deferred: dict[int, date] = {}
    seen: set[int] = set()
    for batch in _batches(patients):
        rows = (
            Screening.objects.filter(patient_id__in=batch)
            .order_by("patient_id", *NEWEST_FIRST)
            .values_list("patient_id", "verdict", "deferred_until")
        )
        for patient_id, verdict, until in rows:
            if patient_id in seen:
                continue  # an older screening: only the latest counts
            seen.add(patient_id)
            if verdict == Screening.Verdict.DEFERRED and until is not None:
                deferred[patient_id] = until
    return deferred


def _patients_other_visits(
    appointments: Sequence[Appointment], visits: Sequence[Visit]
) -> dict[str, tuple[tuple[datetime, datetime], ...]]:
    """Per patient (``patient:<id>``), their visits that are not being moved, over every day
    a move could reach (a day's margin each side for time zones), read through the
    reservations' patient holds a batch of patients per query."""
    if not visits:
        return {}
    first = min(v.first_day for v in visits) - timedelta(days=1)
    last = max(v.last_day for v in visits) + timedelta(days=2)
    moving = {a.pk for a in appointments}
    patients = {v.patient for v in visits if v.patient is not None}
    busy: dict[str, list[tuple[datetime, datetime]]] = {}
    # The moving visits are left out here, not in SQL: there can be more of them than one
    # statement takes as parameters.
    for batch in _batches(patients):
        rows = (
            Reservation.objects.filter(
                active=True,
                resource__in=batch,
                starts_at__lt=datetime.combine(last, time.min, tzinfo=UTC),
                ends_at__gt=datetime.combine(first, time.min, tzinfo=UTC),
            )
            .order_by("starts_at")
            .values_list("appointment_id", "resource", "starts_at", "ends_at")
        )
        for appointment_id, resource, starts_at, ends_at in rows:
            if appointment_id not in moving:
                busy.setdefault(resource, []).append((starts_at, ends_at))
    return {key: tuple(spans) for key, spans in busy.items()}


def receiving_sites(
    locations: Iterable[Location], appointments: Sequence[Appointment], visits: Sequence[Visit]
) -> list[Site]:
    """Each receiving location's resources with their free time over the visits' days."""
    first = min(v.first_day for v in visits)
    last = max(v.last_day for v in visits)
    service = appointments[0].service  # any: the resources are the location's, not its
    sites = []
    for location in locations:
        # Every provider, whatever this service is: each visit keeps to those who may give
        # it (see ``Visit.providers``), a treatment to whom the clinic lets do the needling.
        calendar = location_calendar(
            location=location, service=service, first_day=first, last_day=last, every_role=True
        )
        sites.append(
            Site(
                id=location.pk,
                latitude=location.latitude,
                longitude=location.longitude,
                zone=location.timezone,
                resources=tuple(calendar.resources),
            )
        )
    return sites


def nearest_receivers(around: Location, *, exclude: set[int], on: date) -> list[Location]:
    """Open locations of the organisation nearest ``around``, not closing by ``on``."""
    candidates = (
        Location.objects.filter(organization_id=around.organization_id)
        .exclude(pk__in=exclude)
        .exclude(status=Location.Status.CLOSED)
        .exclude(status=Location.Status.CLOSING, closes_on__lte=on)
    )
    return sorted(
        candidates,
        key=lambda loc: distance_km(around.latitude, around.longitude, loc.latitude, loc.longitude),
    )[:RECEIVING_SITES]


def _plan_keeping_stuck(
    visits: list[Visit],
    sites: list[Site],
    by_id: dict[int, Appointment],
    *,
    no_day: dict[int, str],
    grid_minutes: int,
    not_before: datetime,
    progress: Progress | None,
) -> tuple[Plan, list[Site], list[Visit]]:
    """Plan; a visit that finds no place keeps its old time, so plan the rest again with that
    time taken (its provider may work at a receiving site too, and its patient is not free
    then) until nothing changes. The visits of ``no_day`` (id: why) have no day they may move
    to, so they keep their time from the start. Returns the plan, and the sites and visits it
    was made on (for checking it)."""
    kept: set[int] = set()
    newly = set(no_day)
    while True:
        if newly:
            kept |= newly
            sites, visits = _keeping(newly, kept, sites, visits, by_id)
        placing = [v for v in visits if v.id not in kept]
        plan = plan_rehoming(
            placing,
            sites,
            grid_minutes=grid_minutes,
            not_before=not_before,
            progress=(lambda done, total: progress("planning", done, total)) if progress else None,
        )
        newly = {visit_id for visit_id, _ in plan.unplaced} - kept
        if not newly:
            reasons = {**no_day, **dict(plan.unplaced)}
            unplaced = tuple(
                (visit_id, reasons.get(visit_id, "kept its time: no place elsewhere"))
                for visit_id in sorted(kept | set(reasons))
            )
            return Plan(plan.placements, unplaced, plan.objective, plan.stats), sites, visits


def _keeping(
    newly: set[int],
    kept: set[int],
    sites: list[Site],
    visits: list[Visit],
    by_id: dict[int, Appointment],
) -> tuple[list[Site], list[Visit]]:
    """The sites and visits with the time of the visits ``newly`` kept taken."""
    held: dict[str, list[tuple[int, int]]] = {}
    for batch in _batches(newly):
        for row in Reservation.objects.filter(appointment_id__in=batch):
            held.setdefault(row.resource, []).append(
                (int(row.starts_at.timestamp()), int(row.ends_at.timestamp()))
            )
    sites = sites_without(sites, held)
    # A visit that keeps its time keeps its patient too: their other visits plan around it.
    stays: dict[str, list[tuple[datetime, datetime]]] = {}
    for visit in visits:
        if visit.id in newly and visit.patient is not None:
            stays.setdefault(visit.patient, []).append(
                (by_id[visit.id].starts_at, by_id[visit.id].ends_at)
            )
    visits = [
        replace(v, patient_busy=(*v.patient_busy, *stays[v.patient]))
        if v.id not in kept and v.patient in stays
        else v
        for v in visits
    ]
    return sites, visits


def _no_day_left(visits: Sequence[Visit], appointments: Sequence[Appointment]) -> dict[int, str]:
    """The visits (id: why) left no day to move to: the patient's screening defers treatment
    past the last day the visit may move to, or its course window closes before tomorrow."""
    by_patient = _deferrals(appointments)
    deferred = {
        a.pk: by_patient[a.patient_id]
        for a in appointments
        if a.patient_id in by_patient and a.service.kind == Service.Kind.TREATMENT
    }
    why = {}
    for visit in visits:
        if visit.first_day <= visit.last_day:
            continue
        last = visit.last_day.isoformat()
        why[visit.id] = (
            f"the patient's screening defers treatment until {visit.first_day.isoformat()}, "
            f"after the last day this visit may move to ({last})"
            if visit.id in deferred and deferred[visit.id] == visit.first_day
            else f"no day is left to move it to: the last one allowed was {last}"
        )
    return why


def _batches(ids: Iterable[Id]) -> Iterator[list[Id]]:
    """The ids, sorted, in lists of at most ``ID_BATCH``."""
    ordered = sorted(set(ids))
    for index in range(0, len(ordered), ID_BATCH):
        yield ordered[index : index + ID_BATCH]


def rehoming_report_audit(
    *, actor: Actor, appointment_ids: Iterable[int], details: dict[str, Any]
) -> int:
    """Record that a re-homing report named these visits' patients to ``actor`` (a report
    lists them by name, so reading one is audited like opening each record): one event per
    patient, naming the visits shown. The number of events written."""
    visits: list[Appointment] = []
    for batch in _batches(appointment_ids):  # a closure can name more than SQLite takes
        visits += Appointment.objects.filter(pk__in=batch).only("pk", "patient_id")
    return audit_patients_listed(
        actor=actor,
        action="rehoming_report_view",
        rows=visits,
        what="appointments",
        details=details,
    )


def _set_holds(appointment_ids: Iterable[int], *, active: bool) -> None:
    """Make these visits' reservations active or not."""
    for batch in _batches(appointment_ids):
        Reservation.objects.filter(appointment_id__in=batch).update(active=active)


def _active_count(organization_id: int, since: datetime) -> int:
    return Appointment.objects.filter(
        location__organization_id=organization_id, status__in=ACTIVE, starts_at__gte=since
    ).count()


def _rehome(
    *,
    report: RehomingReport,
    affected: Q,
    organization_id: int,
    receivers: list[Location],
    prefer_site: int | None,
    since: datetime,
    now: datetime,
    actor: Actor,
    note: str,
    progress: Progress | None,
) -> None:
    """Plan and write the moves inside the caller's transaction."""
    # Locked as read: a visit moved or cancelled meanwhile by anything else (a desk, another
    # run) is read as that change left it, once it commits, never overwritten from a stale
    # copy. (Only the visits' own rows: PostgreSQL locks no row of an outer join.)
    appointments = list(
        Appointment.objects.filter(affected, status__in=ACTIVE, starts_at__gte=since)
        .select_related("patient", "location", "provider", "service", "course_session__course")
        .select_for_update(of=("self",))
        .order_by("starts_at", "pk")
    )
    report.affected = len(appointments)
    report.active_before = _active_count(organization_id, since)
    if not appointments:
        report.active_after = report.active_before
        # The closure or the move of hours is a change all the same: who made it is recorded
        # whether or not a visit had to move.
        _audit_operation(report, actor=actor)
        return
    started = clock.perf_counter()
    # Their own time is free for the search (a moved provider's old visits hold them).
    _set_holds([a.pk for a in appointments], active=False)
    today = now.astimezone(ZoneInfo(appointments[0].location.timezone)).date()
    visits = displaced_visits(appointments, today=today, prefer_site=prefer_site)
    by_id = {a.pk: a for a in appointments}
    no_day = _no_day_left(visits, appointments)
    # Sites are read over the days the others may move to (none: nothing to read).
    sites = (
        receiving_sites(receivers, appointments, [v for v in visits if v.id not in no_day])
        if len(no_day) < len(visits)
        else []
    )
    rules = booking_rules(organization_id)
    # A new time is a booking like any other: no sooner than the clinic's minimum notice.
    earliest, _ = rules.window(now)
    plan, sites, visits = _plan_keeping_stuck(
        visits,
        sites,
        by_id,
        no_day=no_day,
        grid_minutes=rules.grid_minutes,
        not_before=earliest,
        progress=progress,
    )
    report.violations = plan_violations(plan, visits, sites)
    report.seconds["plan"] = clock.perf_counter() - started
    started = clock.perf_counter()
    sites_by_id = {loc.pk: loc for loc in receivers}
    names = {loc.pk: loc.name for loc in receivers}
    providers = dict(Provider.objects.values_list("pk", "display_name"))
    total = len(plan.placements) + len(plan.unplaced)
    phases = {v.id: v.phases for v in visits}
    audiences: dict[int, Audience] = {}
    clashing: list[tuple[int, str]] = []
    # Visits that keep their time hold it again before any move is written, so that no
    # move can take their patient's time (a move is checked against the patient's holds).
    _set_holds([v for v, _ in plan.unplaced], active=True)
    # The desk's open requests for these visits, read once: a visit an earlier run left
    # behind has one, and had its reminders withdrawn then (events.visit_unsettled).
    waiting = _open_requests(by_id)
    for done, placement in enumerate(plan.placements, start=1):
        appointment = by_id[placement.visit_id]
        before = appointment.starts_at
        move = _try_move(appointment, placement, phases[appointment.pk], names, providers)
        if isinstance(move, str):
            # The plan avoids the bookings it read, so only one it did not can clash (the
            # patient's own visit, a staff override or, on PostgreSQL, a booking committed
            # after the plan read the diary); the visit keeps its time, held again at once
            # for the moves after it.
            if not hold_again(appointment):
                # A move written before it took that time: no way left to keep both, so
                # the run is not committed (the caller turns violations into a preview).
                report.violations.append(
                    f"visit {appointment.pk} could not move, and its old time is taken now"
                )
            clashing.append((appointment.pk, move))
            continue
        report.moves.append(move)
        appointment.location = sites_by_id[placement.site_id]
        # Same hour elsewhere: the reminders already queued still fit (they read the visit
        # as it stands when they are sent); a new time needs them queued afresh, as does a
        # visit left behind before, whose reminders were withdrawn.
        events.visit_relocated(
            appointment,
            note=note,
            reschedule=before != appointment.starts_at or appointment.pk in waiting,
            audience=_audience(audiences, appointment),
        )
        if progress and done % 50 == 0:
            progress("applying", done, total)
    _record_stuck(
        report,
        [(by_id[v], why) for v, why in [*plan.unplaced, *clashing]],
        waiting=waiting,
        now=now,
        note=note,
        audiences=audiences,
    )
    if progress:
        progress("applying", total, total)
    _reconcile(report, organization_id=organization_id, since=since)
    _audit_operation(report, actor=actor)
    _audit_each_patient(report, actor=actor, by_id=by_id)
    report.seconds["apply"] = clock.perf_counter() - started


def _reconcile(report: RehomingReport, *, organization_id: int, since: datetime) -> None:
    """Count the active visits again: a run that lost or doubled one breaks a rule."""
    report.active_after = _active_count(organization_id, since)
    if report.active_after != report.active_before:
        report.violations.append(
            f"{report.active_before} visits before, {report.active_after} after"
        )


def _audit_operation(report: RehomingReport, *, actor: Actor) -> None:
    """Record the closure or the provider's move itself, with what it did (counts only)."""
    audit_record(
        actor=actor,
        action=report.operation,
        object_type="location" if report.operation == "location_close" else "provider",
        object_id=report.subject,
        details={k: v for k, v in report.summary().items() if k != "seconds"},
    )


def _audit_each_patient(
    report: RehomingReport, *, actor: Actor, by_id: dict[int, Appointment]
) -> None:
    # A move changes each patient's record as much as a desk move would: each patient gets
    # an event of their own (found by the patient search and on their /my/record/ page),
    # naming the visits moved and those kept for the desk, all in one insert.
    touched: dict[object, dict[str, Any]] = {}

    def entry(patient_id: int) -> dict[str, Any]:
        return touched.setdefault(
            patient_id,
            {
                "operation": report.operation,
                "subject": report.subject,
                "patient": patient_id,
                "moved": [],
                "kept": [],
            },
        )

    for move in report.moves:
        entry(by_id[move.appointment_id].patient_id)["moved"].append(move.appointment_id)
    for stuck in report.stuck:
        visit = by_id.get(stuck.appointment_id)
        if visit is not None:
            entry(visit.patient_id)["kept"].append(stuck.appointment_id)
    # An event takes about ten parameters: as many per statement as ID_BATCH allows ids.
    audit_patients_seen(
        actor=actor,
        action="visit_rehomed",
        details_by_patient=touched,
        batch_size=max(1, ID_BATCH // 10),
    )


def _open_requests(appointment_ids: Iterable[int]) -> dict[int, AppointmentRequest]:
    """The open re-homing requests of these visits, by visit id."""
    found: dict[int, AppointmentRequest] = {}
    for batch in _batches(appointment_ids):
        for request in AppointmentRequest.objects.filter(
            reason="rehoming",
            status=AppointmentRequest.Status.OPEN,
            payload__appointment__in=batch,
        ).order_by("pk"):
            found.setdefault(request.payload["appointment"], request)
    return found


def _audience(audiences: dict[int, Audience], appointment: Appointment) -> Audience:
    """The patient's audience, read once per run however many of their visits it tells of."""
    if appointment.patient_id not in audiences:
        audiences[appointment.patient_id] = audience_of(appointment.patient)
    return audiences[appointment.patient_id]


def _record_stuck(
    report: RehomingReport,
    stuck: Sequence[tuple[Appointment, str]],
    *,
    waiting: dict[int, AppointmentRequest],
    now: datetime,
    note: str,
    audiences: dict[int, Audience],
) -> None:
    """List the visits that keep their time, each with a request for staff to follow up:
    one per visit however often the closure is run (a visit already waiting for the desk
    gets the latest reason, not a second line), while a visit a later run could move has
    its request closed, so the desk is not sent to re-home it again. Each patient is told
    their visit cannot go ahead as booked (once, however often it is left behind), so that
    nobody comes for a visit that cannot happen while the desk works through the list;
    its reminders, pre-care and aftercare messages are withdrawn, since they would say
    otherwise (a move, by the desk or a later run, queues them again for the new time).
    ``waiting`` holds the open requests of the run's visits, by visit id."""
    moved = {m.appointment_id for m in report.moves}
    for batch in _batches(moved & set(waiting)):
        rehoming_requests_close(
            appointment_ids=batch,
            status=AppointmentRequest.Status.BOOKED,
            why="moved by a later re-homing",
            now=now,
        )
    for appointment, reason in stuck:
        payload = {"appointment": appointment.pk, "why": reason}
        if appointment.pk in waiting:
            waiting[appointment.pk].payload = payload
            waiting[appointment.pk].save(update_fields=["payload"])
        else:
            AppointmentRequest.objects.create(
                patient=appointment.patient,
                location=appointment.location,
                service=appointment.service,
                provider=appointment.provider,
                reason="rehoming",
                payload=payload,
            )
        events.visit_unsettled(appointment, note=note, audience=_audience(audiences, appointment))
        report.stuck.append(
            Stuck(appointment.pk, _name(appointment), appointment.starts_at, reason)
        )


def _name(appointment: Appointment) -> str:
    return f"{appointment.patient.first_name} {appointment.patient.last_name}"


def hold_again(appointment: Appointment) -> bool:
    """Make the visit's reservations active again, after a refused move; ``False`` (and
    nothing changed) when one of them now overlaps another visit's active hold on the same
    resource: a move written earlier in the run, or a booking committed since the holds
    were turned off.

    Inside a run, only the first can happen: the run turned the holds off in its own,
    uncommitted transaction, so a booking of that time waits for the run (PostgreSQL's
    constraint waits on the row, SQLite on the write lock). The second is for a caller
    whose holds were turned off in a committed transaction.

    As in the database's constraint, a staff override's rows clash with nothing: the visit
    had its time, overlaps allowed on purpose included, before the run. (So a caller whose
    holds were turned off in a committed transaction would put the visit back under an
    override booked into the freed time; no caller does that outside the tests.)"""
    ordinary = Reservation.objects.filter(appointment=appointment, overlap_allowed=False)
    overlapping = Q()
    for row in ordinary:
        overlapping |= Q(
            resource=row.resource, starts_at__lt=row.ends_at, ends_at__gt=row.starts_at
        )
    if overlapping and (
        Reservation.objects.filter(overlapping, active=True, overlap_allowed=False)
        .exclude(appointment=appointment)
        .exists()
    ):
        return False
    try:
        # A booking committed after the check: PostgreSQL's constraint refuses the update,
        # and the savepoint keeps the caller's transaction usable.
        with transaction.atomic():
            Reservation.objects.filter(appointment=appointment).update(active=True)
    except IntegrityError:
        return False
    return True


def _try_move(
    appointment: Appointment,
    placement: Placement,
    phases: Sequence[Phase],
    names: dict[int, str],
    providers: dict[int, str],
) -> Move | str:
    """``_write_move``, or why not, with the visit left as it was, when the new time is
    taken: by another visit of the same patient, or by a booking the plan could not have
    seen (a staff override or, on PostgreSQL, a booking committed meanwhile). The plan
    avoids what it read, so this is only a safety net."""
    try:
        with transaction.atomic():  # a savepoint: a refused move undoes only itself
            return _write_move(appointment, placement, phases, names, providers)
    except BookingRefused as refused:  # too soon after another treatment of the same skin
        appointment.refresh_from_db()
        return refused.message
    except (BookingConflict, IntegrityError) as refused:  # IntegrityError: the constraint
        appointment.refresh_from_db()
        if isinstance(refused, booking.TakenByOverride):
            return "a staff override took the new time after the plan was made"
        if isinstance(refused, BookingConflict) and refused.resource == "patient":
            return "the patient has another visit at the new time"
        return "another booking took the new time after the plan was made"


def _write_move(
    appointment: Appointment,
    placement: Placement,
    phases: Sequence[Phase],
    names: dict[int, str],
    providers: dict[int, str],
) -> Move:
    """Give the visit its new place, provider and time, with new reservations."""
    slot = placement.slot
    old_location, old_start, old_provider = (
        appointment.location.name,
        appointment.starts_at,
        appointment.provider_id,
    )
    new_provider = booking.provider_of(slot)
    Reservation.objects.filter(appointment=appointment).delete()
    appointment.location_id = placement.site_id
    appointment.provider_id = new_provider
    appointment.starts_at, appointment.ends_at = slot.start, slot.end
    appointment.save(update_fields=["location", "provider", "starts_at", "ends_at", "updated_at"])
    booking.reservations_write(appointment, slot, phases)
    if appointment.service.kind == Service.Kind.TREATMENT:
        _spacing_kept(appointment, old_start)
    return Move(
        appointment_id=appointment.pk,
        patient=_name(appointment),
        from_location=old_location,
        to_location=names[placement.site_id],
        from_start=old_start,
        to_start=slot.start,
        from_provider=providers.get(old_provider, str(old_provider)),
        to_provider=providers.get(new_provider, str(new_provider)),
        distance_km=placement.distance_km,
        shift_days=placement.shift_days,
    )


def _spacing_kept(appointment: Appointment, old_start: datetime) -> None:
    """Refuse (``BookingRefused``) a move that brings the visit, a treatment, within the
    interval of another treatment of the patient's same skin it was not already that close
    to. The plan spaced it from the treatments that stay; this also sees those moved before
    it in this run. No patient lock: a closure's run must not wait on one patient's booking
    (and deadlock with it)."""
    pack = load_pack()
    zone = ZoneInfo(appointment.location.timezone)
    new_day = appointment.starts_at.astimezone(zone).date()
    old_day = old_start.astimezone(zone).date()
    session = appointment.course_session
    near = treatments_near(
        patient_id=appointment.patient_id,
        first_day=min(new_day, old_day),
        last_day=max(new_day, old_day),
        zone=appointment.location.timezone,
        excluding_appointment=appointment.pk,
        course_id=session.course_id if session is not None else None,
        lock=False,
    )
    areas = _areas_of(appointment)
    for treatment in near:
        if _already_close(treatment, old_day) or not shares_skin(
            areas, treatment.areas, pack.skin_shared
        ):
            continue
        if abs((treatment.day - new_day).days) < pack.treatment_gap_days:
            raise BookingRefused(
                f"the patient has a treatment of the same skin on {treatment.day.isoformat()}; "
                f"treatments of one area need at least {pack.treatment_gap_days} days "
                "between them",
                code=TOO_SOON,
            )


def rehoming_dates_check(*, from_date: date, until: date | None, today: date) -> None:
    """Raise ``BookingRefused`` naming the field when ``from_date`` is before ``today``, or
    it (or ``until``) is more than ``MAX_YEARS_AHEAD`` years after ``today``.

    A past start would rewrite history and move no one: the location's past days would read
    as closed (on the day sheets, to patients) though visits were given there, and a
    provider's hours would end where they still worked; only visits still to come are
    re-homed either way. A closure already under way is recorded from today."""
    if from_date < today:
        raise BookingRefused(
            f"from_date is {from_date.isoformat()}, in the past: a closure or a move starts "
            f"today ({today.isoformat()}) or later",
            code="past",
            field="from_date",
        )
    limit = add_years(today, MAX_YEARS_AHEAD)
    for name, day in (("from_date", from_date), ("until", until)):
        if day is not None and day > limit:
            raise BookingRefused(
                f"{name} is {day.isoformat()}: at most {MAX_YEARS_AHEAD} years ahead "
                f"({limit.isoformat()}) is allowed",
                code="too_far",
                field=name,
            )


def location_close(
    *,
    location: Location,
    from_date: date,
    until: date | None = None,
    actor: Actor,
    apply: bool,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> RehomingReport:
    """Close ``location`` from ``from_date`` (through ``until``, or for good) and re-home every
    visit booked there in that time; a preview unless ``apply``."""
    now = now or timezone.now()
    if until is not None and until < from_date:
        raise BookingRefused("the closure ends before it starts", code="bad_range", field="until")
    rehoming_dates_check(
        from_date=from_date, until=until, today=now.astimezone(ZoneInfo(location.timezone)).date()
    )
    if location.status == Location.Status.CLOSED:
        raise BookingRefused("this location is already closed", code="closed", field="location")
    report = RehomingReport("location_close", location.slug, from_date, applied=apply)
    since = max(_local_start(from_date, location.timezone), now)
    affected = Q(location=location)
    if until is not None:
        affected &= Q(starts_at__lt=_local_start(until + timedelta(days=1), location.timezone))
    receivers = nearest_receivers(location, exclude={location.pk}, on=from_date)
    successor = location.successor
    note = f"{location.name} is closed from {from_date:%-d %B %Y}." + (
        f" Its patients are now seen at {successor.name}." if successor else ""
    )
    try:
        with transaction.atomic():
            # One run per location at a time: a second (the same closure applied twice, from
            # two pages or workers) waits here for the first to commit, then reads the visits
            # as it left them, instead of moving them again from where they no longer are.
            Location.objects.select_for_update().filter(pk=location.pk).exists()
            if until is None:
                location.status = Location.Status.CLOSING
                location.closes_on = from_date
                location.save(update_fields=["status", "closes_on"])
            else:
                # The same closure applied again (a preview applied twice) is one closure: a
                # second row would count the days twice and list them twice to patients.
                # (Not get_or_create: rows doubled before this check must not make it fail.)
                same = {"location": location, "starts_on": from_date, "ends_on": until}
                if not LocationClosure.objects.filter(**same).exists():
                    LocationClosure.objects.create(**same, reason="closure")
            _rehome(
                report=report,
                affected=affected,
                organization_id=location.organization_id,
                receivers=receivers,
                prefer_site=successor.pk if successor else None,
                since=since,
                now=now,
                actor=actor,
                note=note,
                progress=progress,
            )
            if report.violations:
                raise _Preview  # never commit a plan that breaks a rule
            if not apply:
                raise _Preview
    except _Preview:
        report.applied = False
    return report


def move_destination_check(*, to_location: Location, from_date: date) -> None:
    """Raise ``BookingRefused`` (field ``to``) when ``to_location`` is closed, or closes on
    or before ``from_date``: a provider cannot move where no one is seen any more (their
    hours and visits would land where nothing can be booked, and the closure that already
    ran would not re-home them). The same test as a booking's, named for this form."""
    try:
        location_open_check(to_location, from_date)
    except BookingRefused as refused:
        raise BookingRefused(refused.message, code="closed", field="to") from None


def provider_move(
    *,
    provider: Provider,
    to_location: Location,
    from_date: date,
    actor: Actor,
    apply: bool,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> RehomingReport:
    """``provider`` works at ``to_location`` from ``from_date`` (their weekly hours move with
    them) and their visits from then on follow them; a preview unless ``apply``."""
    now = now or timezone.now()
    if not provider.active:
        # Someone who has left sees no patients anywhere: moving them would give them hours
        # again, and their old visits a provider who will not be there.
        raise BookingRefused(
            f"{provider.display_name} is no longer active; book their patients with someone else",
            code="inactive",
            field="provider",
        )
    rehoming_dates_check(
        from_date=from_date, until=None, today=now.astimezone(ZoneInfo(to_location.timezone)).date()
    )
    move_destination_check(to_location=to_location, from_date=from_date)
    if to_location.organization_id != provider.organization_id:
        raise BookingRefused("that location is in another organisation", code="other", field="to")
    report = RehomingReport("provider_move", str(provider.pk), from_date, applied=apply)
    since = max(_local_start(from_date, to_location.timezone), now)
    affected = Q(provider=provider) & ~Q(location=to_location)
    old_sites = _sites_with_hours(provider, from_date) - {to_location.pk}
    note = f"{provider.display_name} now sees patients at {to_location.name}."
    try:
        with transaction.atomic():
            # One move of a provider at a time, for the same reason as one closure of a
            # location: a second waits, then sees the hours and visits the first moved.
            Provider.objects.select_for_update().filter(pk=provider.pk).exists()
            _schedules_move(provider, to_location, from_date)
            receivers = [to_location, *Location.objects.filter(pk__in=old_sites)]
            _rehome(
                report=report,
                affected=affected,
                organization_id=provider.organization_id,
                receivers=receivers,
                prefer_site=to_location.pk,
                since=since,
                now=now,
                actor=actor,
                note=note,
                progress=progress,
            )
            if report.violations or not apply:
                raise _Preview
    except _Preview:
        report.applied = False
    return report


def provider_move_reach(
    *, provider: Provider, to_location: Location, from_date: date, now: datetime
) -> set[int]:
    """The locations (ids) a move of ``provider`` to ``to_location`` from ``from_date`` takes
    something from: where they keep hours from that day on, or have visits still to come.

    Whoever moves a provider must run every one of them: a clinic admin who shares a
    provider with another location cannot take that location's hours and patients away."""
    since = max(_local_start(from_date, to_location.timezone), now)
    booked = Appointment.objects.filter(
        provider=provider, status__in=ACTIVE, starts_at__gte=since
    ).values_list("location_id", flat=True)
    return (_sites_with_hours(provider, from_date) | set(booked.distinct())) - {to_location.pk}


def _sites_with_hours(provider: Provider, from_date: date) -> set[int]:
    """The locations where ``provider`` has weekly hours on ``from_date`` or later."""
    return set(
        ProviderSchedule.objects.filter(provider=provider)
        .exclude(valid_until__lt=from_date)
        .values_list("location_id", flat=True)
    )


def _schedules_move(provider: Provider, to_location: Location, from_date: date) -> None:
    """End the provider's hours elsewhere the day before ``from_date`` and give them the
    same weekly hours at ``to_location`` from that day."""
    current = list(
        ProviderSchedule.objects.filter(provider=provider).exclude(valid_until__lt=from_date)
    )
    moved = set()
    for schedule in current:
        if schedule.location_id == to_location.pk:
            continue
        key = (schedule.weekday, schedule.starts, schedule.ends, schedule.valid_until)
        if schedule.valid_from >= from_date:
            schedule.location = to_location
            schedule.save(update_fields=["location"])
            continue
        schedule.valid_until = from_date - timedelta(days=1)
        schedule.save(update_fields=["valid_until"])
        if key not in moved:
            moved.add(key)
            ProviderSchedule.objects.create(
                provider=provider,
                location=to_location,
                weekday=schedule.weekday,
                starts=schedule.starts,
                ends=schedule.ends,
                valid_from=from_date,
                valid_until=key[3],
            )


CSV_COLUMNS = (
    "appointment",
    "outcome",
    "patient",
    "from_location",
    "to_location",
    "from_start",
    "to_start",
    "from_provider",
    "to_provider",
    "distance_km",
    "shift_days",
    "reason",
)


#: How a spreadsheet recognises a formula (and "\t", "\r" hide one after them).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula, quoted to stay text: patients
    name themselves when they sign up, and ``=HYPERLINK(...)`` as a first name would
    otherwise become a live link (or worse) in the desk's copy of the report. Numbers are
    left as they are (a negative shift is a number, not a formula)."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def report_csv(report: dict[str, Any]) -> str:
    """Every move and every stuck visit of a report (:meth:`RehomingReport.as_dict`) as CSV,
    for the people who will call the patients. It starts with a byte-order mark: without one a
    spreadsheet opens the file in the computer's legacy code page, and "José Núñez" comes out
    as "JosÃ© NÃºÃ±ez" on the list of people to call."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    moved = ("appointment", "patient", "from", "to", "from_start", "to_start")
    people = ("from_provider", "to_provider", "distance_km", "shift_days")
    for m in report.get("moves", []):
        first = [_cell(m[k]) for k in moved]
        writer.writerow([first[0], "moved", *first[1:], *(_cell(m[k]) for k in people), ""])
    for s in report.get("stuck_visits", []):
        writer.writerow(
            [
                s["appointment"],
                "stuck",
                _cell(s["patient"]),
                "",
                "",
                _cell(s["starts_at"]),
                *[""] * 5,
                _cell(s["reason"]),
            ]
        )
    return out.getvalue()
