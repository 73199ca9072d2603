"""Scheduling benchmark: month availability for the busiest provider, a 6-session course
search across one location's providers, and the naive per-day query loop for the ratio.

Runs inside a process whose Django settings point at the engine being measured (the runner
starts one process per engine).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from microneedling.bench.timing import machine_reference, measure

#: The course the search benchmark books: the six-session acne-scar protocol.
COURSE_SESSIONS = 6


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
    """The course search a booking runs (the service behind ``POST /courses/search``): plan a
    six-session acne-scar course and find a slot for every session across the location's
    providers, each after the last by the protocol's gap."""
    from microneedling.core.knowledge.models import Policy  # noqa: PLC0415
    from microneedling.directory.models import Location, Service  # noqa: PLC0415
    from microneedling.patients.models import Patient  # noqa: PLC0415
    from microneedling.scheduling.services import course_propose  # noqa: PLC0415

    proposal = course_propose(
        patient=Patient.objects.get(pk=ids["patient"]),
        location=Location.objects.get(pk=ids["location"]),
        service=Service.objects.get(pk=ids["service"]),
        indications=["acne_scars"],
        first_session=first,
        # A week before the first session: the whole course lies inside the horizon.
        now=datetime.combine(first - timedelta(days=7), time(12), tzinfo=UTC),
        policy=Policy(protocols={"acne_scars": "protocol.acne_scars.seed000"}),
    )
    sessions = len(proposal.plan.sessions)
    if sessions != COURSE_SESSIONS:
        raise AssertionError(f"the benchmark course has {sessions} sessions, not 6")
    return bool(proposal.series.ok)


def _bench_patient(organization: int) -> int:
    from microneedling.patients.models import Patient  # noqa: PLC0415

    patient = Patient.objects.create(
        organization_id=organization,
        first_name="Bench",
        last_name="Patient",
        email="bench.patient@example.org",
        birth_date=date(1990, 1, 1),
        fitzpatrick_type=3,
    )
    return patient.pk


def run(runs: int) -> dict[str, Any]:
    """Build the chain in the current database and measure (call after django.setup())."""
    from django.core.management import call_command  # noqa: PLC0415
    from django.db import connection  # noqa: PLC0415

    from microneedling.bench.chain import build_chain  # noqa: PLC0415
    from microneedling.config.runtime import settle_after_startup  # noqa: PLC0415

    call_command("migrate", verbosity=0)
    year_start = date(2027, 1, 4)
    ids = build_chain(first_day=year_start)
    ids["patient"] = _bench_patient(ids["organization"])
    month_first, month_last = date(2027, 6, 1), date(2027, 6, 30)
    slots = _month_slots(ids, month_first, month_last)
    naive_slots = _naive_month_slots(ids, month_first, month_last)
    # Measure the process as the server runs it (see config/runtime.py).
    settle_after_startup()
    reference_before = machine_reference()
    month = measure(lambda: _month_slots(ids, month_first, month_last), runs=runs * 4)
    naive = measure(
        lambda: _naive_month_slots(ids, month_first, month_last), runs=max(3, runs // 3)
    )
    course = measure(lambda: _course_search(ids, date(2027, 5, 3)), runs=runs * 4)
    reference_after = machine_reference()
    return {
        "engine": connection.vendor,
        # A fixed CPU workload timed before and after: how noisy the machine was.
        "machine_reference": {"before": reference_before, "after": reference_after},
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
