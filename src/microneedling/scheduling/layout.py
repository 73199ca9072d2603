"""A location's standing arrangements for a span of days, read in one query.

Opening hours, closures, rooms, devices, who works when and who is on leave change rarely but
are needed by every availability answer. Read one table at a time they cost a round trip each,
which on PostgreSQL was a quarter of a month's availability; here one ``UNION ALL`` brings them
all back, each row tagged with what it is (every value as text, since the parts differ in type,
and parsed back here: a few dozen rows).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db import connection

from microneedling.core.availability.clock import seconds_ceil, seconds_floor
from microneedling.directory.models import (
    Device,
    Location,
    LocationClosure,
    OpeningHours,
    Provider,
    ProviderLeave,
    ProviderSchedule,
    Room,
)

#: One schedule row: valid from, valid until (inclusive, or None), weekday, starts, ends.
ShiftRow = tuple[date, date | None, int, time, time]


@dataclass
class Layout:
    """What a location offers from ``first_day`` to ``last_day``, before any booking."""

    #: Local opening ranges per weekday (0 = Monday).
    hours: dict[int, list[tuple[time, time]]] = field(default_factory=dict)
    #: Local dates the location is shut (holidays, closures, after it closes for good).
    closed: set[date] = field(default_factory=set)
    rooms: list[int] = field(default_factory=list)
    devices: list[int] = field(default_factory=list)
    #: Each working provider's schedule rows, providers in id order.
    shifts: dict[int, list[ShiftRow]] = field(default_factory=dict)
    #: Each provider's leave overlapping the span, in whole epoch seconds (rounded outwards).
    leave: dict[int, list[tuple[int, int]]] = field(default_factory=lambda: defaultdict(list))


def layout_read(
    *,
    location: Location,
    first_day: date,
    last_day: date,
    start: datetime,
    end: datetime,
    provider_ids: Sequence[int] | None = None,
    provider_roles: Sequence[str] | None = None,
) -> Layout:
    """The location's hours, closed days, active rooms and devices, the schedules of its
    active providers (only ``provider_ids`` if given, only of ``provider_roles`` if given)
    valid in the span, and their leave overlapping ``[start, end)``: one query."""
    params: dict[str, Any] = {
        "location": location.pk,
        "first": connection.ops.adapt_datefield_value(first_day),
        "last": connection.ops.adapt_datefield_value(last_day),
        "start": connection.ops.adapt_datetimefield_value(start),
        "end": connection.ops.adapt_datetimefield_value(end),
    }
    provider_filter = ""
    if provider_ids is not None:
        names = [f"provider{index}" for index in range(len(provider_ids))]
        params.update(zip(names, provider_ids, strict=True))
        marks = ", ".join(f"%({name})s" for name in names) or "NULL"
        provider_filter = f" AND s.provider_id IN ({marks})"
    if provider_roles is not None:
        names = [f"role{index}" for index in range(len(provider_roles))]
        params.update(zip(names, provider_roles, strict=True))
        marks = ", ".join(f"%({name})s" for name in names) or "NULL"
        provider_filter += f" AND p.role IN ({marks})"
    with connection.cursor() as cursor:
        cursor.execute(_sql(provider_filter), params)
        rows = cursor.fetchall()

    layout = Layout()
    shifts: dict[int, list[ShiftRow]] = defaultdict(list)
    for kind, a, b, c, d, e, f in rows:
        if kind == "hours":
            layout.hours.setdefault(int(a), []).append((_time(b), _time(c)))
        elif kind == "closure":
            _close(layout.closed, max(_date(a), first_day), min(_date(b), last_day))
        elif kind == "room":
            layout.rooms.append(int(a))
        elif kind == "device":
            layout.devices.append(int(a))
        elif kind == "shift":
            until = None if f is None else _date(f)
            shifts[int(a)].append((_date(e), until, int(b), _time(c), _time(d)))
        else:  # leave
            layout.leave[int(a)].append((seconds_floor(_instant(b)), seconds_ceil(_instant(c))))
    if location.status == Location.Status.CLOSED:
        # Closed for good (an admin may close a location without a date): no day is open.
        _close(layout.closed, first_day, last_day)
    elif location.closes_on is not None and location.closes_on <= last_day:
        _close(layout.closed, max(location.closes_on, first_day), last_day)
    for weekly in layout.hours.values():
        weekly.sort()
    layout.rooms.sort()
    layout.devices.sort()
    layout.shifts = {provider: shifts[provider] for provider in sorted(shifts)}
    return layout


def _close(closed: set[date], first: date, last: date) -> None:
    day = first
    while day <= last:
        closed.add(day)
        day += timedelta(days=1)


def _time(text: str) -> time:
    return time.fromisoformat(text)


def _date(text: str) -> date:
    return date.fromisoformat(text)


def _instant(text: str) -> datetime:
    """A stored instant read as text: SQLite keeps naive UTC, PostgreSQL adds the offset."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _sql(provider_filter: str) -> str:
    hours = OpeningHours._meta.db_table
    closures = LocationClosure._meta.db_table
    rooms = Room._meta.db_table
    devices = Device._meta.db_table
    schedules = ProviderSchedule._meta.db_table
    providers = Provider._meta.db_table
    leave = ProviderLeave._meta.db_table
    text = "CAST({} AS TEXT)".format
    nothing = "CAST(NULL AS TEXT)"
    working = (
        f"FROM {schedules} s JOIN {providers} p ON p.id = s.provider_id "
        "WHERE s.location_id = %(location)s AND p.active AND s.valid_from <= %(last)s "
        f"AND (s.valid_until IS NULL OR s.valid_until >= %(first)s){provider_filter}"
    )
    parts = [
        f"SELECT 'hours', {text('weekday')}, {text('opens')}, {text('closes')}, {nothing}, "  # noqa: S608 - our own table names
        f"{nothing}, {nothing} FROM {hours} WHERE location_id = %(location)s",
        f"SELECT 'closure', {text('starts_on')}, {text('ends_on')}, {nothing}, {nothing}, "  # noqa: S608 - our own table names
        f"{nothing}, {nothing} FROM {closures} WHERE location_id = %(location)s "
        "AND starts_on <= %(last)s AND ends_on >= %(first)s",
        f"SELECT 'room', {text('id')}, {nothing}, {nothing}, {nothing}, {nothing}, {nothing} "  # noqa: S608 - our own table names
        f"FROM {rooms} WHERE location_id = %(location)s AND active",
        f"SELECT 'device', {text('id')}, {nothing}, {nothing}, {nothing}, {nothing}, {nothing} "  # noqa: S608 - our own table names
        f"FROM {devices} WHERE location_id = %(location)s AND active",
        f"SELECT 'shift', {text('s.provider_id')}, {text('s.weekday')}, {text('s.starts')}, "
        f"{text('s.ends')}, {text('s.valid_from')}, {text('s.valid_until')} {working}",
        f"SELECT 'leave', {text('provider_id')}, {text('starts_at')}, {text('ends_at')}, "  # noqa: S608 - our own table names
        f"{nothing}, {nothing}, {nothing} FROM {leave} "
        "WHERE starts_at < %(end)s AND ends_at > %(start)s "
        f"AND provider_id IN (SELECT s.provider_id {working})",
    ]
    return " UNION ALL ".join(parts)
