"""The fast re-homing method: visits in time order, each to the cheapest free slot found by
searching days outward from its own and sites nearest first, on free time that shrinks as
placements are made. A search stops as soon as no further day or site could beat the best
slot found, so a visit that fits at the nearest site on its own day costs one day's search.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from microneedling.core.availability import Resource, Slot, find_starts, subtract_pairs
from microneedling.core.rehoming.model import (
    Placement,
    Plan,
    Site,
    Visit,
    Weights,
    day_span,
    free_pairs,
    holds,
    site_distance,
)

Progress = Callable[[int, int], None]
FAR = timedelta(days=3650)


class _Board:
    """The sites' resources, with free time that placements take away."""

    def __init__(self, sites: Sequence[Site]) -> None:
        self.sites = {s.id: s for s in sites}
        self.resources: dict[int, list[Resource]] = {s.id: list(s.resources) for s in sites}
        self.providers = {
            s.id: frozenset(r.id for r in s.resources if r.kind == "provider") for s in sites
        }

    def ordered(self, site_id: int, visit: Visit) -> list[Resource]:
        """The site's resources the visit may use, its own provider first (first fit
        wins)."""
        resources = [r for r in self.resources[site_id] if visit.may_use(r)]
        if visit.provider not in self.providers[site_id]:
            return resources
        return sorted(resources, key=lambda r: r.id != visit.provider)

    def take(self, held: dict[str, list[tuple[int, int]]]) -> None:
        """Remove what a placement holds from every site's free time: a provider who works
        at several sites is one person, busy at all of them while giving the visit."""
        for resources in self.resources.values():
            for index, resource in enumerate(resources):
                if resource.id in held:
                    free = free_pairs(resource)
                    left = subtract_pairs(free, sorted(held[resource.id]))
                    resources[index] = Resource.of_seconds(
                        id=resource.id, kind=resource.kind, free=left
                    )


def _days(visit: Visit) -> list[date]:
    """The visit's allowed days, nearest to its own first (later before earlier on a tie:
    a later day never asks the patient to come before they planned)."""
    days = []
    day = visit.first_day
    while day <= visit.last_day:
        days.append(day)
        day += timedelta(days=1)
    return sorted(days, key=lambda d: (abs((d - visit.day).days), d < visit.day))


@dataclass(frozen=True, slots=True)
class _Context:
    """What the search needs about one visit, worked out once."""

    visit: Visit
    day: date
    minutes: int  # local minutes past midnight it started at

    @classmethod
    def of(cls, visit: Visit) -> _Context:
        local = visit.start.astimezone(ZoneInfo(visit.zone))
        return cls(visit, local.date(), local.hour * 60 + local.minute)


def _best_on_day(
    context: _Context,
    site: Site,
    floor: float,
    day: date,
    board: _Board,
    *,
    grid_minutes: int,
    not_before: datetime,
    weights: Weights,
    patient_busy: Sequence[tuple[datetime, datetime]] = (),
) -> tuple[float, Slot] | None:
    """The cheapest slot at ``site`` on ``day``, clear of ``patient_busy``: ``floor``
    (distance, shift, penalties) plus the pull towards the old time of day and a provider
    change where the own one is busy."""
    visit = context.visit
    start, end = day_span(day, site.zone)
    # One slot per start, the visit's own provider first wherever they are free.
    slots = find_starts(
        phases=visit.phases,
        resources=board.ordered(site.id, visit),
        start=start,
        end=end,
        grid_minutes=grid_minutes,
        zone=site.zone,
        not_before=not_before,
        not_after=start + FAR,
        patient_busy=patient_busy,
    )
    if not slots:
        return None
    zone = ZoneInfo(site.zone)
    own_here = visit.provider in board.providers[site.id]
    best: tuple[float, Slot] | None = None
    for slot in slots:
        local = slot.start.astimezone(zone)
        cost = floor + abs(local.hour * 60 + local.minute - context.minutes) / 600
        if own_here and slot.provider_id != visit.provider:
            cost += weights.other_provider
        if best is None or cost < best[0]:
            best = (cost, slot)
    return best


def plan_rehoming(
    visits: Sequence[Visit],
    sites: Sequence[Site],
    *,
    grid_minutes: int,
    not_before: datetime,
    weights: Weights | None = None,
    progress: Progress | None = None,
) -> Plan:
    """A placement for every visit that can have one, none overlapping another or anything
    already booked (nor, for one patient, each other or the patient's other visits), each
    inside its allowed days; the rest unplaced with the reason."""
    weights = weights or Weights()
    board = _Board(sites)
    # The placements made so far for each patient.
    placed_for: dict[str, list[tuple[datetime, datetime]]] = {}
    placements: list[Placement] = []
    unplaced: list[tuple[int, str]] = []
    searches = 0
    ordered = sorted(visits, key=lambda v: (v.start, v.id))
    for done, visit in enumerate(ordered, start=1):
        context = _Context.of(visit)
        # Everything a site costs whatever the slot: distance, and the penalties it cannot
        # avoid (the patient's provider does not work there; not the provider's new site).
        fixed = {}
        for site in sites:
            km = site_distance(visit, site)
            cost = weights.km * km
            if visit.provider not in board.providers[site.id]:
                cost += weights.other_provider
            if visit.prefer_site is not None and site.id != visit.prefer_site:
                cost += weights.other_site
            fixed[site.id] = (cost, km)
        by_floor = sorted(sites, key=lambda s: fixed[s.id][0])
        busy = list(visit.patient_busy)
        if visit.patient is not None:
            busy += placed_for.get(visit.patient, [])
        cheapest = fixed[by_floor[0].id][0] if by_floor else 0.0
        best: tuple[float, Slot, Site, int] | None = None
        for day in _days(visit):
            shift = (day - context.day).days
            day_cost = weights.day * abs(shift)
            if best is not None and best[0] <= cheapest + day_cost:
                break  # no later day can beat it: each costs at least this much
            for site in by_floor:
                floor = fixed[site.id][0] + day_cost
                if best is not None and best[0] <= floor:
                    break  # sites are cheapest first: the rest cost more still
                searches += 1
                found = _best_on_day(
                    context,
                    site,
                    floor,
                    day,
                    board,
                    grid_minutes=grid_minutes,
                    not_before=not_before,
                    weights=weights,
                    patient_busy=busy,
                )
                if found is not None and (best is None or found[0] < best[0]):
                    best = (found[0], found[1], site, shift)
        if best is None:
            reason = (
                "no receiving location has a free provider, room and pen on any allowed day "
                f"({visit.first_day.isoformat()} to {visit.last_day.isoformat()})"
            )
            unplaced.append((visit.id, reason))
        else:
            cost, slot, site, shift_days = best
            board.take(holds(visit.phases, slot))
            if visit.patient is not None:
                placed_for.setdefault(visit.patient, []).append((slot.start, slot.end))
            km = fixed[site.id][1]
            placements.append(Placement(visit.id, site.id, slot, km, shift_days, cost))
        if progress is not None:
            progress(done, len(ordered))
    objective = sum(p.cost for p in placements) + weights.unplaced * len(unplaced)
    return Plan(
        placements=tuple(placements),
        unplaced=tuple(unplaced),
        objective=objective,
        stats={"day_searches": searches},
    )
