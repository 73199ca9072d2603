"""Quiet hours: nothing that can wait goes out at night in the patient's own zone."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from microneedling.core.messaging import local_moment, outside_quiet_hours

CHICAGO = "America/Chicago"
NIGHT = {"quiet_from": time(21), "quiet_until": time(8)}


def test_a_late_evening_message_waits_for_the_next_morning() -> None:
    late = datetime(2027, 3, 2, 22, 30, tzinfo=ZoneInfo(CHICAGO))
    moved = outside_quiet_hours(late, zone=CHICAGO, **NIGHT)
    assert moved == datetime(2027, 3, 3, 8, 0, tzinfo=ZoneInfo(CHICAGO))


def test_an_early_morning_message_waits_until_quiet_hours_end_the_same_day() -> None:
    early = datetime(2027, 3, 2, 5, 0, tzinfo=ZoneInfo(CHICAGO))
    assert outside_quiet_hours(early, zone=CHICAGO, **NIGHT) == early.replace(hour=8)


def test_a_daytime_message_is_not_moved() -> None:
    noon = datetime(2027, 3, 2, 12, 0, tzinfo=ZoneInfo(CHICAGO))
    assert outside_quiet_hours(noon, zone=CHICAGO, **NIGHT) == noon


def test_quiet_hours_end_at_eight_local_on_the_night_the_clocks_spring_forward() -> None:
    # 14 March 2027: Chicago moves from UTC-6 to UTC-5 at 02:00.
    night = datetime(2027, 3, 14, 3, 30, tzinfo=UTC)  # 21:30 on the 13th, local
    moved = outside_quiet_hours(night, zone=CHICAGO, **NIGHT).astimezone(ZoneInfo(CHICAGO))
    assert (moved.date().isoformat(), moved.hour, moved.utcoffset()) == (
        "2027-03-14",
        8,
        timedelta(hours=-5),
    )


def test_a_daytime_quiet_span_is_honoured_too() -> None:
    lunch = {"quiet_from": time(12), "quiet_until": time(13)}
    moment = datetime(2027, 3, 2, 12, 20, tzinfo=ZoneInfo(CHICAGO))
    assert outside_quiet_hours(moment, zone=CHICAGO, **lunch) == moment.replace(hour=13, minute=0)


def test_a_naive_moment_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        outside_quiet_hours(datetime(2027, 3, 2, 12), zone=CHICAGO, **NIGHT)  # noqa: DTZ001


def test_a_local_time_skipped_by_the_clocks_resolves_to_a_real_instant() -> None:
    moment = local_moment(datetime(2027, 3, 14).date(), time(2, 30), CHICAGO)  # noqa: DTZ001
    assert moment.utcoffset() == timedelta(hours=-5)


ZONES = st.sampled_from([CHICAGO, "Europe/London", "Asia/Kolkata", "Australia/Sydney"])
CLOCKS = st.times().map(lambda t: t.replace(second=0, microsecond=0))
# An end of quiet hours inside the hour the clocks skip would not exist on that one day.
ENDS = CLOCKS.filter(lambda t: not time(1) <= t < time(4))


def _quiet(clock: time, quiet_from: time, quiet_until: time) -> bool:
    if quiet_from == quiet_until:
        return False
    if quiet_from < quiet_until:
        return quiet_from <= clock < quiet_until
    return clock >= quiet_from or clock < quiet_until


@given(
    moment=st.datetimes(
        min_value=datetime(2026, 1, 1),  # noqa: DTZ001
        max_value=datetime(2030, 1, 1),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
    zone=ZONES,
    quiet_from=CLOCKS,
    quiet_until=ENDS,
)
def test_the_send_time_is_never_earlier_never_quiet_and_unchanged_when_allowed(
    moment: datetime, zone: str, quiet_from: time, quiet_until: time
) -> None:
    sent = outside_quiet_hours(moment, zone=zone, quiet_from=quiet_from, quiet_until=quiet_until)
    before = moment.astimezone(ZoneInfo(zone)).time()
    after = sent.astimezone(ZoneInfo(zone)).time()
    assert sent >= moment
    assert sent - moment <= timedelta(hours=25)  # at most one quiet span, plus a DST hour
    assert not _quiet(after, quiet_from, quiet_until)
    if not _quiet(before, quiet_from, quiet_until):
        assert sent == moment
    else:
        assert after == quiet_until  # it goes out the moment quiet hours end
