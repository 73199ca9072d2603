"""The re-homing problem as plain data: the visits to place, the sites that can take them,
what a placement costs, and a check that a plan breaks no rule."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from microneedling.core.availability import Phase, Resource, Slot, subtract_pairs
from microneedling.core.geo import distance_km

Seconds = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Site:
    """A location that can receive visits: where it is, its zone, and its providers', rooms'
    and pens' free time (net of what is already booked there)."""

    id: int
    latitude: float
    longitude: float
    zone: str
    resources: tuple[Resource, ...]


@dataclass(frozen=True, slots=True)
class Visit:
    """A displaced visit: its phases, where and when it was, who gives it, where the patient
    lives, and the local days it may move to (its course window, narrowed so that the gaps
    to the sessions before and after stay valid).

    ``patient`` names the person (visits sharing it are never placed at overlapping times)
    and ``patient_busy`` holds their visits that stay where they are, which a placement
    must not overlap either: one person is never in two chairs at once.

    ``providers`` names the providers who may give the visit (``None``: anyone the site
    has): a clinic that has only doctors and nurse practitioners do the needling keeps a
    treatment to them, while a consultation may be with anyone."""

    id: int
    phases: tuple[Phase, ...]
    start: datetime
    zone: str
    provider: str
    home: tuple[float, float]
    first_day: date
    last_day: date
    prefer_site: int | None = None  # the provider's new location, after a move
    patient: str | None = None
    patient_busy: tuple[tuple[datetime, datetime], ...] = ()
    providers: frozenset[str] | None = None

    def may_use(self, resource: Resource) -> bool:
        """Whether the visit may hold ``resource`` (a provider it may have, or any room or
        pen)."""
        if resource.kind != "provider" or self.providers is None:
            return True
        return resource.id in self.providers

    @property
    def day(self) -> date:
        """The local day the visit was on."""
        return self.start.astimezone(ZoneInfo(self.zone)).date()


@dataclass(frozen=True, slots=True)
class Weights:
    """What the objective counts: kilometres from the patient's home, days of shift, a
    provider other than the patient's own, a site other than the one the provider moved to,
    and a visit left without a place (far above any placement, so placing comes first)."""

    km: float = 1.0
    day: float = 3.0
    other_provider: float = 15.0
    other_site: float = 25.0
    unplaced: float = 10_000.0


@dataclass(frozen=True, slots=True)
class Placement:
    """Where and when a visit goes, and what that costs."""

    visit_id: int
    site_id: int
    slot: Slot
    distance_km: float
    shift_days: int
    cost: float


@dataclass(frozen=True)
class Plan:
    """Placements, the visits that could not be placed (with why), and the objective."""

    placements: tuple[Placement, ...]
    unplaced: tuple[tuple[int, str], ...]
    objective: float
    stats: dict[str, float] = field(default_factory=dict)


def site_distance(visit: Visit, site: Site) -> float:
    """Kilometres from the patient's home to the site."""
    return distance_km(visit.home[0], visit.home[1], site.latitude, site.longitude)


def placement_cost(
    visit: Visit, site: Site, slot: Slot, weights: Weights
) -> tuple[float, float, int]:
    """(cost, kilometres, days of shift) of putting ``visit`` in ``slot`` at ``site``."""
    km = site_distance(visit, site)
    local = slot.start.astimezone(ZoneInfo(site.zone))
    shift = (local.date() - visit.day).days
    before = visit.start.astimezone(ZoneInfo(visit.zone))
    # A small pull towards the old time of day: the patient planned around it.
    minutes = abs((local.hour * 60 + local.minute) - (before.hour * 60 + before.minute))
    cost = weights.km * km + weights.day * abs(shift) + minutes / 600
    if slot.provider_id != visit.provider:
        cost += weights.other_provider
    if visit.prefer_site is not None and site.id != visit.prefer_site:
        cost += weights.other_site
    return cost, km, shift


def holds(phases: Sequence[Phase], slot: Slot) -> dict[str, list[Seconds]]:
    """The seconds each resource is held by a visit in ``slot`` (consecutive phases on the
    same resource merged)."""
    held: dict[str, list[Seconds]] = defaultdict(list)
    moment = int(slot.start.timestamp())
    for phase in phases:
        end = moment + phase.minutes * 60
        for resource in slot.assignment.get(phase.code, {}).values():
            spans = held[resource]
            if spans and spans[-1][1] == moment:
                spans[-1] = (spans[-1][0], end)
            else:
                spans.append((moment, end))
        moment = end
    return held


def plan_violations(plan: Plan, visits: Iterable[Visit], sites: Iterable[Site]) -> list[str]:
    """Every broken rule in ``plan``: a placement outside its visit's days, a resource held
    outside its free time, a provider the visit may not have, two placements holding one
    resource at once, a patient in two visits at once, a visit placed twice. Empty for a valid plan.

    Two placements holding one resource clash at whichever sites they are: a provider's id
    is the same at every site they work at."""
    by_visit = {v.id: v for v in visits}
    by_site = {s.id: s for s in sites}
    problems = []
    seen: set[int] = set()
    # Keyed by resource alone: a provider who works at several sites is busy at all of them.
    taken: dict[str, list[Seconds]] = defaultdict(list)
    in_visit: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
    for placement in plan.placements:
        visit, site = by_visit[placement.visit_id], by_site[placement.site_id]
        slot = placement.slot
        if visit.patient is not None:
            if any(a < slot.end and slot.start < b for a, b in visit.patient_busy):
                problems.append(f"visit {visit.id} meets another visit of its patient")
            in_visit[visit.patient].append((slot.start, slot.end))
        if visit.id in seen:
            problems.append(f"visit {visit.id} placed twice")
        seen.add(visit.id)
        day = placement.slot.start.astimezone(ZoneInfo(site.zone)).date()
        if not visit.first_day <= day <= visit.last_day:
            problems.append(
                f"visit {visit.id} on {day}, outside {visit.first_day}–{visit.last_day}"
            )
        free = {r.id: free_pairs(r) for r in site.resources}
        kinds = {r.id: r for r in site.resources}
        for resource, spans in holds(visit.phases, placement.slot).items():
            if resource not in free:
                problems.append(f"visit {visit.id} uses {resource}, not at site {site.id}")
                continue
            if not visit.may_use(kinds[resource]):
                problems.append(f"visit {visit.id} uses {resource}, who may not give it")
            for start, end in spans:
                if not _inside(free[resource], start, end):
                    problems.append(f"visit {visit.id} holds {resource} outside its free time")
                taken[resource].append((start, end))
    for resource, spans in taken.items():
        spans.sort()
        for (_, end), (start, _) in pairwise(spans):
            if start < end:
                problems.append(f"{resource} double-booked at {start}")
    for visit_spans in in_visit.values():
        visit_spans.sort()
        for (_, ends), (starts, _) in pairwise(visit_spans):
            if starts < ends:
                problems.append(f"a patient is placed in two visits at once at {starts}")
    return problems


def free_pairs(resource: Resource) -> list[Seconds]:
    """A resource's free time as whole seconds."""
    pairs = getattr(resource.free, "pairs", None)
    if pairs is not None:
        return list(pairs)
    return [(int(i.start.timestamp()), int(i.end.timestamp())) for i in resource.free]


def _inside(pairs: Sequence[Seconds], start: int, end: int) -> bool:
    return any(a <= start and end <= b for a, b in pairs)


def day_span(day: date, zone: str) -> tuple[datetime, datetime]:
    """The aware start and end of a local day."""
    tz = ZoneInfo(zone)
    start = datetime.combine(day, datetime.min.time(), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=tz)
    return start, end


def sites_without(sites: Iterable[Site], held: dict[str, list[Seconds]]) -> list[Site]:
    """The sites with ``held`` (resource id → seconds) taken out of their free time: for
    visits that keep their time, so nothing else is placed over it."""
    result = []
    for site in sites:
        resources = []
        for resource in site.resources:
            if resource.id not in held:
                resources.append(resource)
                continue
            left = subtract_pairs(free_pairs(resource), sorted(held[resource.id]))
            resources.append(Resource.of_seconds(id=resource.id, kind=resource.kind, free=left))
        result.append(Site(site.id, site.latitude, site.longitude, site.zone, tuple(resources)))
    return result
