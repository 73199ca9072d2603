"""Calendar arithmetic: month ends, leap days and daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from microneedling.core.dates import Span, add_months, local_day_number, local_moment


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
