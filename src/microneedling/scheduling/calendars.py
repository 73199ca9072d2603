"""Load the free time of a location's resources from the database for the availability engine.

Everything the engine needs for a date range is read in a fixed number of queries (hours,
closures, schedules, leave, and the reservations that overlap the range) however many days or
appointments there are; the engine then works in memory.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import groupby
from operator import itemgetter
from zoneinfo import ZoneInfo

from django.db import connection

from microneedling.core.availability import (
    KINDS,
    FreeSeconds,
    Phase,
    Resource,
    intersect_pairs,
    open_seconds,
    shortest_needs,
    subtract_pairs,
    union_pairs,
)
from microneedling.core.availability.clock import instant, seconds_ceil, seconds_floor
from microneedling.core.availability.intervals import Pair
from microneedling.core.knowledge import load_pack
from microneedling.directory.models import Location, Service
from microneedling.directory.policy import BookingRules, booking_rules
from microneedling.scheduling.layout import ShiftRow, layout_read
from microneedling.scheduling.models import Reservation
from microneedling.scheduling.spacing import spacing_busy, treatments_near

Weekly = dict[int, list[tuple[time, time]]]
Seconds = Pair[int]
#: The longest a reservation can last: a visit starts and ends on one day.
MAX_RESERVATION = timedelta(days=1)
_RESOURCE = itemgetter(0)
_SPAN = itemgetter(1, 2)


@dataclass(frozen=True)
class LocationCalendar:
    """A location's resources with their free time over a range of days."""

    location: Location
    zone: str
    first_day: date
    last_day: date
    phases: tuple[Phase, ...]
    resources: tuple[Resource, ...]
    #: The patient's own visits in the range, when the calendar was read for one patient:
    #: a search must not place a new visit on top of them.
    patient_busy: tuple[tuple[datetime, datetime], ...] = ()
    #: Whole days on which a treatment would come too soon before or after another of the
    #: patient's treatments of the same skin (read with the patient, for treatments only).
    spacing: tuple[tuple[datetime, datetime], ...] = ()

    @property
    def patient_blocked(self) -> tuple[tuple[datetime, datetime], ...]:
        """Where a search may not place the patient's new visit: their other visits, and
        the days their skin is still healing from a treatment of the same area."""
        return self.patient_busy + self.spacing

    def resource_ids(self, kind: str) -> list[str]:
        """Ids of the resources of one kind."""
        return [r.id for r in self.resources if r.kind == kind]


def patient_resource(patient_id: int) -> str:
    """The resource a visit holds for its patient, from check-in to the end: one person is
    never booked into two visits at once (the same no-overlap rule as rooms and pens)."""
    return f"patient:{patient_id}"


def service_phases(service: Service) -> tuple[Phase, ...]:
    """The service's phases as the engine sees them."""
    return tuple(Phase(code=p.code, minutes=p.minutes, needs=p.needs) for p in service.phases.all())


def day_bounds(first: date, last: date, zone: str) -> tuple[datetime, datetime]:
    """Aware start of ``first`` and end of ``last`` in ``zone``."""
    tz = ZoneInfo(zone)
    start = datetime.combine(first, time.min, tzinfo=tz)
    end = datetime.combine(last + timedelta(days=1), time.min, tzinfo=tz)
    return start, end


def _busy(
    resources: Sequence[str],
    ranges: Sequence[tuple[datetime, datetime]],
    *,
    excluding_appointment: int | None = None,
) -> dict[str, list[Seconds]]:
    """Active reservations of ``resources`` overlapping any of the ``ranges`` (sorted,
    disjoint), per resource, as start-sorted whole seconds since the epoch (start rounded
    down, end up: never less busy than stored).

    Read with plain SQL from the epoch-second columns the database keeps for this (see
    ``epoch.py``) through an index that covers the query: a busy season is tens of thousands
    of rows, and building a datetime per timestamp (what the ORM would do) cost more than
    the whole availability search. ``excluding_appointment`` leaves that visit's own rows
    out (the times a visit may move to), at the cost of reading the table for those rows.
    """
    busy: dict[str, list[Seconds]] = defaultdict(list)
    if not resources or not ranges:
        return busy
    table = Reservation._meta.db_table
    marks = ", ".join(["%s"] * len(resources))
    # The lower bound on the start lets the index seek instead of scanning every earlier
    # booking: no reservation lasts longer than a visit (one day).
    reach = int(MAX_RESERVATION.total_seconds())
    bounds = [(seconds_floor(start), seconds_ceil(end)) for start, end in ranges]
    each = " OR ".join(
        ["(start_second < %s AND end_second > %s AND start_second >= %s)"] * len(bounds)
    )
    sql = (
        f"SELECT resource, start_second, end_second FROM {table} "  # noqa: S608 - our names
        f"WHERE active AND resource IN ({marks}) AND start_second < %s AND start_second >= %s "
        f"AND ({each}){' AND appointment_id <> %s' if excluding_appointment else ''} "
        "ORDER BY resource, start_second"
    )
    params: list[str | int] = [*resources, bounds[-1][1], bounds[0][0] - reach]
    for low, high in bounds:
        params += [high, low, low - reach]
    if excluding_appointment:
        params.append(excluding_appointment)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    # Rows come grouped by resource; grouping and pairing in C (groupby, itemgetter) rather
    # than a Python loop matters at tens of thousands of rows.
    for resource, group in groupby(rows, key=_RESOURCE):
        busy[resource] = list(map(_SPAN, group))
    return busy


def location_calendar(
    *,
    location: Location,
    service: Service,
    first_day: date,
    last_day: date,
    provider_ids: Sequence[int] | None = None,
    include_bookings: bool = True,
    only_days: Sequence[tuple[date, date]] | None = None,
    patient_id: int | None = None,
    excluding_appointment: int | None = None,
    rules: BookingRules | None = None,
    areas: Sequence[str] | None = None,
    course_id: int | None = None,
    every_role: bool = False,
) -> LocationCalendar:
    """Free time of the location's providers, rooms and devices from ``first_day`` to
    ``last_day`` (inclusive), net of hours, closures, leave and existing reservations.

    ``only_days`` (sorted, disjoint stretches of local days inside that span) limits free
    time, and the bookings read, to those days: a course search that looks at a few windows
    of a season need not read the weeks between them. ``include_bookings=False`` ignores
    reservations: only for a deliberate staff override. With ``patient_id`` the calendar
    also carries that patient's visits in the range (at any location of the chain), for a
    search to plan around. ``excluding_appointment`` reads the calendar as if that visit
    were not booked: where it may move to. ``rules`` are the clinic's booking rules when the
    caller has read them already (else they are read here, for treatments only). For a
    treatment read for a patient, ``spacing`` holds the days too close to the patient's
    other treatments of ``areas`` (the service's areas unless given: a course's planned
    areas), other than the visits of ``course_id`` (the course whose sessions are placed).
    ``every_role`` lists every provider, whoever the clinic lets treat: for a caller that
    places several kinds of visit on one calendar and keeps each to its own providers.
    """
    zone = location.timezone
    start, end = day_bounds(first_day, last_day, zone)
    # A clinic following seed-004 (a doctor or nurse practitioner does the needling) offers
    # treatments with those providers only; other visits may be with anyone.
    roles = (
        load_pack().treating_roles((rules or booking_rules(location.organization_id)).pack_policy)
        if service.kind == Service.Kind.TREATMENT and not every_role
        else None
    )
    layout = layout_read(
        location=location,
        first_day=first_day,
        last_day=last_day,
        start=start,
        end=end,
        provider_ids=provider_ids,
        provider_roles=roles,
    )
    closed = layout.closed
    stretches = list(only_days) if only_days else [(first_day, last_day)]
    # Hours are turned into instants on the days asked for only: a course search reads a
    # third of its season's days, and this conversion was a tenth of its time.
    open_time = _hours_on(stretches, zone, layout.hours, closed)
    ranges = [day_bounds(a, b, zone) for a, b in stretches]
    by_provider = layout.shifts
    rooms, devices = layout.rooms, layout.devices
    keys = (
        [f"provider:{p}" for p in by_provider]
        + [f"room:{r}" for r in rooms]
        + [f"device:{d}" for d in devices]
    )
    patient_keys = [patient_resource(patient_id)] if patient_id is not None else []
    # One query for the patient's hold and the location's diaries.
    busy = (
        _busy(keys + patient_keys, ranges, excluding_appointment=excluding_appointment)
        if include_bookings
        else defaultdict(list)
    )
    patient_busy = tuple(
        (instant(a), instant(b)) for key in patient_keys for a, b in busy.pop(key, ())
    )
    spacing = (
        spacing_busy(
            treatments_near(
                patient_id=patient_id,
                first_day=first_day,
                last_day=last_day,
                zone=zone,
                excluding_appointment=excluding_appointment,
                course_id=course_id,
            ),
            service.areas if areas is None else areas,
            zone=zone,
        )
        if patient_id is not None and include_bookings and service.kind == Service.Kind.TREATMENT
        else ()
    )
    for provider_id, spans in layout.leave.items():
        # Leave is a block like a booking.
        busy[f"provider:{provider_id}"].extend(spans)

    phases = service_phases(service)
    # Kinds the service does not need keep all their free time (0).
    shortest = dict.fromkeys(KINDS, 0) | shortest_needs(phases)
    free_of = _FreeTime()
    resources: list[Resource] = []
    # Most providers work the same shifts: each distinct set of schedule rows is turned
    # into instants once per call.
    shifts: dict[tuple[ShiftRow, ...], list[Seconds]] = {}
    for provider_id, rows in by_provider.items():
        pattern = tuple(sorted(rows, key=_schedule_order))
        if pattern not in shifts:
            shifts[pattern] = intersect_pairs(_worked(pattern, stretches, zone, closed), open_time)
        key = f"provider:{provider_id}"
        free = free_of(shifts[pattern], busy[key], shortest["provider"])
        resources.append(Resource(id=key, kind="provider", free=free))
    for kind, ids in (("room", rooms), ("device", devices)):
        for item in ids:
            key = f"{kind}:{item}"
            resources.append(
                Resource(id=key, kind=kind, free=free_of(open_time, busy[key], shortest[kind]))
            )
    return LocationCalendar(
        location=location,
        zone=zone,
        first_day=first_day,
        last_day=last_day,
        phases=phases,
        resources=tuple(resources),
        patient_busy=patient_busy,
        spacing=spacing,
    )


def _schedule_order(row: ShiftRow) -> tuple[object, ...]:
    valid_from, valid_until, weekday, starts, ends = row
    return (valid_from, valid_until or date.max, weekday, starts, ends)


def _hours_on(
    spans: Sequence[tuple[date, date]], zone: str, weekly: Weekly, closed: set[date]
) -> list[Seconds]:
    """Weekly hours on the days of ``spans`` (sorted, disjoint stretches of local days)."""
    pieces = [
        open_seconds(days=span, zone=zone, weekly=weekly, closed_days=closed) for span in spans
    ]
    return pieces[0] if len(pieces) == 1 else union_pairs(pieces)


def _worked(
    rows: Sequence[ShiftRow],
    spans: Sequence[tuple[date, date]],
    zone: str,
    closed: set[date],
) -> list[Seconds]:
    """When a provider's schedule rows have them working on the days of ``spans``: one
    weekly pattern per validity period (usually one)."""
    periods: dict[tuple[date, date | None], Weekly] = defaultdict(dict)
    for valid_from, valid_until, weekday, starts, ends in rows:
        periods[(valid_from, valid_until)].setdefault(weekday, []).append((starts, ends))
    worked: list[Seconds] = []
    for (valid_from, valid_until), weekly in periods.items():
        inside = [
            (max(first, valid_from), min(last, valid_until or last))
            for first, last in spans
            if max(first, valid_from) <= min(last, valid_until or last)
        ]
        if inside:
            worked = union_pairs([worked, _hours_on(inside, zone, weekly, closed)])
    return worked


class _FreeTime:
    """Free time as the engine takes it; resources with nothing booked on the same hours
    (idle rooms and pens, providers on one shift) get one shared object, which the engine
    then converts and searches once for all of them."""

    def __init__(self) -> None:
        self.idle: dict[tuple[int, int], tuple[list[Seconds], FreeSeconds]] = {}

    def __call__(self, hours: list[Seconds], busy: list[Seconds], shortest: int) -> FreeSeconds:
        if busy:
            return FreeSeconds.of(subtract_pairs(hours, _blocks(busy), shortest=shortest))
        key = (id(hours), shortest)
        if key not in self.idle:  # hours kept alongside, so the id stays theirs
            free = FreeSeconds.of(subtract_pairs(hours, [], shortest=shortest))
            self.idle[key] = (hours, free)
        return self.idle[key][1]


def _blocks(spans: list[Seconds]) -> list[Seconds]:
    """Busy spans (reservations, leave) sorted by start, ready to subtract (they may overlap:
    a deliberate override, or leave over bookings)."""
    spans.sort()
    return spans
