"""The re-homing problem for OR-Tools CP-SAT, to check the fast plan against.

Each visit gets a short list of candidate slots (its cheapest per day and site on the
sites' initial free time, plus the fast plan's own choice, so the model can always do at
least as well as the fast plan). A boolean picks at most one candidate per visit; every
candidate holds each of its resources as an optional fixed interval, and one no-overlap
constraint per resource keeps chosen candidates apart; the patient is held the same way,
over the whole visit, so one person's visits are kept apart too. The objective is the same
as the fast method's: placement costs plus a large cost per visit left unplaced.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from ortools.sat.python import cp_model

from microneedling.core.availability import Slot, find_starts
from microneedling.core.rehoming.model import (
    Placement,
    Plan,
    Site,
    Visit,
    Weights,
    day_span,
    holds,
    placement_cost,
)
from microneedling.core.rehoming.search import FAR, _days

SCALE = 100  # CP-SAT wants integers: costs in hundredths


@dataclass(frozen=True)
class ExactResult:
    """CP-SAT's best plan within its time limit, and how sure it is."""

    plan: Plan
    status: str
    objective: float
    bound: float
    candidates: int
    seconds: float


def _candidates(
    visit: Visit,
    sites: Sequence[Site],
    *,
    grid_minutes: int,
    not_before: datetime,
    weights: Weights,
    per_visit: int,
) -> list[tuple[float, Site, Slot, float, int]]:
    found = []
    for day in _days(visit):
        for site in sites:
            start, end = day_span(day, site.zone)
            slots = find_starts(
                phases=visit.phases,
                resources=sorted(
                    (r for r in site.resources if visit.may_use(r)),
                    key=lambda r: r.id != visit.provider,
                ),
                start=start,
                end=end,
                grid_minutes=grid_minutes,
                zone=site.zone,
                not_before=not_before,
                not_after=start + FAR,
                every_provider=True,
                patient_busy=visit.patient_busy,
            )
            # A few per day and site: different providers and times, not every start.
            ranked = sorted(
                ((placement_cost(visit, site, s, weights), s) for s in slots),
                key=lambda item: item[0][0],
            )[:3]
            found += [(c, site, s, km, shift) for (c, km, shift), s in ranked]
    found.sort(key=lambda item: item[0])
    return found[:per_visit]


def solve_exact(
    visits: Sequence[Visit],
    sites: Sequence[Site],
    *,
    grid_minutes: int,
    not_before: datetime,
    weights: Weights | None = None,
    time_limit_s: float = 60.0,
    per_visit: int = 12,
    hint: Plan | None = None,
    workers: int = 2,
) -> ExactResult:
    """CP-SAT's best plan within ``time_limit_s`` seconds (hinted with ``hint``)."""
    weights = weights or Weights()
    model = cp_model.CpModel()
    hinted = {p.visit_id: p for p in (hint.placements if hint else ())}
    choices: dict[int, list[tuple[cp_model.IntVar, Placement]]] = defaultdict(list)
    # One key per resource (or patient) across every site: a provider who works at two
    # sites, like a patient, is one person wherever they are.
    intervals: dict[str, list[cp_model.IntervalVar]] = defaultdict(list)
    unplaced_vars = []
    count = 0
    for visit in visits:
        options = [
            Placement(visit.id, site.id, slot, km, shift, cost)
            for cost, site, slot, km, shift in _candidates(
                visit,
                sites,
                grid_minutes=grid_minutes,
                not_before=not_before,
                weights=weights,
                per_visit=per_visit,
            )
        ]
        own = hinted.get(visit.id)
        if own is not None and not any(
            o.site_id == own.site_id and o.slot == own.slot for o in options
        ):
            options.append(own)
        for option in options:
            chosen = model.new_bool_var(f"v{visit.id}c{count}")
            count += 1
            choices[visit.id].append((chosen, option))
            for resource, spans in holds(visit.phases, option.slot).items():
                for start, end in spans:
                    intervals[resource].append(
                        model.new_optional_fixed_size_interval_var(
                            start, end - start, chosen, f"i{count}"
                        )
                    )
            if visit.patient is not None:
                begin, finish = int(option.slot.start.timestamp()), int(option.slot.end.timestamp())
                intervals[visit.patient].append(
                    model.new_optional_fixed_size_interval_var(
                        begin, finish - begin, chosen, f"p{count}"
                    )
                )
        left_out = model.new_bool_var(f"u{visit.id}")
        model.add(sum(var for var, _ in choices[visit.id]) + left_out == 1)
        unplaced_vars.append(left_out)
        if own is not None:
            for var, option in choices[visit.id]:
                model.add_hint(var, option.site_id == own.site_id and option.slot == own.slot)
            model.add_hint(left_out, False)
    for group in intervals.values():
        if len(group) > 1:
            model.add_no_overlap(group)
    model.minimize(
        sum(
            round(option.cost * SCALE) * var
            for options in choices.values()
            for var, option in options
        )
        + round(weights.unplaced * SCALE) * sum(unplaced_vars)
    )
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = time_limit_s
    solver.parameters.num_workers = workers
    solver.parameters.random_seed = 1
    status = solver.solve(model)
    name = solver.status_name(status)
    placements: list[Placement] = []
    unplaced: list[tuple[int, str]] = []
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        for visit in visits:
            picked = [o for var, o in choices[visit.id] if solver.value(var)]
            if picked:
                placements.append(picked[0])
            else:
                unplaced.append((visit.id, "no candidate left"))
    objective = sum(p.cost for p in placements) + weights.unplaced * len(unplaced)
    return ExactResult(
        plan=Plan(placements=tuple(placements), unplaced=tuple(unplaced), objective=objective),
        status=name,
        objective=objective,
        bound=solver.best_objective_bound / SCALE,
        candidates=count,
        seconds=solver.wall_time,
    )
