"""Free time of one resource: weekly local hours, minus closed days, leave and bookings."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, time, timedelta

from microneedling.core.availability.clock import (
    Clock,
    day_start,
    local_instant,
    seconds_floor,
    zone_info,
)
from microneedling.core.availability.intervals import (
    Interval,
    Pair,
    coalesce,
    subtract_pairs,
)
from microneedling.core.errors import InputError

#: Local opening ranges per weekday (0 = Monday): ``{0: [(time(9), time(17))], ...}``.
#: An end of ``time(0)`` means midnight at the end of the day.
WeeklyHours = Mapping[int, Sequence[tuple[time, time]]]


def free_time(
    *,
    days: tuple[date, date],
    zone: str,
    weekly: WeeklyHours,
    closed_days: Iterable[date] = (),
    extra_blocks: Iterable[Interval] = (),
    busy: Iterable[Interval] = (),
) -> list[Interval]:
    """When a resource is free from ``days[0]`` to ``days[1]`` (inclusive), in UTC.

    ``weekly`` hours are local wall-clock times in ``zone``, converted date by date, so
    09:00–17:00 stays 09:00–17:00 local on both sides of a daylight-saving change (see
    :mod:`microneedling.core.availability.clock` for skipped and repeated readings).
    ``closed_days`` (holidays, closures, whole days of leave) remove whole local dates;
    ``extra_blocks`` (partial leave) and ``busy`` (reservations) are subtracted as given and
    need not be sorted. The result is sorted and disjoint.
    """
    tz = zone_info(zone)
    opening = [
        (local_instant(day, opens, tz), local_instant(end_day, closes, tz))
        for day, opens, end_day, closes in _local_ranges(days, weekly, closed_days)
    ]
    # Ranges of one weekday may be given in any order or overlap; sorting a day's few
    # ranges is cheap and the merge then makes them disjoint.
    opening.sort()
    blocks = sorted(
        (i.start.astimezone(UTC), i.end.astimezone(UTC)) for i in [*extra_blocks, *busy]
    )
    free = subtract_pairs(coalesce(opening), coalesce(blocks))
    return [Interval(start, end) for start, end in free]


def open_seconds(
    *,
    days: tuple[date, date],
    zone: str,
    weekly: WeeklyHours,
    closed_days: Iterable[date] = (),
) -> list[Pair[int]]:
    """The weekly hours of :func:`free_time` as sorted, disjoint whole seconds since the
    epoch (a boundary inside a second rounds up), for adapters that combine thousands of
    intervals and would pay more for datetimes than for the combining.

    Same local-time rules as :func:`free_time`; one zone lookup for the whole span instead
    of one per boundary.
    """
    tz = zone_info(zone)
    first, last = days
    clock = Clock.covering(
        tz,
        seconds_floor(day_start(first, tz)),
        seconds_floor(day_start(max(first, last) + timedelta(days=2), tz)),
    )
    opening = [
        (clock.local_seconds(day, opens), clock.local_seconds(end_day, closes))
        for day, opens, end_day, closes in _local_ranges(days, weekly, closed_days)
    ]
    opening.sort()
    return coalesce(opening)


def _local_ranges(
    days: tuple[date, date], weekly: WeeklyHours, closed_days: Iterable[date]
) -> Iterator[tuple[date, time, date, time]]:
    """Each open range of each date that is not closed, as local ``(day, opens, end day,
    closes)`` readings."""
    first, last = days
    if last < first:
        raise InputError("days", f"{last.isoformat()} is before {first.isoformat()}")
    hours = _checked_weekly(weekly)
    closed = set(closed_days)
    day = first
    while day <= last:
        if day not in closed:
            for opens, closes in hours.get(day.weekday(), ()):
                # An end of 00:00 is the midnight that ends the day, not the one opening it.
                end_day = day + timedelta(days=1) if closes == time(0) else day
                yield day, opens, end_day, closes
        day += timedelta(days=1)


def _checked_weekly(weekly: WeeklyHours) -> dict[int, list[tuple[time, time]]]:
    checked: dict[int, list[tuple[time, time]]] = {}
    for weekday, ranges in weekly.items():
        if not 0 <= weekday <= 6:
            raise InputError(f"weekly.{weekday}", "weekday must be 0 (Monday) to 6 (Sunday)")
        for index, (opens, closes) in enumerate(ranges):
            field = f"weekly.{weekday}.{index}"
            if opens.tzinfo is not None or closes.tzinfo is not None:
                raise InputError(field, "hours are local wall-clock times without a zone")
            if closes != time(0) and closes <= opens:
                raise InputError(field, f"closes at {closes} before it opens at {opens}")
        checked[weekday] = sorted(ranges)
    return checked
