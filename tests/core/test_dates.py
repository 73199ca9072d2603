"""Calendar arithmetic: month ends, leap days and daylight-saving changes."""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from microneedling.core.dates import (
    Span,
    add_months,
    local_day_number,
    local_moment,
    wall_clock_problem,
)


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (date(2026, 8, 31), 6, date(2027, 2, 28)),
        (date(2027, 8, 31), 6, date(2028, 2, 29)),
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2026, 3, 31), -1, date(2026, 2, 28)),
        (date(2026, 12, 15), 1, date(2027, 1, 15)),
        (date(2026, 1, 15), -13, date(2024, 12, 15)),
        (date(2028, 2, 29), 12, date(2029, 2, 28)),
    ],
)
def test_add_months_clamps_to_the_end_of_a_shorter_month(
    start: date, months: int, expected: date
) -> None:
    assert add_months(start, months) == expected


def test_span_after_and_before_combine_months_weeks_and_days() -> None:
    span = Span(months=1, weeks=1, days=2)
    assert span.after(date(2027, 1, 31)) == date(2027, 3, 9)
    assert span.before(date(2027, 3, 31)) == date(2027, 2, 19)
    assert span.describe() == "1 month and 1 week and 2 days"


def test_day_number_counts_local_calendar_days_across_spring_forward() -> None:
    zone = "America/Chicago"  # clocks go forward on 2026-03-08
    session = datetime(2026, 3, 7, 23, 30, tzinfo=ZoneInfo(zone))
    report = datetime(2026, 3, 9, 0, 30, tzinfo=ZoneInfo(zone))
    # Only 24 hours really elapse (subtracting in UTC; same-zone subtraction is wall-clock)…
    assert report.astimezone(UTC) - session.astimezone(UTC) == timedelta(hours=24)
    assert local_day_number(session, report, zone) == 2  # …but it is day 2 locally


def test_day_number_across_fall_back_uses_the_local_date() -> None:
    zone = "Europe/Berlin"  # clocks go back on 2026-10-25
    session = datetime(2026, 10, 24, 10, 0, tzinfo=ZoneInfo(zone))
    report = datetime(2026, 10, 25, 9, 30, tzinfo=ZoneInfo(zone)).astimezone(UTC)
    assert local_day_number(session, report, zone) == 1


def test_day_number_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="aware"):
        local_day_number(datetime(2026, 1, 1), datetime(2026, 1, 2), "UTC")  # noqa: DTZ001


def test_local_time_is_kept_on_both_sides_of_a_daylight_saving_change() -> None:
    before = local_moment(date(2027, 3, 13), time(10, 0), "America/Chicago")
    after = local_moment(date(2027, 3, 15), time(10, 0), "America/Chicago")
    assert before.astimezone(UTC).hour == 16
    assert after.astimezone(UTC).hour == 15
    assert before.time() == after.time() == time(10, 0)


def _wall(text: str) -> datetime:
    """A naive local reading, as typed into a file without an offset."""
    return datetime.fromisoformat(text)


@pytest.mark.parametrize(
    ("wall", "zone"),
    [
        (_wall("2027-03-14T02:30"), "America/Chicago"),  # 02:00 -> 03:00
        (_wall("2027-03-28T02:00"), "Europe/Berlin"),  # the first skipped minute
        (_wall("2027-10-03T02:15"), "Australia/Lord_Howe"),  # a half-hour jump
    ],
)
def test_a_wall_time_the_clocks_skip_is_named_as_not_existing(wall: datetime, zone: str) -> None:
    problem = wall_clock_problem(wall, zone)
    assert problem is not None
    assert "does not exist" in problem and zone in problem and f"{wall:%H:%M}" in problem


def test_a_wall_time_the_clocks_repeat_asks_for_the_offset() -> None:
    problem = wall_clock_problem(_wall("2027-11-07T01:30"), "America/Chicago")
    assert problem is not None
    assert "happens twice" in problem and "-0500" in problem and "-0600" in problem


@pytest.mark.parametrize(
    "wall",
    [
        _wall("2027-03-14T01:59"),  # the minute before the jump
        _wall("2027-03-14T03:00"),  # the first minute after it
        _wall("2027-11-07T02:00"),  # after the repeated hour
        _wall("2027-11-07T00:59"),  # before it
        _wall("2027-07-01T10:00"),
    ],
)
def test_an_ordinary_wall_time_names_one_instant(wall: datetime) -> None:
    assert wall_clock_problem(wall, "America/Chicago") is None


def test_wall_clock_problem_refuses_an_aware_time() -> None:
    with pytest.raises(ValueError, match="naive"):
        wall_clock_problem(datetime(2027, 1, 1, tzinfo=UTC), "UTC")


ZONES = ["America/Chicago", "Europe/Berlin", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"]


@given(
    moment=st.datetimes(min_value=_wall("2026-01-01T00:00"), max_value=_wall("2030-12-31T00:00")),
    zone=st.sampled_from(ZONES),
)
def test_a_wall_time_the_clock_showed_is_never_called_skipped(moment: datetime, zone: str) -> None:
    """Any reading a clock in the zone really showed exists; if it is accepted, attaching the
    zone gives back the very instant it was read at."""
    instant = moment.replace(tzinfo=UTC)
    wall = instant.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
    problem = wall_clock_problem(wall, zone)
    assert problem is None or "happens twice" in problem
    if problem is None:
        assert wall.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC) == instant


@functools.cache
def _transitions(zone: str, year: int) -> list[datetime]:
    """The UTC hours in ``year`` at which the zone's offset changes (hour by hour)."""
    tz = ZoneInfo(zone)
    hour = datetime(year, 1, 1, tzinfo=UTC)
    found = []
    while hour.year == year:
        if (
            hour.astimezone(tz).utcoffset()
            != (hour - timedelta(hours=1)).astimezone(tz).utcoffset()
        ):
            found.append(hour)
        hour += timedelta(hours=1)
    return found


@st.composite
def _walls_near_a_change(draw: st.DrawFn) -> tuple[datetime, str]:
    """A local reading within 90 minutes of a daylight-saving change, where readings are
    skipped or repeated."""
    zone = draw(st.sampled_from(["America/Chicago", "Europe/Berlin", "Australia/Lord_Howe"]))
    change = draw(st.sampled_from(_transitions(zone, draw(st.integers(2026, 2030)))))
    before = (change - timedelta(seconds=1)).astimezone(ZoneInfo(zone)) + timedelta(seconds=1)
    wall = before.replace(tzinfo=None) + timedelta(minutes=draw(st.integers(-90, 90)))
    return wall, zone


@given(case=_walls_near_a_change())
def test_wall_clock_problem_agrees_with_counting_the_instants_that_show_it(
    case: tuple[datetime, str],
) -> None:
    """Oracle: the instants whose local reading is ``wall`` (trying both offsets of the day).
    None of them: skipped; two: repeated; one: fine."""
    wall, zone = case
    tz = ZoneInfo(zone)
    showing = {
        candidate
        for fold in (0, 1)
        if (candidate := wall.replace(tzinfo=tz, fold=fold).astimezone(UTC))
        .astimezone(tz)
        .replace(tzinfo=None)
        == wall
    }
    problem = wall_clock_problem(wall, zone)
    if not showing:
        assert problem is not None and "does not exist" in problem
    elif len(showing) == 2:
        assert problem is not None and "happens twice" in problem
    else:
        assert problem is None
