"""Course booking search: windows, gaps, preferences, all-or-nothing failures."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from microneedling.core.availability import (
    Interval,
    Phase,
    Resource,
    Slot,
    find_starts,
    free_time,
)
from microneedling.core.courses import PlannedSession, chain_sessions
from microneedling.core.errors import InputError
from microneedling.core.knowledge.models import Gap
from microneedling.core.series import SeriesResult, Weights, search_series

ZONE = "America/Chicago"
TZ = ZoneInfo(ZONE)
FIRST = date(2027, 1, 5)  # a Tuesday
GAP = Gap(min=28, target=35, max=42)
PHASES = (
    Phase("check_in", 10, ("room",)),
    Phase("numbing", 30, ("room",)),
    Phase("procedure", 30, ("provider", "room", "device")),
    Phase("serum", 10, ("room",)),
)
WORKDAYS = range(6)  # Monday to Saturday


def course(count: int = 3) -> list[PlannedSession]:
    """Session 1 on FIRST, then windows of 28–42 days aiming at 35.

    With three sessions the targets are Tue 2027-01-05, Tue 02-09 (window 02-02..02-16) and
    Tue 03-16 (window 03-09..03-23, across the 03-14 clock change).
    """
    return [
        PlannedSession(1, FIRST, FIRST, FIRST),
        *chain_sessions(start_number=2, count=count - 1, anchor=FIRST, gap=GAP, as_of=None),
    ]


def days_between(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def clinic(
    *,
    providers: dict[str, Iterable[int]] | None = None,
    closed: Iterable[date] = (),
    leave: dict[str, Iterable[date]] | None = None,
    hours: tuple[time, time] = (time(9), time(17)),
    last: date = date(2027, 7, 31),
) -> list[Resource]:
    """Rooms and a device open Monday–Saturday; providers working the given weekdays."""
    providers = providers if providers is not None else {"provider:ana": WORKDAYS}
    leave = leave or {}
    closed = set(closed)

    def free(weekdays: Iterable[int], off: Iterable[date] = ()) -> list[Interval]:
        return free_time(
            days=(FIRST, last),
            zone=ZONE,
            weekly={d: [hours] for d in weekdays},
            closed_days=closed | set(off),
        )

    resources = [
        Resource(pid, "provider", free(days, leave.get(pid, ()))) for pid, days in providers.items()
    ]
    resources += [
        Resource("room:1", "room", free(WORKDAYS)),
        Resource("room:2", "room", free(WORKDAYS)),
        Resource("device:1", "device", free(WORKDAYS)),
    ]
    return resources


def search(
    resources: Sequence[Resource], sessions: Sequence[PlannedSession] | None = None, **options: Any
) -> SeriesResult:
    return search_series(
        sessions=sessions or course(),
        gap_days=(GAP.min, GAP.target, GAP.max),
        zone=ZONE,
        phases=PHASES,
        resources=resources,
        grid_minutes=15,
        **options,
    )


def local_days(result: SeriesResult) -> list[date]:
    return [slot.start.astimezone(TZ).date() for _, slot in result.choices]


def providers_of(result: SeriesResult) -> list[str | None]:
    return [slot.provider_id for _, slot in result.choices]


def test_series_books_every_session_on_its_target_when_free() -> None:
    result = search(clinic())
    assert result.ok
    assert [number for number, _ in result.choices] == [1, 2, 3]
    assert local_days(result) == [date(2027, 1, 5), date(2027, 2, 9), date(2027, 3, 16)]
    assert result.provider_id == "provider:ana"
    assert result.score is not None
    assert (result.score.provider_changes, result.score.days_from_target) == (0, 0)
    assert result.failed_session is None and result.reason is None


def test_series_keeps_local_time_across_daylight_saving() -> None:
    result = search(clinic())
    readings = [slot.start.astimezone(TZ).strftime("%H:%M") for _, slot in result.choices]
    assert readings == ["09:00", "09:00", "09:00"]
    # Session 3 (2027-03-16) is after the change: the same 09:00 is an hour earlier in UTC.
    assert [slot.start.astimezone(UTC).hour for _, slot in result.choices] == [15, 15, 14]


def test_series_skips_location_closure_days() -> None:
    result = search(clinic(closed={date(2027, 2, 9), date(2027, 2, 10)}))
    assert result.ok
    days = local_days(result)
    # The nearest open day to the 02-09 target is the day before it.
    assert days[1] == date(2027, 2, 8)
    assert days[2] == date(2027, 3, 16)
    assert result.score is not None and result.score.days_from_target == 1


def test_series_prefers_same_provider() -> None:
    # Ben never works Tuesdays, so he cannot take session 1. Ana is on leave for session 3's
    # window except its last day. Switching to Ben for session 3 would keep every session on
    # target; keeping Ana costs a week. One provider for the whole course wins.
    window = days_between(date(2027, 3, 9), date(2027, 3, 22))
    result = search(
        clinic(
            providers={"provider:ana": WORKDAYS, "provider:ben": (0, 2, 3, 4, 5)},
            leave={"provider:ana": window},
        )
    )
    assert result.ok
    assert providers_of(result) == ["provider:ana"] * 3
    assert local_days(result)[2] == date(2027, 3, 23)
    assert result.provider_id == "provider:ana"


def test_series_falls_back_to_the_fewest_provider_changes() -> None:
    # Ana is away for all of session 3's window; Ben cannot take session 1 (a Tuesday).
    window = days_between(date(2027, 3, 9), date(2027, 3, 23))
    result = search(
        clinic(
            providers={"provider:ana": WORKDAYS, "provider:ben": (0, 2, 3, 4, 5)},
            leave={"provider:ana": window},
        )
    )
    assert result.ok
    assert providers_of(result) == ["provider:ana", "provider:ana", "provider:ben"]
    assert result.provider_id is None
    assert result.score is not None and result.score.provider_changes == 1
    # Ben is off on Tuesday 03-16: Monday 03-15 is as close, and earlier.
    assert local_days(result)[2] == date(2027, 3, 15)


def test_series_prefers_the_patients_chosen_provider() -> None:
    resources = clinic(providers={"provider:ana": WORKDAYS, "provider:ben": WORKDAYS})
    assert search(resources).provider_id == "provider:ana"  # first listed on a tie
    chosen = search(resources, preferred_provider="provider:ben")
    assert chosen.provider_id == "provider:ben"
    assert chosen.score is not None and chosen.score.off_preferred_provider == 0


def test_series_fails_all_or_nothing_naming_session() -> None:
    closure = days_between(date(2027, 3, 9), date(2027, 3, 23))
    result = search(clinic(closed=closure))
    assert not result.ok
    assert result.failed_session == 3
    assert result.choices == ()
    assert result.reason == "Session 3: no free slot between 2027-03-09 and 2027-03-23."


def test_series_failure_names_a_gap_no_choice_can_keep() -> None:
    # Session 2 can only be on its last day (02-16) and session 3 only on its first (03-09):
    # 21 days apart, under the 28-day minimum.
    closed = [
        *days_between(date(2027, 2, 2), date(2027, 2, 15)),
        *days_between(date(2027, 3, 10), date(2027, 3, 23)),
    ]
    result = search(clinic(closed=closed))
    assert not result.ok
    assert result.failed_session == 3
    assert result.reason is not None and "28–42 days after a possible session 2" in result.reason


def test_series_failure_mentions_the_booking_horizon() -> None:
    result = search(clinic(), not_after=datetime(2027, 3, 1, tzinfo=UTC))
    assert not result.ok and result.failed_session == 3
    assert result.reason is not None and "open only until 2027-02-28" in result.reason


def test_series_honours_minimum_notice_on_the_first_session() -> None:
    result = search(clinic(), not_before=datetime.combine(FIRST, time(13, 5), tzinfo=TZ))
    first = result.choices[0][1]
    assert first.start.astimezone(TZ).strftime("%H:%M") == "13:15"


def test_series_moves_sessions_to_a_preferred_weekday_within_two_days() -> None:
    result = search(clinic(), preferred_weekdays=[3])  # Thursday, two days after targets
    assert [d.weekday() for d in local_days(result)] == [1, 3, 3]  # session 1 is fixed
    assert result.score is not None
    assert (result.score.off_weekday, result.score.days_from_target) == (1, 4)


def test_series_keeps_the_target_when_the_preferred_weekday_is_too_far() -> None:
    result = search(clinic(), preferred_weekdays=[5], weights=Weights(off_weekday=5))
    # Saturday is four days from a Tuesday target: 8 points, more than missing the weekday.
    assert local_days(result)[1:] == [date(2027, 2, 9), date(2027, 3, 16)]


def test_series_honours_preferred_times_of_day() -> None:
    result = search(clinic(), preferred_times=[("14:00", "16:00")])
    readings = [slot.start.astimezone(TZ).strftime("%H:%M") for _, slot in result.choices]
    assert readings == ["14:00", "14:00", "14:00"]
    assert result.score is not None and result.score.off_time == 0


def test_windows_rederive_from_the_chosen_dates() -> None:
    # Session 2 can only be on 02-16, so session 3 must be 03-16..03-30 counted from it; the
    # planned window 03-09..03-23 is closed from 03-16, so only the re-derived window works.
    closed = [
        *days_between(date(2027, 2, 2), date(2027, 2, 15)),
        *days_between(date(2027, 3, 16), date(2027, 3, 23)),
    ]
    resources = clinic(closed=closed)
    strict = search(resources)
    assert not strict.ok and strict.failed_session == 3
    relaxed = search(resources, follow_plan_windows=False)
    assert relaxed.ok
    days = local_days(relaxed)
    assert days[1] == date(2027, 2, 16)
    assert days[2] == date(2027, 3, 24)
    assert 28 <= (days[2] - days[1]).days <= 42


def test_sessions_never_share_a_day_even_when_the_protocol_allows_no_gap() -> None:
    day = date(2027, 6, 7)
    sessions = [PlannedSession(n, day, day, day + timedelta(days=3)) for n in (1, 2, 3)]
    result = search_series(
        sessions=sessions,
        gap_days=(0, 3),
        zone=ZONE,
        phases=PHASES,
        resources=clinic(),
    )
    assert result.ok
    days = local_days(result)
    assert days == [day, day + timedelta(days=1), day + timedelta(days=2)]


def test_precomputed_slots_give_the_same_series_as_the_engine() -> None:
    resources = clinic(
        providers={"provider:ana": WORKDAYS, "provider:ben": (0, 2, 3, 4, 5)},
        closed={date(2027, 2, 9)},
    )
    begin = datetime.combine(FIRST, time(0), tzinfo=TZ)
    end = datetime.combine(date(2027, 3, 24), time(0), tzinfo=TZ)
    every = find_starts(
        phases=PHASES,
        resources=resources,
        start=begin,
        end=end,
        grid_minutes=15,
        zone=ZONE,
        not_before=begin,
        not_after=end,
        every_provider=True,
    )
    by_day: dict[date, list[Slot]] = {}
    for slot in every:
        by_day.setdefault(slot.start.astimezone(TZ).date(), []).append(slot)
    asked: list[tuple[date, date]] = []

    def source(first: date, last: date) -> list[Slot]:
        asked.append((first, last))
        return [s for d, slots in by_day.items() if first <= d <= last for s in slots]

    options: dict[str, Any] = {
        "sessions": course(),
        "gap_days": (28, 42),
        "zone": ZONE,
        "preferred_times": [(time(10), time(12))],
        "preferred_weekdays": [0, 2],
    }
    engine = search_series(phases=PHASES, resources=resources, **options)
    from_mapping = search_series(slots=by_day, **options)
    from_callable = search_series(slots=source, **options)
    assert engine.ok
    assert engine == from_mapping == from_callable
    # Only the windows are asked for, not the months between them.
    assert asked == [
        (date(2027, 1, 5), date(2027, 1, 5)),
        (date(2027, 2, 2), date(2027, 2, 16)),
        (date(2027, 3, 9), date(2027, 3, 23)),
    ]


def test_course_of_six_sessions_finds_a_slot_for_each() -> None:
    sessions = course(6)
    result = search(clinic(), sessions=sessions)
    assert result.ok
    days = local_days(result)
    assert days == [s.target for s in sessions]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"slots": {}}, "slots"),
        ({"phases": None}, "slots"),
        ({"not_before": datetime(2027, 1, 1)}, "not_before"),  # noqa: DTZ001 - on purpose
        ({"preferred_weekdays": [7]}, "preferred_weekdays"),
        ({"preferred_times": [("25:00", "26:00")]}, "preferred_times.0"),
        ({"preferred_times": [("14:00", "13:00")]}, "preferred_times.0"),
        ({"gap_days": (5, 3)}, "gap_days"),
        ({"sessions": []}, "sessions"),
        ({"sessions": [course()[1], course()[0]]}, "sessions.1"),
        ({"zone": "Nowhere/Special"}, "zone"),
    ],
)
def test_series_refuses_malformed_requests(changes: dict[str, Any], field: str) -> None:
    request: dict[str, Any] = {
        "sessions": course(),
        "gap_days": (28, 42),
        "zone": ZONE,
        "phases": PHASES,
        "resources": clinic(),
    }
    request.update(changes)
    with pytest.raises(InputError) as caught:
        search_series(**request)
    assert caught.value.field == field
