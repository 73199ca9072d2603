"""Send-time arithmetic for messages, in the recipient's own time zone.

Quiet hours are a span of local wall-clock time (21:00 to 08:00, say) during which nothing
that can wait is sent. The span may cross midnight. Daylight-saving changes are handled by
working on local wall-clock times and converting back through the zone: a message pushed to
the end of quiet hours goes out at 08:00 local on the day the clocks change too.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def _in_quiet(clock: time, quiet_from: time, quiet_until: time) -> bool:
    if quiet_from == quiet_until:
        return False  # no quiet hours at all
    if quiet_from < quiet_until:
        return quiet_from <= clock < quiet_until
    return clock >= quiet_from or clock < quiet_until  # the span crosses midnight


def local_moment(day: date, clock: time, zone: str) -> datetime:
    """The aware instant of a local wall-clock time; a time the clocks skip (spring forward)
    resolves to the instant just after the gap, as zoneinfo's ``fold=0`` gives it."""
    tz = ZoneInfo(zone)
    naive_local = datetime.combine(day, clock)
    aware = naive_local.replace(tzinfo=tz)
    # Round-trip through UTC normalises a non-existent local time to a real instant.
    return aware.astimezone(ZoneInfo("UTC")).astimezone(tz)


def outside_quiet_hours(
    moment: datetime, *, zone: str, quiet_from: time, quiet_until: time
) -> datetime:
    """``moment`` if it falls outside quiet hours in ``zone``, otherwise the end of the
    quiet span it falls in (never earlier than ``moment``)."""
    if moment.tzinfo is None:
        raise ValueError("moment must be time-zone aware")
    local = moment.astimezone(ZoneInfo(zone))
    clock = local.time().replace(tzinfo=None)
    if not _in_quiet(clock, quiet_from, quiet_until):
        return moment
    day = local.date()
    if quiet_from > quiet_until and clock >= quiet_from:
        day += timedelta(days=1)  # late evening: quiet ends tomorrow morning
    end = local_moment(day, quiet_until, zone)
    return max(end, moment)
