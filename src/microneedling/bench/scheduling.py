"""Scheduling benchmark: month availability for the busiest provider, a 6-session course
search across one location's providers, and the naive per-day query loop for the ratio.

Runs inside a process whose Django settings point at the engine being measured (the runner
starts one process per engine).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from microneedling.bench.timing import measure


def _month_slots(ids: dict[str, int], first: date, last: date) -> int:
    from microneedling.core.availability import find_starts  # noqa: PLC0415
    from microneedling.directory.models import Location, Service  # noqa: PLC0415
    from microneedling.scheduling.calendars import day_bounds, location_calendar  # noqa: PLC0415

    location = Location.objects.get(pk=ids["location"])
    service = Service.objects.get(pk=ids["service"])
    calendar = location_calendar(
        location=location,
        service=service,
        first_day=first,
        last_day=last,
        provider_ids=[ids["busy_provider"]],
    )
    start, end = day_bounds(first, last, calendar.zone)
    slots = find_starts(
        phases=calendar.phases,
        resources=list(calendar.resources),
        start=start,
        end=end,
        grid_minutes=15,
        zone=calendar.zone,
        not_before=start,
        not_after=end,
        provider_ids=[f"provider:{ids['busy_provider']}"],
    )
    return len(slots)


def _naive_month_slots(ids: dict[str, int], first: date, last: date) -> int:
    """What common open-source schedulers do: per day, per candidate start, ask the database
    whether each phase's resources are free (one query per check)."""
    from microneedling.directory.models import (  # noqa: PLC0415
        Device,
        Location,
        ProviderSchedule,
        Room,
        Service,
    )
    from microneedling.scheduling.models import Reservation  # noqa: PLC0415

    location = Location.objects.get(pk=ids["location"])
    tz = ZoneInfo(location.timezone)
    phases = list(Service.objects.get(pk=ids["service"]).phases.all())
    rooms = [
        f"room:{r}" for r in Room.objects.filter(location=location).values_list("id", flat=True)
    ]
    devices = [
        f"device:{d}" for d in Device.objects.filter(location=location).values_list("id", flat=True)
    ]
    provider = f"provider:{ids['busy_provider']}"

    def free(resource: str, start: datetime, end: datetime) -> bool:
        return not Reservation.objects.filter(
            resource=resource, active=True, starts_at__lt=end, ends_at__gt=start
        ).exists()

    visit = sum(p.minutes for p in phases)
    offset = 0
    procedure = None
    for phase in phases:
        if phase.needs_provider:
            procedure = (offset, phase.minutes, phase.needs_device)
        offset += phase.minutes
    count, day = 0, first
    while day <= last:
        hours = ProviderSchedule.objects.filter(
            provider_id=ids["busy_provider"], weekday=day.weekday()
        ).first()
        if hours is not None:
            at = datetime.combine(day, hours.starts, tzinfo=tz)
            closing = datetime.combine(day, hours.ends, tzinfo=tz)
            while at + timedelta(minutes=visit) <= closing:
                ends = at + timedelta(minutes=visit)
                ok = any(free(room, at, ends) for room in rooms)
                if ok and procedure is not None:
                    p_start = at + timedelta(minutes=procedure[0])
                    p_end = p_start + timedelta(minutes=procedure[1])
                    ok = free(provider, p_start, p_end) and (
                        not procedure[2] or any(free(d, p_start, p_end) for d in devices)
                    )
                count += ok
                at += timedelta(minutes=15)
        day += timedelta(days=1)
    return count


def _course_search(ids: dict[str, int], first: date) -> bool:
    from microneedling.core.courses import plan_course  # noqa: PLC0415
    from microneedling.core.knowledge import load_pack  # noqa: PLC0415
    from microneedling.core.knowledge.models import Policy  # noqa: PLC0415
    from microneedling.core.series import search_series  # noqa: PLC0415
    from microneedling.directory.models import Location, Service  # noqa: PLC0415
    from microneedling.scheduling.calendars import day_bounds, location_calendar  # noqa: PLC0415

    plan = plan_course(
        pack=load_pack(),
        indications=["acne_scars"],
        first_session=first,
        policy=Policy(protocols={"acne_scars": "protocol.acne_scars.seed000"}),
    )
    location = Location.objects.get(pk=ids["location"])
    calendar = location_calendar(
        location=location,
        service=Service.objects.get(pk=ids["service"]),
        first_day=plan.sessions[0].earliest,
        last_day=plan.sessions[-1].latest,
    )
    start, end = day_bounds(plan.sessions[0].earliest, plan.sessions[-1].latest, calendar.zone)
    result = search_series(
        sessions=plan.sessions,
        gap_days=(plan.gap_days[0], plan.gap_days[2]),
        phases=calendar.phases,
        resources=list(calendar.resources),
        zone=calendar.zone,
        grid_minutes=15,
        not_before=start,
        not_after=end,
    )
    return bool(result.ok)


def run(runs: int) -> dict[str, Any]:
    """Build the chain in the current database and measure (call after django.setup())."""
    from django.core.management import call_command  # noqa: PLC0415
    from django.db import connection  # noqa: PLC0415

    from microneedling.bench.chain import build_chain  # noqa: PLC0415

    call_command("migrate", verbosity=0)
    year_start = date(2027, 1, 4)
    ids = build_chain(first_day=year_start)
    month_first, month_last = date(2027, 6, 1), date(2027, 6, 30)
    slots = _month_slots(ids, month_first, month_last)
    naive_slots = _naive_month_slots(ids, month_first, month_last)
    month = measure(lambda: _month_slots(ids, month_first, month_last), runs=runs * 4)
    naive = measure(
        lambda: _naive_month_slots(ids, month_first, month_last), runs=max(3, runs // 3)
    )
    course = measure(lambda: _course_search(ids, date(2027, 5, 3)), runs=runs * 4)
    return {
        "engine": connection.vendor,
        "chain": {"locations": 20, "providers": 150, **ids},
        "month_availability": {
            **month,
            "slots": slots,
            "target_p95_s": 0.020,
            "meets_target": month["p95_s"] < 0.020,
        },
        "naive_per_day_loop": {
            **naive,
            "slots": naive_slots,
            "agrees_with_engine": naive_slots == slots,
        },
        "ratio_naive_to_engine_median": naive["median_s"] / month["median_s"],
        "course_search_6_sessions": {
            **course,
            "found": _course_search(ids, date(2027, 5, 3)),
            "target_p95_s": 0.050,
            "meets_target": course["p95_s"] < 0.050,
        },
    }
