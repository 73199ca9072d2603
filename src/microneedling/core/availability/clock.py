"""Wall-clock arithmetic in a location's zone: from local hours to instants and back.

Hours are stated in local wall-clock time ("09:00–17:00") and mean that on every date,
whatever the UTC offset is that day. Two local readings need a rule:

* **Nonexistent** (the hour skipped when clocks go forward, 02:00–02:59 in Chicago on
  2027-03-14): a boundary at 02:30 becomes the moment the clock jumps (03:00 daylight
  time), i.e. the first instant at which the clock reads 02:30 *or later*. Hours
  "01:00–02:30" therefore end at the jump and "02:30–05:00" open at it.
* **Ambiguous** (the hour repeated when clocks go back, 01:00–01:59 in Chicago on
  2027-11-07): a boundary at 01:30 is the first time the clock reads 01:30 (still daylight
  time), by the same "first instant reading it" rule.

Grid starts are instants whose local reading is on the grid counted from local midnight:
a skipped hour has no starts, a repeated hour has its starts twice (they are different
instants, and both are real times a visit can begin).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from functools import lru_cache
from math import ceil, floor
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from microneedling.core.errors import InputError

DAY = 86_400
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
#: Probe spacing when looking for offset changes; real zones change at most twice a year,
#: never twice within half a day.
_PROBE = DAY // 2


def zone_info(zone: str) -> ZoneInfo:
    """The IANA zone, or :class:`InputError` naming it."""
    try:
        return ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise InputError("zone", f"unknown time zone {zone!r}") from error


def seconds_floor(moment: datetime) -> int:
    """Whole seconds since the Unix epoch, rounded down (``moment`` must be aware)."""
    return floor(moment.timestamp())


def seconds_ceil(moment: datetime) -> int:
    """Whole seconds since the Unix epoch, rounded up (``moment`` must be aware).

    A float timestamp is exact for whole seconds; otherwise the fraction is at least a
    microsecond, well above the float's resolution for centuries around now, so rounding
    cannot land on the wrong second.
    """
    return ceil(moment.timestamp())


def instant(seconds: int) -> datetime:
    """The UTC datetime ``seconds`` after the Unix epoch."""
    return datetime.fromtimestamp(seconds, UTC)


def _offset(tz: ZoneInfo, seconds: int) -> int:
    offset = datetime.fromtimestamp(seconds, tz).utcoffset()
    if offset is None:  # pragma: no cover - a ZoneInfo always answers for an aware datetime
        raise InputError("zone", f"{tz.key} gave no UTC offset")
    return int(offset.total_seconds())


def local_instant(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The first instant on ``day`` at which the wall clock in ``tz`` reads ``at`` or later.

    See the module docstring for why: this one rule covers skipped and repeated readings.
    The answer is in UTC.
    """
    wall = datetime.combine(day, at)
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == wall:
        return first
    # The reading was skipped. fold=0 and fold=1 map it with the offsets on either side of
    # the jump, giving one instant before and one after it; the jump lies between them.
    other = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    low, high = sorted((seconds_floor(first), seconds_floor(other)))
    after = _offset(tz, high)
    while high - low > 1:
        middle = (low + high) // 2
        if _offset(tz, middle) == after:
            high = middle
        else:
            low = middle
    return instant(high)


def day_start(day: date, tz: ZoneInfo) -> datetime:
    """The instant local ``day`` begins (UTC)."""
    return local_instant(day, time(0), tz)


@dataclass(frozen=True, slots=True)
class Clock:
    """The UTC offsets of one zone over a span, as steps ``(from_second, offset)``.

    Built once per search so that converting thousands of candidate starts between UTC and
    local readings is a bisect and an addition instead of a zoneinfo call each.
    """

    steps_from: tuple[int, ...]
    offsets: tuple[int, ...]

    @classmethod
    def covering(cls, tz: ZoneInfo, low: int, high: int) -> Clock:
        """The offsets in force from ``low`` to ``high`` (seconds since the epoch).

        Built from whole UTC years, each worked out once per process (a zone's rules for
        a year do not change while it runs): every search in a year shares them.
        """
        low -= DAY  # margin: a local day may begin before the first instant asked for
        first_year = datetime.fromtimestamp(low, UTC).year
        last_year = datetime.fromtimestamp(high + DAY, UTC).year
        starts: list[int] = []
        offsets: list[int] = []
        for year in range(first_year, last_year + 1):
            year_starts, year_offsets = _year_steps(tz, year)
            for start, offset in zip(year_starts, year_offsets, strict=True):
                if not offsets or offset != offsets[-1]:
                    starts.append(start)
                    offsets.append(offset)
        return cls(tuple(starts), tuple(offsets))

    def grid(self, low: int, high: int, step: int) -> Iterator[int]:
        """Instants in ``[low, high)`` whose local reading is on the grid of ``step`` seconds.

        The grid restarts at every local midnight, so a step that does not divide a day
        (7 minutes) still yields 00:00, 00:07, … on each date.
        """
        index = max(bisect_right(self.steps_from, low) - 1, 0)
        aligned = DAY % step == 0
        while low < high:
            offset = self.offsets[index]
            piece_end = self.steps_from[index + 1] if index + 1 < len(self.steps_from) else high
            piece_end = min(piece_end, high)
            wall, wall_end = _next_on_grid(low + offset, step), piece_end + offset
            while wall < wall_end:
                yield wall - offset
                wall = wall + step if aligned else _next_on_grid(wall + 1, step)
            low, index = piece_end, index + 1

    def first_on_grid(self, low: int, high: int, step: int) -> int | None:
        """The earliest grid instant in ``[low, high)``, or None."""
        return next(self.grid(low, high, step), None)

    def local_seconds(self, day: date, at: time) -> int:
        """:func:`local_instant` in whole seconds (rounded up), without a zoneinfo call.

        Each step of the clock shows the wall readings ``[start + offset, next start +
        offset)``. The first step whose readings reach past ``at`` either shows it (the
        instant is the reading minus the offset; in a repeated hour that is the earlier
        one) or begins after it (the reading was skipped, and the step's first instant is
        the first to read ``at`` or later). ``day`` must lie inside the span covered.
        """
        wall = (day.toordinal() - _EPOCH_ORDINAL) * DAY + at.hour * 3600 + at.minute * 60
        wall += at.second + (at.microsecond > 0)
        last = len(self.offsets) - 1
        for index, offset in enumerate(self.offsets):
            if index == last or wall < self.steps_from[index + 1] + offset:
                if index == 0 and wall - offset < self.steps_from[0]:
                    raise InputError("day", f"{day.isoformat()} is outside the clock's span")
                return max(wall - offset, self.steps_from[index])
        raise AssertionError("unreachable: the last step always answers")  # pragma: no cover


@lru_cache(maxsize=256)
def _year_steps(tz: ZoneInfo, year: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The offset steps of ``tz`` during UTC calendar ``year``, probed every half day."""
    low = int(datetime(year, 1, 1, tzinfo=UTC).timestamp())
    high = int(datetime(year + 1, 1, 1, tzinfo=UTC).timestamp())
    starts, offsets = [low], [_offset(tz, low)]
    probe = low
    while probe < high:
        following = min(probe + _PROBE, high)
        offset = _offset(tz, following)
        if offset != offsets[-1]:
            starts.append(_change_at(tz, probe, following, offset))
            offsets.append(offset)
        probe = following
    return tuple(starts), tuple(offsets)


def _next_on_grid(wall: int, step: int) -> int:
    """The first grid reading at or after ``wall`` (wall-clock seconds since 1970)."""
    midnight = wall - wall % DAY
    candidate = midnight - (midnight - wall) // step * step
    return candidate if candidate < midnight + DAY else midnight + DAY


def _change_at(tz: ZoneInfo, low: int, high: int, after: int) -> int:
    """The first second in ``(low, high]`` at which the offset is ``after`` (binary search)."""
    while high - low > 1:
        middle = (low + high) // 2
        if _offset(tz, middle) == after:
            high = middle
        else:
            low = middle
    return high
