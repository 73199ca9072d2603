"""Calendar arithmetic the engines share: durations in days, weeks or calendar months.

Waiting periods in the sources are stated in months ("six months after isotretinoin") as well
as days, and a month is not a fixed number of days: counting it as 30 days would let a patient
book a day or two early. Months are therefore added on the calendar, clamping to the last day
of a shorter month (31 August + 6 months = 28 or 29 February).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def add_months(day: date, months: int) -> date:
    """Return ``day`` moved by a whole number of calendar months, clamped to the month's end."""
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


@dataclass(frozen=True, slots=True)
class Span:
    """A length of time as the sources state it: whole days, weeks and calendar months."""

    days: int = 0
    weeks: int = 0
    months: int = 0

    def after(self, day: date) -> date:
        """The date this span after ``day`` (months first, then weeks and days)."""
        return add_months(day, self.months) + timedelta(days=self.days + 7 * self.weeks)

    def before(self, day: date) -> date:
        """The date this span before ``day``."""
        return add_months(day, -self.months) - timedelta(days=self.days + 7 * self.weeks)

    def describe(self) -> str:
        """Plain words for messages: ``6 months``, ``2 weeks``, ``3 days``."""
        parts = []
        for amount, unit in ((self.months, "month"), (self.weeks, "week"), (self.days, "day")):
            if amount:
                parts.append(f"{amount} {unit}{'' if amount == 1 else 's'}")
        return " and ".join(parts) or "no time"


def local_day_number(start: datetime, moment: datetime, zone: str) -> int:
    """Which day after ``start`` the ``moment`` falls on, counted on the local calendar.

    Day 0 is the day of the session. Counting calendar days in the clinic's zone (not elapsed
    hours) keeps "day 2" meaning the second morning after treatment across a daylight-saving
    change, when a calendar day can last 23 or 25 hours.
    """
    if start.tzinfo is None or moment.tzinfo is None:
        raise ValueError("datetimes must be time-zone aware")
    tz = ZoneInfo(zone)
    return (moment.astimezone(tz).date() - start.astimezone(tz).date()).days


def local_moment(day: date, at: time, zone: str) -> datetime:
    """The aware datetime of a local wall-clock time on ``day`` in ``zone``.

    A booked 10:00 stays 10:00 local on both sides of a daylight-saving change because the
    offset is looked up for that date, not carried over from another one.
    """
    return datetime.combine(day, at, tzinfo=ZoneInfo(zone))


def wall_clock_problem(wall: datetime, zone: str) -> str | None:
    """Why the naive local time ``wall`` names no single instant in ``zone``; None if it
    names exactly one.

    A reading the clocks skip when they go forward never happens; one they pass twice when
    they go back happens twice. Python quietly picks an instant for both (the offset from
    before the change), so a time typed by a person, without an offset, must be checked
    before it is booked: otherwise a visit lands an hour from where it was meant to be.
    """
    if wall.tzinfo is not None:
        raise ValueError("wall must be a naive local time")
    tz = ZoneInfo(zone)
    earlier, later = wall.replace(tzinfo=tz, fold=0), wall.replace(tzinfo=tz, fold=1)
    if earlier.utcoffset() == later.utcoffset():
        return None
    shown = f"{wall:%H:%M} on {wall.date().isoformat()} in {zone}"
    if earlier.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != wall:
        return f"{shown} does not exist: the clocks go forward then; give a time that exists"
    return (
        f"{shown} happens twice: the clocks go back then; add the offset meant "
        f"({earlier:%z} or {later:%z})"
    )
