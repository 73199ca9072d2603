"""Load the free time of a location's resources from the database for the availability engine.

Everything the engine needs for a date range is read in a fixed number of queries (hours,
closures, schedules, leave, and the reservations that overlap the range) however many days or
appointments there are; the engine then works in memory.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db import connection

from microneedling.core.availability import (
    Interval,
    Phase,
    Resource,
    free_time,
    from_utc_pairs,
    intersect,
    subtract,
    union,
)
from microneedling.directory.models import (
    Device,
    Location,
    LocationClosure,
    OpeningHours,
    ProviderLeave,
    ProviderSchedule,
    Room,
    Service,
)
from microneedling.scheduling.models import Reservation

Weekly = dict[int, list[tuple[time, time]]]
#: The longest a reservation can last: a visit starts and ends on one day.
MAX_RESERVATION = timedelta(days=1)


@dataclass(frozen=True)
class LocationCalendar:
    """A location's resources with their free time over a range of days."""

    location: Location
    zone: str
    first_day: date
    last_day: date
    phases: tuple[Phase, ...]
    resources: tuple[Resource, ...]

    def resource_ids(self, kind: str) -> list[str]:
        """Ids of the resources of one kind."""
        return [r.id for r in self.resources if r.kind == kind]


def service_phases(service: Service) -> tuple[Phase, ...]:
    """The service's phases as the engine sees them."""
    return tuple(Phase(code=p.code, minutes=p.minutes, needs=p.needs) for p in service.phases.all())


def day_bounds(first: date, last: date, zone: str) -> tuple[datetime, datetime]:
    """Aware start of ``first`` and end of ``last`` in ``zone``."""
    tz = ZoneInfo(zone)
    start = datetime.combine(first, time.min, tzinfo=tz)
    end = datetime.combine(last + timedelta(days=1), time.min, tzinfo=tz)
    return start, end


def _closed_days(location: Location, first: date, last: date) -> set[date]:
    days: set[date] = set()
    closures = LocationClosure.objects.filter(
        location=location, starts_on__lte=last, ends_on__gte=first
    )
    for closure in closures:
        day = max(closure.starts_on, first)
        while day <= min(closure.ends_on, last):
            days.add(day)
            day += timedelta(days=1)
    if location.closes_on is not None and location.closes_on <= last:
        day = max(location.closes_on, first)
        while day <= last:
            days.add(day)
            day += timedelta(days=1)
    return days


def _weekly(rows: Iterable[tuple[int, time, time]]) -> Weekly:
    weekly: Weekly = defaultdict(list)
    for weekday, opens, closes in rows:
        weekly[weekday].append((opens, closes))
    return dict(weekly)


def _busy(resources: Sequence[str], start: datetime, end: datetime) -> dict[str, list[Interval]]:
    """Active reservations of ``resources`` overlapping [start, end), per resource, sorted.

    Read with plain SQL: a busy month is thousands of rows, and the ORM's per-row conversion
    (a regular-expression parse per timestamp on SQLite) would cost more than the engine.
    On SQLite the timestamps come back as text (``|| ''`` drops the column type, so the
    driver's converter is skipped) and ``fromisoformat`` parses them in C.
    """
    busy: dict[str, list[Interval]] = defaultdict(list)
    if not resources:
        return busy
    table = Reservation._meta.db_table
    if connection.vendor == "sqlite":
        columns = "starts_at || '', ends_at || ''"
    else:
        # Epoch seconds: Django's timestamptz loader parses in Python, a float does not.
        columns = "EXTRACT(EPOCH FROM starts_at)::float8, EXTRACT(EPOCH FROM ends_at)::float8"
    marks = ", ".join(["%s"] * len(resources))
    sql = (
        f"SELECT resource, {columns} FROM {table} "  # noqa: S608 - only our own names
        f"WHERE active AND resource IN ({marks}) AND starts_at < %s AND ends_at > %s "
        "AND starts_at >= %s ORDER BY resource, starts_at"
    )
    # The lower bound on starts_at lets the (resource, starts_at) index seek instead of
    # scanning every earlier booking: no reservation lasts longer than a visit (one day).
    earliest = start - MAX_RESERVATION
    with connection.cursor() as cursor:
        cursor.execute(sql, [*resources, _db_value(end), _db_value(start), _db_value(earliest)])
        rows = cursor.fetchall()
    pairs: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
    for resource, starts_at, ends_at in rows:
        pairs[resource].append((_aware(starts_at), _aware(ends_at)))
    # Stored instants are UTC and ordered by the constraint starts_at < ends_at.
    for resource, spans in pairs.items():
        busy[resource] = from_utc_pairs(spans)
    return busy


def _db_value(moment: datetime) -> str | datetime:
    """A datetime as the database stores it (SQLite: UTC text, as Django writes it)."""
    value: str | datetime | None = connection.ops.adapt_datetimefield_value(moment)
    return moment if value is None else value


def _aware(value: datetime | str | float) -> datetime:
    """A database value as an aware UTC datetime (SQLite returns UTC text, PostgreSQL here
    epoch seconds)."""
    if isinstance(value, str):
        return datetime.fromisoformat(value + "+00:00")
    if isinstance(value, float):
        return datetime.fromtimestamp(value, UTC)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def location_calendar(
    *,
    location: Location,
    service: Service,
    first_day: date,
    last_day: date,
    provider_ids: Sequence[int] | None = None,
    include_bookings: bool = True,
) -> LocationCalendar:
    """Free time of the location's providers, rooms and devices from ``first_day`` to
    ``last_day`` (inclusive), net of hours, closures, leave and existing reservations.

    ``include_bookings=False`` ignores reservations: only for a deliberate staff override.
    """
    zone = location.timezone
    start, end = day_bounds(first_day, last_day, zone)
    closed = _closed_days(location, first_day, last_day)
    hours = _weekly(
        OpeningHours.objects.filter(location=location).values_list("weekday", "opens", "closes")
    )
    open_time = free_time(
        days=(first_day, last_day),
        zone=zone,
        weekly=hours,
        closed_days=closed,
        extra_blocks=[],
        busy=[],
    )

    schedules = ProviderSchedule.objects.filter(
        location=location, valid_from__lte=last_day, provider__active=True
    ).exclude(valid_until__lt=first_day)
    if provider_ids is not None:
        schedules = schedules.filter(provider_id__in=provider_ids)
    by_provider: dict[int, list[ProviderSchedule]] = defaultdict(list)
    for schedule in schedules.order_by("provider_id", "valid_from"):
        by_provider[schedule.provider_id].append(schedule)
    rooms = list(
        Room.objects.filter(location=location, active=True)
        .order_by("id")
        .values_list("id", flat=True)
    )
    devices = list(
        Device.objects.filter(location=location, active=True)
        .order_by("id")
        .values_list("id", flat=True)
    )
    keys = (
        [f"provider:{p}" for p in by_provider]
        + [f"room:{r}" for r in rooms]
        + [f"device:{d}" for d in devices]
    )
    busy = _busy(keys, start, end) if include_bookings else defaultdict(list)
    leave: dict[int, list[Interval]] = defaultdict(list)
    for provider_id, starts_at, ends_at in ProviderLeave.objects.filter(
        provider_id__in=list(by_provider), starts_at__lt=end, ends_at__gt=start
    ).values_list("provider_id", "starts_at", "ends_at"):
        leave[provider_id].append(Interval(starts_at, ends_at))

    resources: list[Resource] = []
    for provider_id, rows in by_provider.items():
        # One weekly pattern per validity period (usually one): a free_time call each.
        periods: dict[tuple[date, date | None], Weekly] = defaultdict(dict)
        for row in rows:
            weekly = periods[(row.valid_from, row.valid_until)]
            weekly.setdefault(row.weekday, []).append((row.starts, row.ends))
        worked: list[Interval] = []
        for (valid_from, valid_until), weekly in periods.items():
            span_first = max(first_day, valid_from)
            span_last = min(last_day, valid_until or last_day)
            if span_first > span_last:
                continue
            for spans in weekly.values():
                spans.sort()
            worked = union(
                worked,
                free_time(
                    days=(span_first, span_last),
                    zone=zone,
                    weekly=weekly,
                    closed_days=closed,
                    extra_blocks=[],
                    busy=[],
                ),
            )
        free = subtract(
            intersect(worked, open_time),
            sorted([*leave[provider_id], *busy[f"provider:{provider_id}"]]),
        )
        resources.append(Resource(id=f"provider:{provider_id}", kind="provider", free=free))
    for kind, ids in (("room", rooms), ("device", devices)):
        for item in ids:
            key = f"{kind}:{item}"
            resources.append(Resource(id=key, kind=kind, free=subtract(open_time, busy[key])))
    return LocationCalendar(
        location=location,
        zone=zone,
        first_day=first_day,
        last_day=last_day,
        phases=service_phases(service),
        resources=tuple(resources),
    )
