"""Booking building blocks shared by the scheduling services: placing one visit at a start
time, writing its reservations, and explaining a refusal."""

from __future__ import annotations

import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Q

from microneedling.core.availability import Phase, Slot, find_starts
from microneedling.core.errors import BookingConflict, BookingRefused
from microneedling.core.knowledge import load_pack
from microneedling.directory.models import Provider
from microneedling.directory.policy import BookingRules
from microneedling.patients.models import Patient
from microneedling.scheduling.calendars import LocationCalendar, patient_resource
from microneedling.scheduling.models import Appointment, Reservation
from microneedling.scheduling.spacing import TOO_SOON


def slot_at(
    calendar: LocationCalendar,
    starts_at: datetime,
    provider: Provider,
    *,
    rules: BookingRules,
    now: datetime,
    ignore_notice: bool = False,
) -> Slot | None:
    """The slot starting exactly at ``starts_at`` with ``provider``, or ``None`` if taken
    (by the location's bookings or, when the calendar was read for a patient, by one of the
    patient's other visits)."""
    not_before, not_after = rules.window(now)
    slots = find_starts(
        phases=calendar.phases,
        resources=list(calendar.resources),
        start=starts_at,
        end=starts_at + timedelta(minutes=1),
        grid_minutes=rules.grid_minutes,
        zone=calendar.zone,
        not_before=now if ignore_notice else not_before,
        not_after=not_after,
        provider_ids=[f"provider:{provider.pk}"],
        patient_busy=calendar.patient_blocked,
    )
    return slots[0] if slots else None


#: Why a visit cannot be placed where its patient is already booked.
PATIENT_BUSY = "the patient already has a visit at that time"


@dataclass
class _Hold:
    """A resource held over a run of consecutive phases (mutable while the run grows)."""

    resource: str
    phase: str
    start: datetime
    end: datetime


def reservations_write(
    appointment: Appointment,
    slot: Slot,
    phases: Sequence[Phase],
    *,
    overlap_allowed: bool = False,
) -> None:
    """Write the slot's reservations: one row per resource per run of consecutive phases,
    and the patient's own."""
    reservations_insert(
        reservation_rows(appointment, slot, phases, overlap_allowed=overlap_allowed)
    )


class TakenByOverride(BookingConflict):
    """A staff override committed on one of the visit's resources after its free time was
    read: the booking lost a race (a course searches again, a single visit answers 409)."""


#: Advisory-lock namespace of booking writes on PostgreSQL (any fixed 16-bit number of our
#: own): a lock's 64-bit key is the namespace, then the organisation, then the bucket.
LOCK_NAMESPACE = 61_452
#: An organisation's resources share this many lock buckets: a re-homing run that writes
#: thousands of visits holds at most this many locks (PostgreSQL's lock table is small,
#: 6,400 by default), and holds none of another organisation's.
LOCK_BUCKETS = 256
#: How long an override keeps trying for its buckets before answering 409, in seconds.
OVERRIDE_LOCK_WAIT = 5.0
#: The pause between two tries.
OVERRIDE_LOCK_RETRY = 0.05


def lock_key(organization_id: int, resource: str) -> int:
    """The advisory-lock key of one of an organisation's resources."""
    base = (LOCK_NAMESPACE << 40) | ((organization_id & 0x3FFF_FFFF) << 10)
    return base | (zlib.crc32(resource.encode()) % LOCK_BUCKETS)


def _organization_of(appointment: Appointment) -> int:
    """The organisation whose diary a visit is in (its patient's; usually already loaded)."""
    if Appointment.patient.is_cached(appointment):
        return int(appointment.patient.organization_id)
    return int(
        Patient.objects.values_list("organization_id", flat=True).get(pk=appointment.patient_id)
    )


_LOCK_SHARED = "SELECT pg_advisory_xact_lock_shared(k) FROM unnest(%s::bigint[]) AS k"
_TRY_EXCLUSIVE = "SELECT bool_and(pg_try_advisory_xact_lock(k)) FROM unnest(%s::bigint[]) AS k"


class _Busy(Exception):
    """Some bucket was taken: undo the try's savepoint."""


def _lock_resources(rows: Sequence[Reservation]) -> None:
    """On PostgreSQL, order an override against ordinary bookings of the same resources.

    Ordinary writes take their buckets shared, so they wait only while an override holds
    one (the exclusion constraint settles ordinary writes among themselves). An override
    takes its buckets exclusively, all or none, without ever waiting in the lock queue: it
    tries again until ``OVERRIDE_LOCK_WAIT``, then answers 409. Never queueing means no
    deadlock with a run that takes buckets visit by visit, and no ordinary booking queued
    behind a waiting override. So an ordinary booking that checks after its lock (under
    READ COMMITTED, the default) sees every override committed before it, and an override
    committed later got its lock after that booking ended (and overlaps it on purpose).
    SQLite needs none of this: its write lock is held from the start of the transaction.
    """
    if connection.vendor != "postgresql" or not rows:
        return
    if not connection.in_atomic_block:
        # Outside a transaction the locks would end with this statement.
        raise RuntimeError("reservations are written inside a transaction")
    organizations: dict[int, int] = {}  # by patient: a course's rows share one
    keys = set()
    for r in rows:
        patient = r.appointment.patient_id
        if patient not in organizations:
            organizations[patient] = _organization_of(r.appointment)
        keys.add(lock_key(organizations[patient], r.resource))
    params = (sorted(keys),)
    with connection.cursor() as cursor:
        if not any(r.overlap_allowed for r in rows):
            cursor.execute(_LOCK_SHARED, params)
            return
        deadline = time.monotonic() + OVERRIDE_LOCK_WAIT
        while True:
            try:
                # Rolling the savepoint back releases the buckets a failed try did get.
                with transaction.atomic():
                    cursor.execute(_TRY_EXCLUSIVE, params)
                    if cursor.fetchone()[0]:
                        return
                    raise _Busy
            except _Busy:
                if time.monotonic() >= deadline:
                    break
                time.sleep(OVERRIDE_LOCK_RETRY)
    raise BookingConflict(
        "other bookings of these providers, rooms or patients are being written (for example "
        "a closing location's visits being moved, or an import); try again in a few minutes",
        resource=rows[0].resource,
        starts_at=rows[0].starts_at.isoformat(),
    )


def reservations_insert(rows: Sequence[Reservation]) -> None:
    """Insert reservation rows, refusing (``BookingConflict``) any visit whose patient is
    already in another visit at that time, unless it is a deliberate staff override.

    The patient's own time is checked here, inside the booking's transaction: on SQLite
    that transaction holds the write lock, and on PostgreSQL the exclusion constraint backs
    it up between ordinary visits. Every active visit counts, overrides included: an
    override lets *that* visit overlap what was booked before it, not a later, ordinary
    booking overlap it. No constraint can say that one-way rule, so on PostgreSQL the rows
    are written under advisory locks (``_lock_resources``) and an ordinary visit is checked
    here against the overrides on all its resources (``TakenByOverride``).
    """
    _lock_resources(rows)
    ordinary = [r for r in rows if not r.overlap_allowed]
    if ordinary:
        patients = {r.resource for r in ordinary if r.resource.startswith("patient:")}
        others = {r.resource for r in ordinary} - patients
        taken = Reservation.objects.filter(
            Q(resource__in=patients) | Q(resource__in=others, overlap_allowed=True),
            active=True,
            starts_at__lt=max(r.ends_at for r in ordinary),
            ends_at__gt=min(r.starts_at for r in ordinary),
        ).values_list("resource", "starts_at", "ends_at")
        spans = list(taken)
        for row in ordinary:
            for resource, starts_at, ends_at in spans:
                if resource != row.resource or not (
                    starts_at < row.ends_at and row.starts_at < ends_at
                ):
                    continue
                if resource in patients:
                    raise BookingConflict(
                        PATIENT_BUSY, resource="patient", starts_at=row.starts_at.isoformat()
                    )
                raise TakenByOverride(
                    "a staff override took that time a moment ago",
                    resource=resource,
                    starts_at=row.starts_at.isoformat(),
                )
    Reservation.objects.bulk_create(rows)


def reservation_rows(
    appointment: Appointment,
    slot: Slot,
    phases: Sequence[Phase],
    *,
    overlap_allowed: bool = False,
) -> list[Reservation]:
    """The slot's reservations, unsaved: one row per resource per run of consecutive phases,
    and one for the patient over the whole visit (a course writes the rows of all its
    visits in one insert).

    A room held from check-in to aftercare is one row, not four: the same guarantee with a
    quarter of the rows for every availability read and overlap check to go through.
    """
    holds: list[_Hold] = []
    open_runs: dict[str, _Hold] = {}
    at = slot.start
    for phase in phases:
        ends = at + timedelta(minutes=phase.minutes)
        held = {slot.assignment[phase.code][kind] for kind in phase.needs}
        for resource in list(open_runs):
            if resource not in held:
                del open_runs[resource]  # the run ended with the previous phase
        for resource in sorted(held):
            run = open_runs.get(resource)
            if run is not None and run.end == at:
                run.end = ends
            else:
                run = open_runs[resource] = _Hold(resource, phase.code, at, ends)
                holds.append(run)
        at = ends
    holds.append(
        _Hold(patient_resource(appointment.patient_id), phases[0].code, slot.start, slot.end)
    )
    return [
        Reservation(
            appointment=appointment,
            resource=h.resource,
            phase=h.phase,
            starts_at=h.start,
            ends_at=h.end,
            overlap_allowed=overlap_allowed,
        )
        for h in holds
    ]


def unavailable_conflict(
    calendar: LocationCalendar, starts_at: datetime, provider: Provider, session: int | None = None
) -> BookingConflict | BookingRefused:
    """Say which resource kind has no free time at ``starts_at``: the patient first, when
    the calendar holds their other visits and one overlaps; then a treatment too soon after
    another of the same skin (a refusal naming ``starts_at``, not a conflict: no other
    booking holds that time)."""
    ends_at = starts_at + timedelta(minutes=sum(p.minutes for p in calendar.phases))
    if any(a < ends_at and starts_at < b for a, b in calendar.patient_busy):
        return BookingConflict(
            PATIENT_BUSY, resource="patient", session=session, starts_at=starts_at.isoformat()
        )
    if any(a < ends_at and starts_at < b for a, b in calendar.spacing):
        return BookingRefused(
            "the patient has another treatment of the same skin too close to that day; "
            f"treatments of one area need at least {load_pack().treatment_gap_days} days "
            "between them",
            code=TOO_SOON,
            field="starts_at",
        )
    at = starts_at
    for phase in calendar.phases:
        ends = at + timedelta(minutes=phase.minutes)
        for kind in phase.needs:
            pool = [
                r
                for r in calendar.resources
                if r.kind == kind and (kind != "provider" or r.id == f"provider:{provider.pk}")
            ]
            if not any(any(i.start <= at and ends <= i.end for i in r.free) for r in pool):
                resource = pool[0].id if len(pool) == 1 else kind
                return BookingConflict(
                    f"no free {kind} for the {phase.code} phase at {at.isoformat()}",
                    resource=resource,
                    session=session,
                    starts_at=starts_at.isoformat(),
                )
        at = ends
    return BookingConflict(
        "that start time is outside the bookable hours or notice period",
        resource=f"provider:{provider.pk}",
        session=session,
        starts_at=starts_at.isoformat(),
    )


def provider_of(slot: Slot) -> int:
    """The provider's database id in a slot's assignment."""
    for needs in slot.assignment.values():
        if "provider" in needs:
            return int(needs["provider"].split(":", 1)[1])
    raise ValueError("slot has no provider")
