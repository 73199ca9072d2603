"""The slot and course searches on a busy, generated location (a month of ~500 bookings).

These check the answers at realistic size; how fast they come is measured by
``microneedling bench --only scheduling``, never by a timed test.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from microneedling.core.availability import (
    Interval,
    Phase,
    Resource,
    find_starts,
    free_time,
    subtract,
)
from microneedling.core.courses import PlannedSession, chain_sessions
from microneedling.core.knowledge.models import Gap
from microneedling.core.series import search_series

ZONE = "America/Chicago"
PHASES = (
    Phase("check_in", 10, ("room",)),
    Phase("numbing", 30, ("room",)),
    Phase("procedure", 30, ("provider", "room", "device")),
    Phase("serum", 10, ("room",)),
)


@dataclass
class BusyLocation:
    """Generated resources with their free time, and how many bookings made them busy."""

    resources: list[Resource]
    bookings: dict[str, int]


def busy_location(
    *, first: date, last: date, providers: int, rooms: int, devices: int, fill: float, seed: int
) -> BusyLocation:
    """A location open Monday–Saturday 08:00–20:00, booked until about ``fill`` of the
    providers' time is taken, with every visit's phases reserving real resources."""
    rng = random.Random(seed)
    tz = ZoneInfo(ZONE)
    weekly = {d: [(time(8), time(20))] for d in range(6)}
    busy: dict[str, list[tuple[datetime, datetime]]] = {}
    ids = (
        [f"provider:{i}" for i in range(1, providers + 1)]
        + [f"room:{i}" for i in range(1, rooms + 1)]
        + [f"device:{i}" for i in range(1, devices + 1)]
    )
    for rid in ids:
        busy[rid] = []

    def free(rid: str, start: datetime, end: datetime) -> bool:
        return all(e <= start or end <= s for s, e in busy[rid][-12:])

    bookings = dict.fromkeys(ids, 0)
    day = first
    while day <= last:
        if day.weekday() < 6:
            for provider in ids[:providers]:
                at = datetime.combine(day, time(8), tzinfo=tz)
                closing = datetime.combine(day, time(20), tzinfo=tz)
                while at + timedelta(minutes=80) <= closing:
                    procedure = at + timedelta(minutes=40)
                    room = next(
                        (
                            r
                            for r in ids[providers : providers + rooms]
                            if free(r, at, at + timedelta(minutes=80))
                        ),
                        None,
                    )
                    device = next(
                        (
                            d
                            for d in ids[providers + rooms :]
                            if free(d, procedure, procedure + timedelta(minutes=30))
                        ),
                        None,
                    )
                    if (
                        rng.random() < fill
                        and room
                        and device
                        and free(provider, procedure, procedure + timedelta(minutes=30))
                    ):
                        for rid, s, e in (
                            (provider, procedure, procedure + timedelta(minutes=30)),
                            (room, at, at + timedelta(minutes=80)),
                            (device, procedure, procedure + timedelta(minutes=30)),
                        ):
                            busy[rid].append((s, e))
                            bookings[rid] += 1
                        at += timedelta(minutes=30)
                    else:
                        at += timedelta(minutes=rng.choice((5, 15, 30)))
        day += timedelta(days=1)
    opening = free_time(days=(first, last), zone=ZONE, weekly=weekly, closed_days=set())
    resources = [
        Resource(
            rid, rid.split(":")[0], subtract(opening, sorted(Interval(s, e) for s, e in busy[rid]))
        )
        for rid in ids
    ]
    return BusyLocation(resources, bookings)


MONTH = (date(2027, 3, 1), date(2027, 3, 31))  # includes the spring-forward change


def month_case() -> tuple[BusyLocation, Callable[[], list[object]]]:
    """One busy provider (~500 bookings in the month), three rooms, two devices."""
    location = busy_location(
        first=MONTH[0], last=MONTH[1], providers=1, rooms=3, devices=2, fill=0.8, seed=7
    )
    tz = ZoneInfo(ZONE)
    start = datetime.combine(MONTH[0], time(0), tzinfo=tz)
    end = datetime.combine(MONTH[1] + timedelta(days=1), time(0), tzinfo=tz)

    def run() -> list[object]:
        return list(
            find_starts(
                phases=PHASES,
                resources=location.resources,
                start=start,
                end=end,
                grid_minutes=15,
                zone=ZONE,
                not_before=start,
                not_after=end,
            )
        )

    return location, run


def course_case() -> tuple[BusyLocation, list[PlannedSession], Callable[[], object]]:
    """A six-session course (28–42 days apart) across ten busy providers of one location."""
    first = date(2027, 1, 5)
    sessions = [
        PlannedSession(1, first, first, first),
        *chain_sessions(
            start_number=2, count=5, anchor=first, gap=Gap(min=28, target=28, max=42), as_of=None
        ),
    ]
    location = busy_location(
        first=first, last=sessions[-1].latest, providers=10, rooms=20, devices=6, fill=0.5, seed=11
    )
    now = datetime(2027, 1, 4, 15, tzinfo=UTC)

    def run() -> object:
        return search_series(
            sessions=sessions,
            gap_days=(28, 35, 42),
            zone=ZONE,
            phases=PHASES,
            resources=location.resources,
            grid_minutes=15,
            not_before=now + timedelta(hours=12),
            not_after=now + timedelta(days=400),
            preferred_weekdays=(3,),
            preferred_times=(("14:00", "17:00"),),
        )

    return location, sessions, run


def test_month_for_a_busy_provider_offers_only_starts_whose_resources_are_free() -> None:
    location, run = month_case()
    assert location.bookings["provider:1"] >= 450
    slots = run()
    assert len(slots) > 10
    free = {r.id: r.free for r in location.resources}
    for slot in slots:
        at = slot.start
        for phase in PHASES:
            ends = at + timedelta(minutes=phase.minutes)
            for resource in slot.assignment[phase.code].values():
                assert any(i.start <= at and ends <= i.end for i in free[resource])
            at = ends


def test_six_session_course_across_ten_providers_is_found_in_a_busy_diary() -> None:
    _, sessions, run = course_case()
    result = run()
    assert getattr(result, "ok", False)
    assert [number for number, _ in result.choices] == [s.number for s in sessions]
