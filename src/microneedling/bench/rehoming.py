"""Re-homing benchmark: a location with 10,000 future visits closes and three receiving
locations take them. Measures the preview (plan, and every write rolled back) over several
runs and one real apply; checks the database after it (overlaps, windows, counts); and on
the first 200 and 1,000 visits compares the fast plan's objective with CP-SAT's best within
60 s on the same instance.

Runs inside a process whose Django settings point at the engine being measured.
"""

from __future__ import annotations

import heapq
import os
import time
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from microneedling.bench.timing import machine_reference, summarise

VISITS = 10_000
COMPARE_SIZES = (200, 1_000)
CP_SAT_SECONDS = 60.0


def _overlapping_pairs(rows: Iterable[tuple[str, datetime, datetime]]) -> int:
    """Pairs of rows of one resource whose times overlap, from rows ordered by resource and
    start: each row against every earlier one of its resource still running when it starts
    (not only the one just before it, which a long reservation may outlast)."""
    count = 0
    resource: str | None = None
    running: list[datetime] = []  # the ends of the resource's earlier rows, a heap
    for name, starts_at, ends_at in rows:
        if name != resource:
            resource, running = name, []
        while running and running[0] <= starts_at:
            heapq.heappop(running)
        count += len(running)
        heapq.heappush(running, ends_at)
    return count


def _checks() -> dict[str, int]:
    """What must hold after the apply, read back from the database."""
    from microneedling.scheduling.models import Appointment, Reservation  # noqa: PLC0415

    rows = (
        Reservation.objects.filter(active=True, overlap_allowed=False)
        .order_by("resource", "starts_at")
        .values_list("resource", "starts_at", "ends_at")
    )
    overlaps = _overlapping_pairs(rows.iterator(chunk_size=20_000))
    outside = 0
    for visit in Appointment.objects.filter(
        course_session__isnull=False, status="booked"
    ).select_related("course_session", "location"):
        day = visit.starts_at.astimezone(ZoneInfo(visit.location.timezone)).date()
        session = visit.course_session
        if session is not None and not session.earliest <= day <= session.latest:
            outside += 1
    return {"overlapping_reservations": overlaps, "sessions_outside_windows": outside}


def _instance(closing_id: int, size: int, now: datetime) -> tuple[list[Any], list[Any], int]:
    """The core instance of the first ``size`` visits (inside a transaction the caller
    rolls back): their visits and the receiving sites' free time."""
    from microneedling.directory.models import Location  # noqa: PLC0415
    from microneedling.scheduling import rehoming  # noqa: PLC0415
    from microneedling.scheduling.models import Appointment, Reservation  # noqa: PLC0415

    closing = Location.objects.get(pk=closing_id)
    appointments = list(
        Appointment.objects.filter(location=closing, status="booked")
        .select_related("patient", "location", "provider", "service", "course_session")
        .order_by("starts_at", "pk")[:size]
    )
    Reservation.objects.filter(appointment__in=appointments).update(active=False)
    today = now.astimezone(ZoneInfo(closing.timezone)).date()
    visits = rehoming.displaced_visits(appointments, today=today, prefer_site=None)
    receivers = rehoming.nearest_receivers(closing, exclude={closing.pk}, on=today)
    sites = rehoming.receiving_sites(receivers, appointments, visits)
    return visits, sites, 15


def _ratio(fast: float, exact: float, status: str) -> float | None:
    """The fast plan's objective over CP-SAT's, or None when CP-SAT found no plan (its
    objective is then the empty plan's 0, not a plan to compare with) or a free one that the
    fast plan did not match."""
    if status not in ("OPTIMAL", "FEASIBLE"):
        return None
    if exact == 0:
        return 1.0 if fast == 0 else None
    return fast / exact


class _Rollback(Exception):
    pass


def _compare(closing_id: int, size: int, now: datetime) -> dict[str, Any]:
    from django.db import transaction  # noqa: PLC0415

    from microneedling.core.rehoming import plan_rehoming, plan_violations, solve_exact  # noqa: PLC0415

    result: dict[str, Any] = {}
    try:
        with transaction.atomic():
            visits, sites, grid = _instance(closing_id, size, now)
            raise _Rollback
    except _Rollback:
        pass
    started = time.perf_counter()
    fast = plan_rehoming(visits, sites, grid_minutes=grid, not_before=now)
    fast_seconds = time.perf_counter() - started
    exact = solve_exact(
        visits,
        sites,
        grid_minutes=grid,
        not_before=now,
        hint=fast,
        time_limit_s=CP_SAT_SECONDS,
    )
    result.update(
        {
            "visits": size,
            "fast_objective": fast.objective,
            "fast_seconds": fast_seconds,
            "fast_unplaced": len(fast.unplaced),
            "cp_sat_status": exact.status,
            "cp_sat_objective": exact.objective,
            "cp_sat_bound": exact.bound,
            "cp_sat_seconds": exact.seconds,
            "cp_sat_candidates": exact.candidates,
            "cp_sat_violations": len(plan_violations(exact.plan, visits, sites)),
            "ratio_fast_to_cp_sat": _ratio(fast.objective, exact.objective, exact.status),
            "ratio_fast_to_bound": fast.objective / exact.bound if exact.bound else None,
        }
    )
    return result


def run(runs: int) -> dict[str, Any]:
    """Build the closing location in the current database and measure (after django.setup())."""
    from django.core.management import call_command  # noqa: PLC0415
    from django.db import connection  # noqa: PLC0415

    from microneedling.bench.rehoming_chain import build_closing  # noqa: PLC0415
    from microneedling.config.runtime import settle_after_startup  # noqa: PLC0415
    from microneedling.directory.models import Location  # noqa: PLC0415
    from microneedling.scheduling.rehoming import location_close  # noqa: PLC0415

    call_command("migrate", verbosity=0)
    now = datetime(2027, 3, 1, 12, tzinfo=UTC)
    first_day = date(2027, 3, 8)
    built_at = time.perf_counter()
    # BENCH_REHOMING_VISITS makes a smaller instance for trying the suite out; the figures
    # reported are for the default 10,000.
    visits = int(os.environ.get("BENCH_REHOMING_VISITS", VISITS))
    ids = build_closing(first_day=first_day, visits=visits)
    built = time.perf_counter() - built_at
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")
    settle_after_startup()
    closing = Location.objects.get(pk=ids["closing"])
    reference_before = machine_reference()
    previews, plans, writes = [], [], []
    summary: dict[str, Any] = {}
    for _ in range(max(1, runs)):
        started = time.perf_counter()
        report = location_close(
            location=closing, from_date=first_day, actor=None, apply=False, now=now
        )
        previews.append(time.perf_counter() - started)
        plans.append(report.seconds.get("plan", 0.0))
        writes.append(report.seconds.get("apply", 0.0))
        summary = report.summary()
    # Before the apply, while the closing location still holds its visits.
    comparisons = [_compare(ids["closing"], size, now) for size in COMPARE_SIZES]
    started = time.perf_counter()
    applied = location_close(location=closing, from_date=first_day, actor=None, apply=True, now=now)
    apply_seconds = time.perf_counter() - started
    checks = _checks()
    reference_after = machine_reference()
    applied_summary = applied.summary()
    return {
        "engine": connection.vendor,
        "machine_reference": {"before": reference_before, "after": reference_after},
        "generated": {**ids, "seconds": built},
        "preview_plan_and_rolled_back_writes": summarise(previews),
        "plan_only": summarise(plans),
        "writes_only": summarise(writes),
        "apply": {
            "seconds": apply_seconds,
            "plan_seconds": applied.seconds.get("plan"),
            "write_seconds": applied.seconds.get("apply"),
            "applied": applied.applied,
        },
        "outcome": {
            key: applied_summary[key]
            for key in (
                "affected",
                "rehomed",
                "stuck",
                "share_rehomed",
                "mean_distance_km",
                "mean_shift_days",
                "same_provider",
                "active_before",
                "active_after",
                "reconciles",
            )
        },
        "violations": len(applied_summary["violations"]) + sum(checks.values()),
        "checks_after_apply": checks,
        "preview_agrees_with_apply": summary.get("rehomed") == applied_summary["rehomed"],
        "objective_vs_cp_sat": comparisons,
    }
