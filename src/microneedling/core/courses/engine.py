"""Course planning: indications, a first date and a skin type in; a course with windows out.

Each session's window is counted from the previous session's target day, so booking every
session on its target keeps every gap inside the protocol's window. Re-planning counts from
the sessions that really happened: the next window opens from the last real session, and if
that window has already closed the course must restart (collagen induction depends on the
rhythm of the series).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import pairwise

from microneedling.core.courses.plan import (
    CoursePlan,
    CourseStatus,
    DepthMm,
    MaintenancePlan,
    PlannedSession,
    TimelineItem,
)
from microneedling.core.errors import InputError
from microneedling.core.knowledge import Pack
from microneedling.core.knowledge.models import Gap, Indication, Policy, Protocol
from microneedling.core.screening.intake import EARLIEST_DATE, LATEST_DATE

#: Depth pens move in quarter-millimetre steps.
_DEPTH_STEP = 0.25


@dataclass(frozen=True)
class _Combined:
    protocols: tuple[Protocol, ...]
    sessions: int
    gap: Gap
    maintenance: tuple[int, int]
    reasons: tuple[str, ...]


def plan_course(
    *,
    pack: Pack,
    indications: Sequence[str],
    first_session: date,
    fitzpatrick: int | None = None,
    areas: Sequence[str] | None = None,
    done: Sequence[date] = (),
    as_of: date | None = None,
    policy: Policy | None = None,
) -> CoursePlan:
    """Plan a course, or re-plan it from the sessions already ``done``.

    ``as_of`` is today (the engine has no clock): no remaining session is planned before it.
    """
    _check_day("first_session", first_session)
    for index, day in enumerate(done):
        _check_day(f"done.{index}", day)
    if as_of is not None:
        _check_day("as_of", as_of)
    chosen = _indications(pack, indications)
    if fitzpatrick is not None and not 1 <= fitzpatrick <= 6:
        raise InputError("fitzpatrick", "must be between 1 and 6")
    combined = _combine(pack, chosen, fitzpatrick, policy)
    done_days = tuple(sorted(done))
    seen: set[date] = set()
    for index, day in enumerate(done):
        if day in seen:
            # One visit is one session: a day twice would count a session that never was.
            raise InputError(f"done.{index}", f"{day.isoformat()} is given twice")
        seen.add(day)
    if done_days and done_days[0] < first_session:
        raise InputError("done", "a done session is before the first session")
    if as_of is not None and done_days and done_days[-1] > as_of:
        raise InputError("done", f"{done_days[-1].isoformat()} is in the future")
    if as_of is not None and not done_days and first_session < as_of:
        raise InputError("first_session", f"{first_session.isoformat()} is in the past")

    reasons = list(combined.reasons)
    status, sessions = _schedule(combined, first_session, done_days, as_of, reasons)
    last = sessions[-1].target if sessions else done_days[-1]
    every_min, every_max = combined.maintenance
    depth = _depths(pack, chosen, areas, fitzpatrick, reasons)
    timeline = _timeline(pack, sessions[0].target if sessions else done_days[-1], last, policy)
    sources = _sources(pack, chosen, combined, depth, timeline)
    return CoursePlan(
        indications=tuple(i.code for i in chosen),
        status=status,
        protocols=tuple(p.id for p in combined.protocols),
        sessions_total=combined.sessions,
        done=done_days,
        sessions=tuple(sessions),
        maintenance=MaintenancePlan(
            first_due=last + timedelta(days=every_min),
            every_days_min=every_min,
            every_days_max=every_max,
        ),
        gap_days=(combined.gap.min, combined.gap.target, combined.gap.max),
        depth_mm=depth,
        timeline=timeline,
        reasons=tuple(reasons),
        sources=sources,
    )


def chain_sessions(
    *, start_number: int, count: int, anchor: date, gap: Gap, as_of: date | None
) -> list[PlannedSession]:
    """Sessions ``start_number`` onward, each window counted from the previous target.

    ``anchor`` is the last real (or fixed first) session; no target or earliest day falls
    before ``as_of``.
    """
    _check_day("anchor", anchor)
    if as_of is not None:
        _check_day("as_of", as_of)
    sessions, previous = [], anchor
    for number in range(start_number, start_number + count):
        earliest = previous + timedelta(days=gap.min)
        target = previous + timedelta(days=gap.target)
        latest = previous + timedelta(days=gap.max)
        if as_of is not None:
            earliest, target = max(earliest, as_of), max(target, as_of)
        sessions.append(PlannedSession(number, earliest, target, latest))
        previous = target
    return sessions


def _check_day(field: str, day: date) -> None:
    """Refuse a day outside the intake's range, naming ``field``.

    The plan reaches months past its dates (windows, maintenance, the results timeline); a
    day near the calendar's end (9999-12-31) would overflow that arithmetic, and no real
    course is planned outside the range an intake accepts anyway.
    """
    if not EARLIEST_DATE <= day <= LATEST_DATE:
        raise InputError(
            field,
            f"{day.isoformat()} is not between {EARLIEST_DATE.isoformat()} "
            f"and {LATEST_DATE.isoformat()}",
        )


def _schedule(
    combined: _Combined,
    first: date,
    done: tuple[date, ...],
    as_of: date | None,
    reasons: list[str],
) -> tuple[CourseStatus, list[PlannedSession]]:
    gap, total = combined.gap, combined.sessions
    if not done:
        opening = PlannedSession(1, first, first, first)
        rest = chain_sessions(start_number=2, count=total - 1, anchor=first, gap=gap, as_of=None)
        return "planned", [opening, *rest]

    for number, (before, after) in enumerate(pairwise(done), start=2):
        spacing = (after - before).days
        if spacing > gap.max:
            reasons.append(
                f"Session {number} came {spacing} days after the one before; the window closes "
                f"after {gap.max} days, so the series restarts."
            )
            return "restart", _restart(combined, after if as_of is None else as_of)
        if spacing < gap.min:
            reasons.append(
                f"Session {number} came only {spacing} days after the one before "
                f"(at least {gap.min} is planned); the course continues from it."
            )
    if len(done) >= total:
        reasons.append(f"All {total} sessions are done; maintenance follows.")
        return "complete", []

    last = done[-1]
    if as_of is not None and as_of > last + timedelta(days=gap.max):
        reasons.append(
            f"The window for session {len(done) + 1} closed on "
            f"{(last + timedelta(days=gap.max)).isoformat()}; the series restarts."
        )
        return "restart", _restart(combined, as_of)
    rest = chain_sessions(
        start_number=len(done) + 1, count=total - len(done), anchor=last, gap=gap, as_of=as_of
    )
    return "on_track", rest


def _restart(combined: _Combined, start: date) -> list[PlannedSession]:
    opening = PlannedSession(1, start, start, start)
    return [
        opening,
        *chain_sessions(
            start_number=2, count=combined.sessions - 1, anchor=start, gap=combined.gap, as_of=None
        ),
    ]


def _indications(pack: Pack, codes: Sequence[str]) -> list[Indication]:
    if not codes:
        raise InputError("indication", "at least one is required")
    chosen: list[Indication] = []
    for index, code in enumerate(codes):
        if code not in pack.indications:
            raise InputError(f"indication.{index}", f"unknown indication {code!r}")
        if pack.indications[code] not in chosen:
            chosen.append(pack.indications[code])
    return chosen


def _protocol(pack: Pack, indication: Indication, policy: Policy | None) -> Protocol:
    """The clinic's protocol for the concern, else the one its chosen position on a dispute
    names for it (seed-000's longer course for acne scars...), else the default."""
    wanted = policy.protocols.get(indication.code) if policy else None
    if wanted is None and policy is not None:
        own = {p.id for p in indication.protocols}
        for dispute_id in policy.positions:
            if dispute_id not in pack.disputes:
                continue
            named = pack.position(dispute_id, policy).params.get("protocols", ())
            wanted = next((p for p in named if p in own), None)
            if wanted is not None:
                break
    if wanted is None:
        return indication.default_protocol
    for protocol in indication.protocols:
        if protocol.id == wanted:
            return protocol
    raise InputError("policy.protocols", f"{indication.code} has no protocol {wanted!r}")


def _sessions_for(protocol: Protocol, fitzpatrick: int | None) -> int:
    for adjustment in protocol.skin_type:
        if fitzpatrick in adjustment.fitzpatrick:
            return adjustment.sessions
    return protocol.sessions


def _combine(
    pack: Pack, chosen: list[Indication], fitzpatrick: int | None, policy: Policy | None
) -> _Combined:
    """Merge the indications' protocols: the most demanding one leads, reasons are kept."""
    protocols = [_protocol(pack, indication, policy) for indication in chosen]
    counts = [_sessions_for(p, fitzpatrick) for p in protocols]
    reasons = [
        f"{ind.name}: {count} sessions {p.gap.min}–{p.gap.max} days apart ({p.id})."
        for ind, p, count in zip(chosen, protocols, counts, strict=True)
    ]
    # Most demanding: most sessions, then the longest window to keep open.
    lead_index = max(range(len(protocols)), key=lambda i: (counts[i], protocols[i].gap.max))
    lead = protocols[lead_index]
    low = max(p.gap.min for p in protocols)
    high = min(p.gap.max for p in protocols)
    if low <= high:
        gap = Gap(min=low, target=min(max(lead.gap.target, low), high), max=high)
    else:
        gap = lead.gap
        reasons.append(f"The protocols' windows do not overlap; {lead.id} sets the spacing.")
    if len(protocols) > 1:
        reasons.append(
            f"Combined course: {counts[lead_index]} sessions led by {lead.id}, "
            f"{gap.min}–{gap.max} days apart."
        )
    maintenance = min((p.maintenance for p in protocols), key=lambda m: m.every_days_max)
    return _Combined(
        protocols=tuple(protocols),
        sessions=counts[lead_index],
        gap=gap,
        maintenance=(maintenance.every_days_min, maintenance.every_days_max),
        reasons=tuple(reasons),
    )


def _depths(
    pack: Pack,
    chosen: list[Indication],
    areas: Sequence[str] | None,
    fitzpatrick: int | None,
    reasons: list[str],
) -> dict[str, DepthMm]:
    wanted = list(areas) if areas else _default_areas(chosen)
    conservative = _conservative_params(pack, fitzpatrick)
    depths: dict[str, DepthMm] = {}
    for index, area in enumerate(wanted):
        if area not in pack.areas:
            raise InputError(f"area.{index}", f"unknown area {area!r}")
        lineage = pack.area_lineage(area)
        treated = [i for i in chosen if set(lineage).intersection(i.areas)]
        if not treated:
            names = ", ".join(i.name for i in chosen)
            raise InputError(f"area.{index}", f"{area!r} is not treated for {names}")
        cap = min(pack.areas[a].depth_max_mm for a in lineage)
        low = min(i.depth.min for i in treated)
        high = min(max(i.depth.max for i in treated), cap)
        if conservative is not None:
            limit, share = conservative
            high = min(high, limit, low + (high - low) * share)
        high = _floor_step(high)
        depths[area] = DepthMm(min=min(low, high), max=high)
    if conservative is not None:
        reasons.append("Skin type IV–VI: conservative depth (lower part of the range).")
    return depths


def _default_areas(chosen: list[Indication]) -> list[str]:
    common = [a for a in chosen[0].areas if all(a in i.areas for i in chosen)]
    return [common[0]] if common else [chosen[0].areas[0]]


def _conservative_params(pack: Pack, fitzpatrick: int | None) -> tuple[float, float] | None:
    """The conservative-depth numbers if the skin type triggers them (from the pack)."""
    if fitzpatrick is None:
        return None
    for rule in pack.data.rules:
        if rule.when == "fitzpatrick" and fitzpatrick in rule.fitzpatrick:
            for precaution_id in rule.precautions:
                precaution = pack.precautions[precaution_id]
                if precaution.effect == "conservative_depth":
                    params = precaution.params
                    return params.get("depth_cap_mm", 3.0), params.get("keep_share", 1.0)
    return None


def _floor_step(value: float) -> float:
    return math.floor(round(value / _DEPTH_STEP, 6)) * _DEPTH_STEP


def _timeline(
    pack: Pack, session_day: date, series_end: date, policy: Policy | None
) -> tuple[TimelineItem, ...]:
    items = [
        TimelineItem(
            kind="recovery",
            anchor="each_session",
            from_day=stage.from_day,
            to_day=stage.to_day,
            from_date=session_day + timedelta(days=stage.from_day),
            to_date=session_day + timedelta(days=stage.to_day),
            message=stage.message,
            sources=stage.sources,
        )
        for stage in pack.data.recovery
    ]
    for milestone in pack.result_items(policy):
        anchor_day = session_day if milestone.anchor == "each_session" else series_end
        items.append(
            TimelineItem(
                kind="result",
                anchor=milestone.anchor,
                from_day=milestone.from_day,
                to_day=milestone.to_day,
                from_date=anchor_day + timedelta(days=milestone.from_day),
                to_date=None
                if milestone.to_day is None
                else anchor_day + timedelta(days=milestone.to_day),
                message=milestone.message,
                sources=milestone.sources,
            )
        )
    return tuple(items)


def _sources(
    pack: Pack,
    chosen: list[Indication],
    combined: _Combined,
    depth: dict[str, DepthMm],
    timeline: tuple[TimelineItem, ...],
) -> tuple[str, ...]:
    cited: dict[str, None] = {}
    for indication in chosen:
        cited.update(dict.fromkeys(indication.sources))
    for protocol in combined.protocols:
        cited.update(dict.fromkeys(protocol.sources))
    for area in depth:
        cited.update(dict.fromkeys(pack.areas[area].sources))
    for item in timeline:
        cited.update(dict.fromkeys(item.sources))
    return tuple(cited)
