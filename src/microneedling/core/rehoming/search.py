"""The fast re-homing method: visits in time order, each to the cheapest free slot found by
searching days outward from its own and sites nearest first, on free time that shrinks as
placements are made. A search stops as soon as no further day or site could beat the best
slot found, so a visit that fits at the nearest site on its own day costs one day's search.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta

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
    placement_cost,
    site_distance,
)

Progress = Callable[[int, int], None]
FAR = timedelta(days=3650)


class _Board:
    """The sites' resources, with free time that placements take away."""

    def __init__(self, sites: Sequence[Site]) -> None:
        self.sites = {s.id: s for s in sites}
        self.resources: dict[int, list[Resource]] = {s.id: list(s.resources) for s in sites}

    def ordered(self, site_id: int, provider: str) -> list[Resource]:
        """The site's resources with the visit's own provider first (first fit wins)."""
        resources = self.resources[site_id]
        return sorted(resources, key=lambda r: r.id != provider)

    def take(self, site_id: int, held: dict[str, list[tuple[int, int]]]) -> None:
        """Remove what a placement holds from the site's free time."""
        resources = self.resources[site_id]
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


def _best_on_day(
    visit: Visit,
    site: Site,
    day: date,
    board: _Board,
    *,
    grid_minutes: int,
    not_before: datetime,
    weights: Weights,
) -> tuple[float, float, int, Slot] | None:
    start, end = day_span(day, site.zone)
    slots = find_starts(
        phases=visit.phases,
        resources=board.ordered(site.id, visit.provider),
        start=start,
        end=end,
        grid_minutes=grid_minutes,
        zone=site.zone,
        not_before=not_before,
        not_after=start + FAR,
        every_provider=True,
    )
    best = None
    for slot in slots:
        cost, km, shift = placement_cost(visit, site, slot, weights)
        if best is None or cost < best[0]:
            best = (cost, km, shift, slot)
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
    already booked, each inside its allowed days; the rest unplaced with the reason."""
    weights = weights or Weights()
    board = _Board(sites)
    placements: list[Placement] = []
    unplaced: list[tuple[int, str]] = []
    searches = 0
    ordered = sorted(visits, key=lambda v: (v.start, v.id))
    for done, visit in enumerate(ordered, start=1):
        by_distance = sorted(sites, key=lambda s: site_distance(visit, s))
        nearest = site_distance(visit, by_distance[0]) if by_distance else 0.0
        best: tuple[float, float, int, Slot, Site] | None = None
        for day in _days(visit):
            shift = abs((day - visit.day).days)
            if best is not None and best[0] <= weights.km * nearest + weights.day * shift:
                break  # no later day can beat it: each costs at least this much
            for site in by_distance:
                floor = weights.km * site_distance(visit, site) + weights.day * shift
                if best is not None and best[0] <= floor:
                    break  # sites are nearest first: the rest cost more still
                searches += 1
                found = _best_on_day(
                    visit,
                    site,
                    day,
                    board,
                    grid_minutes=grid_minutes,
                    not_before=not_before,
                    weights=weights,
                )
                if found is not None and (best is None or found[0] < best[0]):
                    best = (*found, site)
        if best is None:
            reason = (
                "no receiving location has a free provider, room and pen on any allowed day "
                f"({visit.first_day.isoformat()} to {visit.last_day.isoformat()})"
            )
            unplaced.append((visit.id, reason))
        else:
            cost, km, shift_days, slot, site = best
            board.take(site.id, holds(visit.phases, slot))
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
