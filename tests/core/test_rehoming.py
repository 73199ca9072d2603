"""Re-homing engine: the fast plan and the CP-SAT check, on generated sites and visits."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from microneedling.core.availability import Phase, Resource
from microneedling.core.rehoming import (
    Site,
    Visit,
    Weights,
    plan_rehoming,
    plan_violations,
    solve_exact,
)
from microneedling.core.rehoming.model import holds

ZONE = "America/Chicago"
TZ = ZoneInfo(ZONE)
MONDAY = date(2027, 5, 3)
PHASES = (
    Phase("check_in", 10, ("room",)),
    Phase("numbing", 30, ("room",)),
    Phase("procedure", 30, ("provider", "room", "device")),
    Phase("aftercare", 15, ("room",)),
)
NOW = datetime(2027, 4, 1, 12, tzinfo=UTC)
HOME = (29.50, -98.50)


def _open(days: int, opens: int = 9, closes: int = 17) -> list[tuple[int, int]]:
    spans = []
    for offset in range(days):
        day = MONDAY + timedelta(days=offset)
        start = datetime.combine(day, time(opens), tzinfo=TZ)
        end = datetime.combine(day, time(closes), tzinfo=TZ)
        spans.append((int(start.timestamp()), int(end.timestamp())))
    return spans


def site(
    site_id: int, *, km_east: float, providers: int = 1, rooms: int = 1, days: int = 7
) -> Site:
    free = _open(days)
    resources = [
        Resource.of_seconds(id=f"provider:{site_id}{n}", kind="provider", free=free)
        for n in range(providers)
    ]
    resources += [
        Resource.of_seconds(id=f"room:{site_id}{n}", kind="room", free=free) for n in range(rooms)
    ]
    resources += [
        Resource.of_seconds(id=f"device:{site_id}{n}", kind="device", free=free)
        for n in range(rooms)
    ]
    # About 0.98 km per 0.01 degree of longitude at this latitude.
    return Site(site_id, HOME[0], HOME[1] + km_east / 97.0, ZONE, tuple(resources))


def visit(
    visit_id: int,
    *,
    day: date = MONDAY,
    hour: int = 10,
    slack: int = 3,
    provider: str = "provider:90",
    prefer_site: int | None = None,
) -> Visit:
    return Visit(
        id=visit_id,
        phases=PHASES,
        start=datetime.combine(day, time(hour), tzinfo=TZ),
        zone=ZONE,
        provider=provider,
        home=HOME,
        first_day=day - timedelta(days=slack),
        last_day=day + timedelta(days=slack),
        prefer_site=prefer_site,
    )


def plan(visits, sites, **kw):  # type: ignore[no-untyped-def]
    return plan_rehoming(visits, sites, grid_minutes=15, not_before=NOW, **kw)


def test_a_visit_goes_to_the_nearest_site_on_its_own_day_and_time() -> None:
    sites = [site(1, km_east=20), site(2, km_east=5)]
    result = plan([visit(1)], sites)
    [placement] = result.placements
    assert placement.site_id == 2
    assert placement.shift_days == 0
    assert placement.slot.start == datetime.combine(MONDAY, time(10), tzinfo=TZ)
    assert placement.distance_km == pytest.approx(5, rel=0.05)


def test_a_full_day_moves_the_visit_to_the_nearest_day_inside_its_range() -> None:
    # One provider, one room: a day holds six 85-minute visits at most... and a 30-minute
    # procedure each. Twelve visits on Monday spill to the days around it, never outside.
    sites = [site(1, km_east=5)]
    visits = [visit(n, hour=9 + n % 8) for n in range(12)]
    result = plan(visits, sites)
    assert not plan_violations(result, visits, sites)
    assert len(result.placements) == 12
    assert {p.shift_days for p in result.placements} - {0} <= {1, -1, 2, -2, 3, -3}
    assert sum(p.shift_days == 0 for p in result.placements) >= 5


def test_the_patients_own_provider_is_chosen_where_they_work() -> None:
    own = "provider:22"
    sites = [site(1, km_east=5, providers=1), site(2, km_east=6, providers=3)]
    [placement] = plan([visit(1, provider=own)], sites).placements
    assert placement.site_id == 2
    assert placement.slot.provider_id == own


def test_a_moved_providers_visits_follow_them_to_their_new_site() -> None:
    sites = [site(1, km_east=2), site(2, km_east=30)]
    # The provider now works at site 2 (their diary moved with them).
    [placement] = plan([visit(1, provider="provider:20", prefer_site=2)], sites).placements
    assert placement.site_id == 2
    assert placement.slot.provider_id == "provider:20"


def test_a_visit_with_no_room_anywhere_is_reported_with_the_reason() -> None:
    sites = [site(1, km_east=5, days=1)]
    late = visit(1, day=MONDAY + timedelta(days=10), slack=1)
    result = plan([late], sites)
    assert not result.placements
    [(visit_id, reason)] = result.unplaced
    assert visit_id == 1 and "allowed day" in reason
    assert result.objective == Weights().unplaced


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    count=st.integers(min_value=1, max_value=40),
    hours=st.lists(st.integers(min_value=8, max_value=17), min_size=40, max_size=40),
    days=st.lists(st.integers(min_value=0, max_value=6), min_size=40, max_size=40),
    slack=st.integers(min_value=0, max_value=3),
    distances=st.lists(st.floats(min_value=1, max_value=80), min_size=1, max_size=3),
    patients=st.lists(st.integers(min_value=0, max_value=5), min_size=40, max_size=40),
)
def test_every_plan_is_valid_and_accounts_for_every_visit(
    *,
    count: int,
    hours: list[int],
    days: list[int],
    slack: int,
    distances: list[float],
    patients: list[int],
) -> None:
    sites = [site(n + 1, km_east=km, providers=2, rooms=2) for n, km in enumerate(distances)]
    # A few patients with several visits each, often at the same hour: never placed at once.
    visits = [
        replace(
            visit(n, day=MONDAY + timedelta(days=days[n]), hour=hours[n], slack=slack),
            patient=f"patient:{patients[n]}",
        )
        for n in range(count)
    ]
    result = plan(visits, sites)
    assert plan_violations(result, visits, sites) == []
    placed = {p.visit_id for p in result.placements}
    left = {v for v, _ in result.unplaced}
    assert placed | left == {v.id for v in visits} and not placed & left


def test_the_violation_check_catches_a_double_booking() -> None:
    sites = [site(1, km_east=5)]
    visits = [visit(1), visit(2)]
    result = plan(visits, sites)
    first = result.placements[0]
    cheat = type(result)(
        placements=(first, type(first)(2, 1, first.slot, 5, 0, 0)),
        unplaced=(),
        objective=0,
    )
    assert any("double-booked" in p for p in plan_violations(cheat, visits, sites))


def test_one_patients_visits_are_never_placed_at_the_same_time() -> None:
    sites = [site(1, km_east=5, providers=2, rooms=2)]
    # Both at 10:00 with two providers: free rooms and pens for both, but one patient.
    visits = [
        replace(visit(1, provider="provider:10"), patient="patient:7"),
        replace(visit(2, provider="provider:11"), patient="patient:7"),
    ]
    result = plan(visits, sites)
    assert len(result.placements) == 2
    first, second = sorted((p.slot for p in result.placements), key=lambda s: s.start)
    assert first.end <= second.start
    assert plan_violations(result, visits, sites) == []
    # Two different people are placed at 10:00 side by side, as before.
    apart = [replace(v, patient=f"patient:{v.id}") for v in visits]
    assert {p.slot.start for p in plan(apart, sites).placements} == {visits[0].start}


def test_a_placement_keeps_clear_of_the_patients_visit_that_stays() -> None:
    sites = [site(1, km_east=5)]
    elsewhere = (visit(9).start, visit(9).start + timedelta(minutes=85))
    moved = replace(visit(1), patient="patient:7", patient_busy=(elsewhere,))
    [placement] = plan([moved], sites).placements
    assert not (placement.slot.start < elsewhere[1] and elsewhere[0] < placement.slot.end)
    assert placement.slot.start.astimezone(TZ).date() == MONDAY  # same day, another time


def test_the_violation_check_catches_a_patient_in_two_visits_at_once() -> None:
    sites = [site(1, km_east=5, providers=2, rooms=2)]
    visits = [replace(visit(n), patient="patient:7") for n in (1, 2)]
    apart = [replace(v, patient=f"patient:{v.id}") for v in visits]
    together = plan(apart, sites)  # placed side by side at 10:00
    assert any("two visits at once" in p for p in plan_violations(together, visits, sites))
    kept = replace(
        visits[0], patient_busy=((visits[0].start, visits[0].start + timedelta(hours=1)),)
    )
    alone = plan([replace(apart[0], patient_busy=())], sites)
    assert any("another visit of its patient" in p for p in plan_violations(alone, [kept], sites))


def test_cp_sat_keeps_one_patients_visits_apart_too() -> None:
    # Left to itself the cheapest plan puts both at 10:00, one at each site.
    sites = [site(1, km_east=5), site(2, km_east=5)]
    visits = [
        replace(visit(n, provider=f"provider:{n + 1}0"), patient="patient:7") for n in range(2)
    ]
    fast = plan(visits, sites)
    exact = solve_exact(visits, sites, grid_minutes=15, not_before=NOW, hint=fast, time_limit_s=20)
    assert exact.status == "OPTIMAL"
    assert len(exact.plan.placements) == 2
    assert plan_violations(exact.plan, visits, sites) == []
    assert exact.objective <= fast.objective + 1e-6


def test_cp_sat_never_does_worse_than_the_fast_plan_it_is_hinted_with() -> None:
    sites = [site(1, km_east=5), site(2, km_east=12, providers=2, rooms=2)]
    visits = [visit(n, hour=9 + n % 7, day=MONDAY + timedelta(days=n % 3)) for n in range(18)]
    fast = plan(visits, sites)
    exact = solve_exact(visits, sites, grid_minutes=15, not_before=NOW, hint=fast, time_limit_s=20)
    assert exact.status in {"OPTIMAL", "FEASIBLE"}
    assert plan_violations(exact.plan, visits, sites) == []
    assert exact.objective <= fast.objective + 1e-6
    assert exact.bound <= exact.objective + 1e-6
    # The fast plan is close: within a few percent of CP-SAT's best on this instance.
    assert fast.objective <= exact.objective * 1.10


def _shared(site_id: int, *, km_east: float, provider: str, days: int = 7) -> Site:
    """A site with one room and pen, where ``provider`` works (and may at other sites)."""
    free = _open(days)
    return Site(
        site_id,
        HOME[0],
        HOME[1] + km_east / 97.0,
        ZONE,
        (
            Resource.of_seconds(id=provider, kind="provider", free=free),
            Resource.of_seconds(id=f"room:{site_id}", kind="room", free=free),
            Resource.of_seconds(id=f"device:{site_id}", kind="device", free=free),
        ),
    )


def _provider_overlaps(result, visits) -> list[str]:  # type: ignore[no-untyped-def]
    """Each provider's placements that overlap another of the same provider's, any site."""
    phases = {v.id: v.phases for v in visits}
    spans: dict[str, list[tuple[int, int]]] = {}
    for placement in result.placements:
        for resource, held in holds(phases[placement.visit_id], placement.slot).items():
            if resource.startswith("provider:"):
                spans.setdefault(resource, []).extend(held)
    clashes = []
    for resource, held in spans.items():
        held.sort()
        clashes += [f"{resource} at {b[0]}" for a, b in pairwise(held) if b[0] < a[1]]
    return clashes


def test_a_provider_who_works_at_two_sites_is_never_placed_at_both_at_once() -> None:
    # Ada works at both receiving sites; each has its own room and pen. Both of her visits
    # want Monday 10:00, one at each site as near as the other: she can give only one then.
    ada = "provider:77"
    sites = [_shared(1, km_east=5, provider=ada), _shared(2, km_east=5, provider=ada)]
    visits = [visit(1, provider=ada), visit(2, provider=ada)]
    result = plan(visits, sites)
    assert len(result.placements) == 2
    assert _provider_overlaps(result, visits) == []
    assert plan_violations(result, visits, sites) == []


def test_the_violation_check_catches_a_provider_at_two_sites_at_once() -> None:
    ada = "provider:77"
    sites = [_shared(1, km_east=5, provider=ada), _shared(2, km_east=6, provider=ada)]
    visits = [visit(1, provider=ada), visit(2, provider=ada)]
    [first] = plan([visits[0]], sites[:1]).placements
    [second] = plan([visits[1]], sites[1:]).placements  # each alone: both at 10:00
    assert first.slot.start == second.slot.start
    both = type(plan([], sites))(placements=(first, second), unplaced=(), objective=0)
    assert any("double-booked" in p for p in plan_violations(both, visits, sites))


def test_cp_sat_never_places_a_provider_at_two_sites_at_once() -> None:
    ada = "provider:77"
    sites = [_shared(1, km_east=5, provider=ada), _shared(2, km_east=6, provider=ada)]
    visits = [visit(1, provider=ada), visit(2, provider=ada)]
    exact = solve_exact(visits, sites, grid_minutes=15, not_before=NOW, time_limit_s=20)
    assert len(exact.plan.placements) == 2
    assert _provider_overlaps(exact.plan, visits) == []


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    count=st.integers(min_value=1, max_value=30),
    hours=st.lists(st.integers(min_value=8, max_value=17), min_size=30, max_size=30),
    days=st.lists(st.integers(min_value=0, max_value=6), min_size=30, max_size=30),
    owners=st.lists(st.integers(min_value=0, max_value=2), min_size=30, max_size=30),
    slack=st.integers(min_value=0, max_value=3),
    sites_count=st.integers(min_value=2, max_value=4),
)
def test_no_provider_ever_has_two_overlapping_visits_after_re_homing(
    *,
    count: int,
    hours: list[int],
    days: list[int],
    owners: list[int],
    slack: int,
    sites_count: int,
) -> None:
    # Three providers, each working at every site, so any of them can be placed anywhere.
    staff = [f"provider:{n}" for n in range(3)]
    free = _open(7)
    sites = [
        Site(
            n,
            HOME[0],
            HOME[1] + n / 97.0,
            ZONE,
            (
                *(Resource.of_seconds(id=p, kind="provider", free=free) for p in staff),
                Resource.of_seconds(id=f"room:{n}", kind="room", free=free),
                Resource.of_seconds(id=f"device:{n}", kind="device", free=free),
            ),
        )
        for n in range(1, sites_count + 1)
    ]
    visits = [
        visit(
            n,
            day=MONDAY + timedelta(days=days[n]),
            hour=hours[n],
            slack=slack,
            provider=staff[owners[n]],
        )
        for n in range(count)
    ]
    result = plan(visits, sites)
    assert _provider_overlaps(result, visits) == []
    assert plan_violations(result, visits, sites) == []


def test_a_visit_kept_to_some_providers_is_given_only_to_them_by_both_methods() -> None:
    # The nearer site has only a provider the visit may not have; the farther one has one
    # it may.
    sites = [site(1, km_east=2), site(2, km_east=30)]
    kept = replace(visit(1), providers=frozenset({"provider:20"}))
    fast = plan([kept], sites)
    [placement] = fast.placements
    assert (placement.site_id, placement.slot.provider_id) == (2, "provider:20")
    exact = solve_exact([kept], sites, grid_minutes=15, not_before=NOW, time_limit_s=5)
    assert [p.slot.provider_id for p in exact.plan.placements] == ["provider:20"]
    # And a plan that gives it to someone else is reported as broken.
    elsewhere = plan([visit(1)], [sites[0]]).placements[0]  # with site 1's provider
    wrong = replace(fast, placements=(elsewhere,))
    assert any("may not give it" in p for p in plan_violations(wrong, [kept], sites))
