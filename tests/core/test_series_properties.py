"""Course search invariants on generated clinics, against an exhaustive oracle (hypothesis).

The oracle takes every slot from ``find_starts(every_provider=True)``, enumerates every
combination of (day, provider) per session, and keeps the best by the documented order:
provider changes, sessions off the preferred provider, then points.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import pairwise, product
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from microneedling.core.availability import (
    Interval,
    Phase,
    Resource,
    Slot,
    find_starts,
    free_time,
    subtract,
)
from microneedling.core.courses import PlannedSession, chain_sessions
from microneedling.core.knowledge.models import Gap
from microneedling.core.series import SeriesResult, Weights, search_days, search_series

PHASES = (
    Phase("numbing", 30, ("room",)),
    Phase("procedure", 30, ("provider", "room", "device")),
)
FIRSTS = [
    ("America/Chicago", date(2027, 3, 9)),  # windows cross 2027-03-14
    ("America/Chicago", date(2027, 11, 2)),  # and 2027-11-07
    ("Europe/Berlin", date(2027, 3, 24)),
    ("Europe/Berlin", date(2027, 6, 1)),
]
WEIGHTS = Weights()


@dataclass(frozen=True)
class Case:
    zone: str
    sessions: list[PlannedSession]
    gap: tuple[int, int]
    resources: list[Resource]
    follow: bool
    weekdays: tuple[int, ...]
    times: tuple[tuple[time, time], ...]
    preferred: str | None
    last: date
    #: The patient's other visits: no session may meet one.
    patient_busy: tuple[tuple[datetime, datetime], ...] = ()


@st.composite
def cases(draw: st.DrawFn) -> Case:
    zone, first = draw(st.sampled_from(FIRSTS))
    low = draw(st.integers(1, 4))
    high = low + draw(st.integers(0, 3))
    target = draw(st.integers(low, high))
    count = draw(st.integers(1, 3))
    first_window = draw(st.integers(1, 4))
    sessions = [
        PlannedSession(1, first, first, first + timedelta(days=first_window)),
        *chain_sessions(
            start_number=2,
            count=count - 1,
            anchor=first,
            gap=Gap(min=low, target=target, max=high),
            as_of=None,
        ),
    ]
    last = first + timedelta(days=first_window + (count - 1) * high + 1)
    tz = ZoneInfo(zone)

    def calendar(weekdays: list[int]) -> list[Interval]:
        closed = draw(st.sets(st.sampled_from(range((last - first).days + 1)), max_size=3))
        free = free_time(
            days=(first, last),
            zone=zone,
            weekly={d: [(time(9), time(12))] for d in weekdays},
            closed_days={first + timedelta(days=n) for n in closed},
        )
        busy_hours = draw(
            st.lists(st.tuples(st.integers(0, (last - first).days), st.integers(9, 11)), max_size=4)
        )
        busy = sorted(
            Interval(
                datetime.combine(first + timedelta(days=d), time(h), tzinfo=tz),
                datetime.combine(first + timedelta(days=d), time(h, 45), tzinfo=tz),
            )
            for d, h in busy_hours
        )
        return subtract(free, busy)

    everyday = list(range(7))
    resources = [
        Resource(
            f"provider:{name}",
            "provider",
            calendar(draw(st.lists(st.sampled_from(everyday), min_size=3, unique=True))),
        )
        for name in ("ana", "ben", "cy")[: draw(st.integers(1, 3))]
    ]
    resources.append(Resource("room:1", "room", calendar(everyday)))
    resources.append(Resource("device:1", "device", calendar(everyday)))
    return Case(
        zone=zone,
        sessions=sessions,
        gap=(low, high),
        resources=resources,
        follow=draw(st.booleans()),
        weekdays=tuple(draw(st.sets(st.integers(0, 6), max_size=2))),
        times=draw(st.sampled_from([(), ((time(10), time(11)),)])),
        preferred=draw(st.none() | st.sampled_from(["provider:ana", "provider:ben"])),
        last=last,
        patient_busy=tuple(
            (at, at + timedelta(minutes=length))
            for at, length in draw(
                st.lists(
                    st.tuples(
                        st.builds(
                            lambda day, minute: (
                                datetime.combine(first + timedelta(days=day), time(9), tzinfo=tz)
                                + timedelta(minutes=minute)
                            ),
                            st.integers(0, (last - first).days),
                            st.integers(-60, 180),
                        ),
                        st.integers(1, 120),
                    ),
                    max_size=3,
                )
            )
        ),
    )


def run(case: Case) -> SeriesResult:
    return search_series(
        sessions=case.sessions,
        gap_days=case.gap,
        zone=case.zone,
        phases=PHASES,
        resources=case.resources,
        grid_minutes=30,
        follow_plan_windows=case.follow,
        preferred_weekdays=case.weekdays,
        preferred_times=case.times,
        preferred_provider=case.preferred,
        patient_busy=case.patient_busy,
    )


def all_slots(case: Case) -> list[Slot]:
    """Every slot a session could take: free, and clear of the patient's other visits."""
    return [
        slot
        for slot in free_slots(case)
        if not any(a < slot.end and slot.start < b for a, b in case.patient_busy)
    ]


def free_slots(case: Case) -> list[Slot]:
    """Every slot free in the diary, whatever else the patient has booked."""
    tz = ZoneInfo(case.zone)
    begin = datetime.combine(case.sessions[0].earliest, time(0), tzinfo=tz)
    end = datetime.combine(case.last, time(0), tzinfo=tz)
    return find_starts(
        phases=PHASES,
        resources=case.resources,
        start=begin,
        end=end,
        grid_minutes=30,
        zone=case.zone,
        not_before=begin,
        not_after=end,
        every_provider=True,
    )


def oracle(case: Case) -> tuple[tuple[int, int, int] | None, int | None]:
    """The best (changes, off-preferred, points) over every combination, and, when there is
    none, the first session at which no combination of the sessions so far works."""
    tz = ZoneInfo(case.zone)
    options: dict[tuple[date, str], bool] = {}  # (day, provider) -> has a preferred time
    for slot in all_slots(case):
        local = slot.start.astimezone(tz)
        in_time = not case.times or any(a <= local.time() < b for a, b in case.times)
        key = (local.date(), slot.provider_id or "")
        options[key] = options.get(key, False) or in_time
    low, high = max(case.gap[0], 1), case.gap[1]

    def allowed(index: int, day: date, before: date | None) -> bool:
        session = case.sessions[index]
        inside = session.earliest <= day <= session.latest
        if before is None:
            return inside
        gap_ok = low <= (day - before).days <= high
        return gap_ok and (inside or not case.follow)

    best: tuple[int, int, int] | None = None
    for length in range(1, len(case.sessions) + 1):
        found = False
        for combo in product(options, repeat=length):
            days = [d for d, _ in combo]
            if not all(allowed(i, d, days[i - 1] if i else None) for i, d in enumerate(days)):
                continue
            found = True
            if length < len(case.sessions):
                break
            providers = [p for _, p in combo]
            changes = sum(a != b for a, b in pairwise(providers))
            off = sum(case.preferred is not None and p != case.preferred for p in providers)
            points = sum(
                WEIGHTS.day_from_target * abs((d - s.target).days)
                + WEIGHTS.off_weekday * (bool(case.weekdays) and d.weekday() not in case.weekdays)
                + WEIGHTS.off_time * (not options[d, p])
                for (d, p), s in zip(combo, case.sessions, strict=True)
            )
            if best is None or (changes, off, points) < best:
                best = (changes, off, points)
        if not found:
            return None, case.sessions[length - 1].number
    return best, None


@settings(max_examples=150, deadline=None)
@given(case=cases())
def test_series_search_finds_the_best_series_or_names_the_first_impossible_session(
    case: Case,
) -> None:
    result = run(case)
    best, failed = oracle(case)
    assert result.ok == (best is not None)
    if not result.ok:
        assert result.choices == ()
        assert result.failed_session == failed
        assert result.reason and f"Session {failed}:" in result.reason
        return
    assert result.score is not None
    score = result.score
    assert (score.provider_changes, score.off_preferred_provider, score.points) == best


@settings(max_examples=150, deadline=None)
@given(case=cases())
def test_series_keeps_gaps_windows_and_real_slots(case: Case) -> None:
    result = run(case)
    if not result.ok:
        return
    tz = ZoneInfo(case.zone)
    offered = {(s.start, s.provider_id) for s in all_slots(case)}
    numbers = [number for number, _ in result.choices]
    assert numbers == [s.number for s in case.sessions]
    days = [slot.start.astimezone(tz).date() for _, slot in result.choices]
    first = case.sessions[0]
    assert first.earliest <= days[0] <= first.latest
    for session, day in zip(case.sessions[1:], days[1:], strict=True):
        if case.follow:
            assert session.earliest <= day <= session.latest
    for before, after in pairwise(days):
        assert max(case.gap[0], 1) <= (after - before).days <= case.gap[1]
    slots = [slot for _, slot in result.choices]
    for before_slot, after_slot in pairwise(slots):
        assert before_slot.end <= after_slot.start  # sessions never overlap
    for slot in slots:
        assert (slot.start, slot.provider_id) in offered
    providers = {slot.provider_id for slot in slots}
    assert result.provider_id == (providers.pop() if len(providers) == 1 else None)


@settings(max_examples=150, deadline=None)
@given(case=cases())
def test_searching_caller_given_slots_plans_around_the_patient_exactly_as_the_engine_does(
    case: Case,
) -> None:
    tz = ZoneInfo(case.zone)
    by_day: dict[date, list[Slot]] = {}
    for slot in free_slots(case):
        by_day.setdefault(slot.start.astimezone(tz).date(), []).append(slot)
    from_slots = search_series(
        sessions=case.sessions,
        gap_days=case.gap,
        zone=case.zone,
        slots=by_day,
        provider_ids=[r.id for r in case.resources if r.kind == "provider"],
        follow_plan_windows=case.follow,
        preferred_weekdays=case.weekdays,
        preferred_times=case.times,
        preferred_provider=case.preferred,
        patient_busy=case.patient_busy,
    )
    assert from_slots == run(case)


@settings(max_examples=150, deadline=None)
@given(
    first=st.dates(date(2027, 1, 1), date(2027, 12, 31)),
    count=st.integers(1, 6),
    gap=st.tuples(st.integers(7, 30), st.integers(0, 20)),
    follow=st.booleans(),
)
def test_search_days_cover_every_day_a_session_may_take(
    first: date, count: int, gap: tuple[int, int], follow: bool
) -> None:
    low, spread = gap
    sessions = [PlannedSession(1, first, first, first + timedelta(days=6))]
    for number in range(2, count + 1):
        anchor = sessions[-1].target
        sessions.append(
            PlannedSession(
                number,
                anchor + timedelta(days=low),
                anchor + timedelta(days=low + spread // 2),
                anchor + timedelta(days=low + spread),
            )
        )
    days = search_days(sessions=sessions, gap_days=(low, low + spread), follow_plan_windows=follow)
    for (_, end), (start, _) in pairwise(days):
        assert end + timedelta(days=1) < start  # merged: separate stretches only
    covered = {d for a, b in days for d in (a + timedelta(days=k) for k in range((b - a).days + 1))}
    # The opening session may take any day of its window, and with the plan's windows each
    # later one any day of its own; without them, any day the gaps reach.
    assert {first + timedelta(days=k) for k in range(7)} <= covered
    farthest = first + timedelta(days=6 + (count - 1) * (low + spread))
    if follow:
        for s in sessions[1:]:
            reach = {
                s.earliest + timedelta(days=k) for k in range((s.latest - s.earliest).days + 1)
            }
            assert reach & covered
        assert max(b for _, b in days) <= sessions[-1].latest
    else:
        assert max(b for _, b in days) == farthest
