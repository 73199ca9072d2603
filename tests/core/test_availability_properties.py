"""Availability invariants on generated calendars, against brute-force oracles (hypothesis).

The oracles share no code with the engine: sets of minutes for the interval operations, and
for slot starts a minute-by-minute check of every resource on every grid reading found by
converting each local wall-clock time with both folds.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from microneedling.core.availability import (
    Interval,
    Phase,
    Resource,
    Slot,
    find_starts,
    intersect,
    subtract,
    union,
)

BASE = datetime(2027, 6, 8, tzinfo=UTC)

# --- interval operations ---------------------------------------------------------------------

minute_lists = st.lists(st.tuples(st.integers(0, 300), st.integers(0, 60)), max_size=8).map(
    lambda raw: sorted((start, start + length) for start, length in raw)
)


def as_intervals(pairs: list[tuple[int, int]]) -> list[Interval]:
    return [Interval(BASE + timedelta(minutes=a), BASE + timedelta(minutes=b)) for a, b in pairs]


def minutes_of(intervals: Sequence[Interval]) -> set[int]:
    out: set[int] = set()
    for interval in intervals:
        first = int((interval.start - BASE) / timedelta(minutes=1))
        last = int((interval.end - BASE) / timedelta(minutes=1))
        out.update(range(first, last))
    return out


def assert_sorted_disjoint(intervals: Sequence[Interval]) -> None:
    for interval in intervals:
        assert interval.start < interval.end
    for before, after in itertools.pairwise(intervals):
        # Disjoint and not even touching: touching pieces would have been merged.
        assert before.end < after.start


@settings(max_examples=400, deadline=None)
@given(a=minute_lists, b=minute_lists)
def test_interval_operations_agree_with_sets_of_minutes(
    a: list[tuple[int, int]], b: list[tuple[int, int]]
) -> None:
    left, right = as_intervals(a), as_intervals(b)
    expected = {
        "intersect": minutes_of(left) & minutes_of(right),
        "subtract": minutes_of(left) - minutes_of(right),
        "union": minutes_of(left) | minutes_of(right),
    }
    for name, operation in (("intersect", intersect), ("subtract", subtract), ("union", union)):
        result = operation(left, right)
        assert_sorted_disjoint(result)
        assert minutes_of(result) == expected[name], name


# --- slot starts -----------------------------------------------------------------------------

#: Two local days around each clock change, and an ordinary pair of days.
SCENES = [
    ("America/Chicago", date(2027, 3, 13)),
    ("America/Chicago", date(2027, 11, 6)),
    ("Europe/Berlin", date(2027, 3, 27)),
    ("Europe/Berlin", date(2027, 10, 30)),
    ("America/Chicago", date(2027, 6, 8)),
    # Lord Howe Island moves its clocks by half an hour (2027-04-04 back, 2027-10-03 on).
    ("Australia/Lord_Howe", date(2027, 4, 3)),
    ("Australia/Lord_Howe", date(2027, 10, 2)),
]
HORIZON = 48 * 60  # minutes covered by a scene


@dataclass(frozen=True)
class Scene:
    zone: str
    begin: datetime  # local midnight of the first day, in UTC
    phases: tuple[Phase, ...]
    resources: tuple[Resource, ...]
    grid: int
    start: datetime
    end: datetime
    not_before: datetime
    not_after: datetime
    same_room: bool
    provider_ids: tuple[str, ...] | None
    #: The patient's other visits (unsorted, may overlap): no visit may meet one.
    patient_busy: tuple[tuple[datetime, datetime], ...] = ()


def free_lists(draw: st.DrawFn, begin: datetime) -> list[Interval]:
    """Open stretches minus a few bookings, on 5-minute boundaries, sometimes touching."""
    opens = draw(st.integers(0, 24 * 12)) * 5
    closes = draw(st.integers(opens // 5, HORIZON // 5)) * 5
    blocks = sorted(
        (start * 5, start * 5 + length * 5)
        for start, length in draw(
            st.lists(st.tuples(st.integers(0, HORIZON // 5), st.integers(1, 24)), max_size=8)
        )
    )
    pieces: list[tuple[int, int]] = []
    cursor = opens
    for a, b in blocks:
        if a > cursor:
            pieces.append((cursor, min(a, closes)))
        cursor = max(cursor, b)
    pieces.append((cursor, closes))
    pieces = [(a, b) for a, b in pieces if a < b]
    touching: list[tuple[int, int]] = []
    for a, b in pieces:
        split = draw(st.none() | st.integers(a + 1, b - 1)) if b - a > 1 else None
        touching.extend([(a, split), (split, b)] if split is not None else [(a, b)])
    return [
        Interval(begin + timedelta(minutes=a), begin + timedelta(minutes=b)) for a, b in touching
    ]


@st.composite
def scenes(draw: st.DrawFn) -> Scene:
    zone, first_day = draw(st.sampled_from(SCENES))
    begin = datetime.combine(first_day, time(0), tzinfo=ZoneInfo(zone)).astimezone(UTC)
    kinds = ("provider", "room", "device")
    phases = tuple(
        Phase(
            f"p{i}",
            draw(st.sampled_from([5, 10, 15, 30, 45])),
            tuple(k for k in kinds if draw(st.booleans())),
        )
        for i in range(draw(st.integers(1, 4)))
    )
    resources = []
    for kind, most in (("provider", 3), ("room", 3), ("device", 2)):
        for i in range(draw(st.integers(1, most))):
            resources.append(Resource(f"{kind}:{i}", kind, free_lists(draw, begin)))
    draw(st.randoms()).shuffle(resources)  # preference order is the given order

    def moment(low: int, high: int) -> datetime:
        return begin + timedelta(minutes=draw(st.integers(low, high)))

    start, not_before = moment(-60, HORIZON // 2), moment(-60, HORIZON // 2)
    end, not_after = moment(HORIZON // 3, HORIZON + 60), moment(HORIZON // 3, HORIZON + 60)
    providers = [r.id for r in resources if r.kind == "provider"]
    restrict = draw(st.none() | st.lists(st.sampled_from(providers), unique=True))
    return Scene(
        zone=zone,
        begin=begin,
        phases=phases,
        resources=tuple(resources),
        # 25, 40 and 45 do not divide an hour: they tell one offset from another.
        grid=draw(st.sampled_from([5, 10, 15, 20, 25, 30, 40, 45])),
        start=start,
        end=end,
        not_before=not_before,
        not_after=not_after,
        same_room=draw(st.booleans()),
        provider_ids=None if restrict is None else tuple(restrict),
        patient_busy=tuple(
            (begin + timedelta(minutes=at), begin + timedelta(minutes=at + length))
            for at, length in draw(
                st.lists(st.tuples(st.integers(-120, HORIZON), st.integers(1, 150)), max_size=3)
            )
        ),
    )


def grid_readings(scene: Scene) -> list[datetime]:
    """Every instant whose local reading is on the grid: each local time, both folds, kept
    only if converting back gives the same reading (so skipped readings drop out)."""
    tz = ZoneInfo(scene.zone)
    found: set[datetime] = set()
    first = scene.begin.astimezone(tz).date() - timedelta(days=1)
    for offset in range(5):
        day = first + timedelta(days=offset)
        for minute in range(0, 24 * 60, scene.grid):
            wall = datetime.combine(day, time(minute // 60, minute % 60))
            for fold in (0, 1):
                moment = wall.replace(tzinfo=tz, fold=fold).astimezone(UTC)
                if moment.astimezone(tz).replace(tzinfo=None) == wall:
                    found.add(moment)
    return sorted(found)


def free_minutes(resource: Resource) -> set[datetime]:
    out: set[datetime] = set()
    for interval in resource.free:
        moment = interval.start
        while moment < interval.end:
            out.add(moment)
            moment += timedelta(minutes=1)
    return out


def naive_starts(
    scene: Scene, *, every_provider: bool
) -> list[tuple[datetime, dict[str, dict[str, str]]]]:
    """find_starts the slow way: every reading, every phase, every resource, every minute."""
    free = {r.id: free_minutes(r) for r in scene.resources}
    phases = []
    at = timedelta(0)
    for phase in scene.phases:
        phases.append((phase, at, timedelta(minutes=phase.minutes)))
        at += timedelta(minutes=phase.minutes)

    def is_free(rid: str, start: datetime, spans: list[tuple[timedelta, timedelta]]) -> bool:
        return all(
            start + offset + timedelta(minutes=m) in free[rid]
            for offset, length in spans
            for m in range(int(length / timedelta(minutes=1)))
        )

    def ids(kind: str) -> list[str]:
        chosen = [r.id for r in scene.resources if r.kind == kind]
        if kind == "provider" and scene.provider_ids is not None:
            chosen = [rid for rid in chosen if rid in scene.provider_ids]
        return chosen

    held = {"provider", "room"} if scene.same_room else {"provider"}
    out = []
    for start in grid_readings(scene):
        if not (scene.start <= start < scene.end and scene.not_before <= start < scene.not_after):
            continue
        if any(a < start + at and start < b for a, b in scene.patient_busy):
            continue  # the visit would meet one of the patient's other visits
        picks: dict[tuple[str, str], str] = {}
        ok = True
        for kind in ("room", "device"):
            if kind in held:
                spans = [(o, n) for p, o, n in phases if kind in p.needs]
                if spans:
                    rid = next((r for r in ids(kind) if is_free(r, start, spans)), None)
                    ok = ok and rid is not None
                    for p, _, _ in phases:
                        if kind in p.needs and rid is not None:
                            picks[p.code, kind] = rid
            else:
                for p, o, n in phases:
                    if kind in p.needs:
                        rid = next((r for r in ids(kind) if is_free(r, start, [(o, n)])), None)
                        ok = ok and rid is not None
                        if rid is not None:
                            picks[p.code, kind] = rid
        if not ok:
            continue
        provider_spans = [(o, n) for p, o, n in phases if "provider" in p.needs]
        providers = [r for r in ids("provider") if is_free(r, start, provider_spans)]
        if provider_spans and not providers:
            continue
        for provider in providers if provider_spans else [None]:
            assignment = {
                p.code: {
                    kind: provider if kind == "provider" else picks[p.code, kind]
                    for kind in p.needs
                }
                for p, _, _ in phases
            }
            out.append((start, assignment))  # type: ignore[arg-type]
            if not every_provider:
                break
    return out


def engine_starts(scene: Scene, *, every_provider: bool) -> list[Slot]:
    return find_starts(
        phases=scene.phases,
        resources=scene.resources,
        start=scene.start,
        end=scene.end,
        grid_minutes=scene.grid,
        zone=scene.zone,
        not_before=scene.not_before,
        not_after=scene.not_after,
        same_room=scene.same_room,
        provider_ids=scene.provider_ids,
        every_provider=every_provider,
        patient_busy=scene.patient_busy,
    )


@settings(max_examples=250, deadline=None)
@given(scene=scenes(), every_provider=st.booleans())
def test_find_starts_agrees_with_a_minute_by_minute_oracle(
    scene: Scene, every_provider: bool
) -> None:
    slots = engine_starts(scene, every_provider=every_provider)
    got = [(s.start, {code: dict(needs) for code, needs in s.assignment.items()}) for s in slots]
    assert got == naive_starts(scene, every_provider=every_provider)


@settings(max_examples=250, deadline=None)
@given(scene=scenes())
def test_every_slot_has_every_phase_resource_free_in_the_raw_free_time(scene: Scene) -> None:
    by_id = {r.id: r for r in scene.resources}
    for slot in engine_starts(scene, every_provider=True):
        assert slot.start.tzinfo is not None
        assert scene.not_before <= slot.start < scene.not_after
        at = slot.start
        rooms, providers = set(), set()
        for phase in scene.phases:
            ends = at + timedelta(minutes=phase.minutes)
            assert set(slot.assignment[phase.code]) == set(phase.needs)
            for kind, rid in slot.assignment[phase.code].items():
                resource = by_id[rid]
                assert resource.kind == kind
                covered = union([], list(resource.free))  # merge touching pieces
                assert any(i.start <= at and ends <= i.end for i in covered), (phase, rid)
                if kind == "room":
                    rooms.add(rid)
                if kind == "provider":
                    providers.add(rid)
            at = ends
        assert at == slot.end
        assert len(providers) <= 1
        if scene.same_room:
            assert len(rooms) <= 1


#: Where a generated patient visit sits against a free slot: on its edges to the second
#: (touching is no clash, one second over is), or anywhere near it.
EDGES = st.sampled_from(["touches_end", "one_second_into_end", "touches_start", "near"])


@settings(max_examples=250, deadline=None)
@given(scene=scenes(), data=st.data())
def test_the_patients_own_visits_remove_exactly_the_starts_whose_visit_would_meet_one(
    scene: Scene, data: st.DataObject
) -> None:
    plain = engine_starts(replace(scene, patient_busy=()), every_provider=True)
    assume(plain)
    busy = []
    for _ in range(data.draw(st.integers(1, 3))):
        slot = data.draw(st.sampled_from(plain))
        length = timedelta(seconds=data.draw(st.integers(1, 150 * 60)))
        edge = data.draw(EDGES)
        if edge == "touches_end":
            busy.append((slot.end, slot.end + length))
        elif edge == "one_second_into_end":
            busy.append((slot.end - timedelta(seconds=1), slot.end + length))
        elif edge == "touches_start":
            busy.append((slot.start - length, slot.start))
        else:
            at = slot.start + timedelta(seconds=data.draw(st.integers(-5400, 5400)))
            busy.append((at, at + length))
    got = engine_starts(replace(scene, patient_busy=tuple(busy)), every_provider=True)
    assert got == [s for s in plain if not any(a < s.end and s.start < b for a, b in busy)]


CLOCK_CHANGES = [
    ("America/Chicago", date(2027, 3, 14)),
    ("America/Chicago", date(2027, 11, 7)),
    ("Europe/Berlin", date(2027, 3, 28)),
    ("Europe/Berlin", date(2027, 10, 31)),
    ("Australia/Lord_Howe", date(2027, 4, 4)),
    ("Australia/Lord_Howe", date(2027, 10, 3)),
    ("America/St_Johns", date(2027, 3, 14)),  # UTC-3:30 with daylight saving
    ("Asia/Kathmandu", date(2027, 3, 14)),  # UTC+5:45, no change: odd offset only
]


@settings(max_examples=300, deadline=None)
@given(
    place=st.sampled_from(CLOCK_CHANGES),
    grid=st.integers(1, 90),
    window=st.tuples(st.integers(-600, 1800), st.integers(0, 1800)),
)
def test_grid_starts_are_exactly_the_local_grid_readings(
    place: tuple[str, date], grid: int, window: tuple[int, int]
) -> None:
    zone, day = place
    begin = datetime.combine(day - timedelta(days=1), time(0), tzinfo=ZoneInfo(zone))
    begin = begin.astimezone(UTC)
    start = begin + timedelta(minutes=24 * 60 + window[0])
    end = start + timedelta(minutes=window[1])
    always = Resource("room:1", "room", [Interval(begin, begin + timedelta(days=4))])
    scene = Scene(
        zone=zone,
        begin=begin,
        phases=(Phase("consult", 1, ("room",)),),
        resources=(always,),
        grid=grid,
        start=start,
        end=end,
        not_before=start,
        not_after=end,
        same_room=True,
        provider_ids=None,
    )
    got = [s.start for s in engine_starts(scene, every_provider=False)]
    assert got == [moment for moment, _ in naive_starts(scene, every_provider=False)]
