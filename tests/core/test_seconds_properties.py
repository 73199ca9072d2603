"""The whole-second fast path gives exactly what the datetime path gives (hypothesis).

Adapters that read busy seasons hand the engine free time as integers (``FreeSeconds``,
``open_seconds``) and merge with the pair operations directly; each is checked here against
the datetime functions or a set of minutes, which share none of the fast path's code.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from math import ceil, floor
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from microneedling.core.availability import (
    FreeSeconds,
    Resource,
    free_time,
    open_seconds,
    subtract_pairs,
    union_pairs,
)
from microneedling.core.availability.clock import Clock, local_instant, seconds_ceil
from microneedling.core.errors import InputError
from tests.core.test_availability_properties import Scene, engine_starts, scenes

MINUTE = 60
BASE = int(datetime(2027, 6, 8, tzinfo=UTC).timestamp())

#: Zones with the awkward cases: an hour jump each way, a half-hour jump (Lord Howe), a
#: half-hour offset (St John's, Kolkata) and a zone without daylight saving.
ZONES = [
    "America/Chicago",
    "Europe/Berlin",
    "Australia/Lord_Howe",
    "America/St_Johns",
    "Asia/Kolkata",
    "Pacific/Auckland",
]


def minutes(pairs: list[tuple[int, int]]) -> set[int]:
    return {m for a, b in pairs for m in range(a, b)}


def as_seconds(pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    return [(BASE + a * MINUTE, BASE + b * MINUTE) for a, b in pairs]


def assert_strictly_increasing(pairs: list[tuple[int, int]]) -> None:
    flat = [bound for pair in pairs for bound in pair]
    assert all(a < b for a, b in pairwise(flat)), pairs


spans = st.lists(st.tuples(st.integers(0, 300), st.integers(0, 60)), max_size=10).map(
    lambda raw: sorted((start, start + length) for start, length in raw)
)


@settings(max_examples=400, deadline=None)
@given(free=spans, busy=spans)
def test_subtract_pairs_takes_overlapping_blocks_sorted_only_by_start(
    free: list[tuple[int, int]], busy: list[tuple[int, int]]
) -> None:
    # The free side is merged (as the calendar passes it); the busy side is raw bookings.
    merged = union_pairs([free])
    result = subtract_pairs(merged, busy)
    assert_strictly_increasing(result)
    assert minutes(result) == minutes(free) - minutes(busy)


@settings(max_examples=300, deadline=None)
@given(lists=st.lists(spans, max_size=5))
def test_union_pairs_is_the_union_merged(lists: list[list[tuple[int, int]]]) -> None:
    result = union_pairs(lists)
    assert_strictly_increasing(result)
    assert minutes(result) == set().union(*(minutes(pairs) for pairs in lists))


@settings(max_examples=300, deadline=None)
@given(pairs=spans)
def test_free_seconds_reads_back_as_the_merged_intervals(pairs: list[tuple[int, int]]) -> None:
    free = FreeSeconds.of(as_seconds(pairs))
    assert_strictly_increasing(list(free.pairs))
    assert minutes([((a - BASE) // MINUTE, (b - BASE) // MINUTE) for a, b in free.pairs]) == (
        minutes(pairs)
    )
    intervals = list(free)
    assert [(i.start.timestamp(), i.end.timestamp()) for i in intervals] == list(free.pairs)
    assert all(i.start.tzinfo is UTC for i in intervals)
    assert free == tuple(intervals)


def test_free_seconds_refuses_pairs_out_of_order() -> None:
    with pytest.raises(InputError) as error:
        Resource.of_seconds(id="room:1", kind="room", free=[(BASE + 600, BASE + 900), (BASE, 60)])
    assert error.value.field == "resources.room:1.free"


def test_free_seconds_merges_touching_pairs() -> None:
    free = FreeSeconds.of([(BASE, BASE + 60), (BASE + 60, BASE + 120), (BASE + 200, BASE + 200)])
    assert free.pairs == ((BASE, BASE + 120),)


@settings(max_examples=200, deadline=None)
@given(scene=scenes(), every_provider=st.booleans())
def test_find_starts_is_the_same_from_seconds_as_from_intervals(
    scene: Scene, every_provider: bool
) -> None:
    in_seconds = [
        Resource.of_seconds(
            id=r.id,
            kind=r.kind,
            free=[(ceil(i.start.timestamp()), floor(i.end.timestamp())) for i in r.free],
        )
        for r in scene.resources
    ]
    expected = engine_starts(scene, every_provider=every_provider)
    got = engine_starts(replace(scene, resources=tuple(in_seconds)), every_provider=every_provider)
    assert got == expected


readings = st.builds(
    time,
    hour=st.integers(0, 23),
    minute=st.integers(0, 59),
    second=st.sampled_from([0, 0, 0, 30, 59]),
    microsecond=st.sampled_from([0, 0, 0, 1, 500_000]),
)
#: Dates within a few days of the clock changes in either hemisphere, and any date.
days = st.one_of(
    st.dates(date(2026, 1, 1), date(2029, 12, 31)),
    st.sampled_from(
        [date(2027, 3, 14), date(2027, 3, 28), date(2027, 4, 4), date(2027, 9, 26)]
    ).flatmap(lambda d: st.integers(-2, 2).map(lambda k: d + timedelta(days=k))),
    st.sampled_from([date(2027, 10, 3), date(2027, 10, 31), date(2027, 11, 7)]).flatmap(
        lambda d: st.integers(-2, 2).map(lambda k: d + timedelta(days=k))
    ),
)


@settings(max_examples=500, deadline=None)
@given(zone=st.sampled_from(ZONES), day=days, at=readings)
def test_clock_local_seconds_is_local_instant_in_whole_seconds(
    zone: str, day: date, at: time
) -> None:
    tz = ZoneInfo(zone)
    clock = Clock.covering(
        tz,
        int(datetime.combine(day, time(0), tzinfo=UTC).timestamp()),
        int(datetime.combine(day + timedelta(days=1), time(0), tzinfo=UTC).timestamp()),
    )
    assert clock.local_seconds(day, at) == seconds_ceil(local_instant(day, at, tz))


def test_clock_local_seconds_refuses_a_day_before_its_span() -> None:
    tz = ZoneInfo("America/Chicago")
    clock = Clock.covering(tz, BASE, BASE + 86_400)
    with pytest.raises(InputError):
        clock.local_seconds(date(1999, 1, 1), time(9))


weekly_hours = st.dictionaries(
    st.integers(0, 6),
    st.lists(
        st.tuples(st.integers(0, 23 * 4), st.integers(1, 8 * 4)).map(
            lambda pair: (
                time(pair[0] // 4, pair[0] % 4 * 15),
                time(0)
                if pair[0] + pair[1] >= 24 * 4
                else time((pair[0] + pair[1]) // 4, (pair[0] + pair[1]) % 4 * 15),
            )
        ),
        min_size=1,
        max_size=3,
    ),
    max_size=7,
)


@settings(max_examples=300, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    first=days,
    length=st.integers(0, 20),
    weekly=weekly_hours,
    closed_offsets=st.sets(st.integers(0, 20), max_size=4),
)
def test_open_seconds_is_free_time_in_whole_seconds(
    zone: str,
    first: date,
    length: int,
    weekly: dict[int, list[tuple[time, time]]],
    closed_offsets: set[int],
) -> None:
    last = first + timedelta(days=length)
    closed = [first + timedelta(days=k) for k in closed_offsets]
    expected = free_time(days=(first, last), zone=zone, weekly=weekly, closed_days=closed)
    got = open_seconds(days=(first, last), zone=zone, weekly=weekly, closed_days=closed)
    assert got == [(seconds_ceil(i.start), seconds_ceil(i.end)) for i in expected]


def test_open_seconds_keeps_local_hours_across_the_spring_change() -> None:
    got = open_seconds(
        days=(date(2027, 3, 13), date(2027, 3, 15)),
        zone="America/Chicago",
        weekly={d: [(time(10), time(12))] for d in range(7)},
    )
    local = [
        datetime.fromtimestamp(a, ZoneInfo("America/Chicago")).strftime("%d %H:%M") for a, _ in got
    ]
    assert local == ["13 10:00", "14 10:00", "15 10:00"]
    # 10:00 is 16:00 UTC before the change and 15:00 UTC after it.
    assert [datetime.fromtimestamp(a, UTC).hour for a, _ in got] == [16, 15, 15]
