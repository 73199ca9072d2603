"""Availability: free time from local hours, interval set operations, and slot starts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from microneedling.core.availability import (
    Interval,
    Phase,
    Resource,
    Slot,
    find_starts,
    free_time,
    intersect,
    subtract,
    union,
)
from microneedling.core.errors import InputError

CHICAGO = "America/Chicago"
BERLIN = "Europe/Berlin"
TZ = ZoneInfo(CHICAGO)
DAY = date(2027, 6, 8)  # a Tuesday, far from any clock change
EVERY_DAY = {weekday: [(time(9), time(17))] for weekday in range(7)}

MICRONEEDLING = (
    Phase("check_in", 10, ("room",)),
    Phase("numbing", 30, ("room",)),
    Phase("procedure", 30, ("provider", "room", "device")),
    Phase("serum", 10, ("room",)),
)


def at(hour: int, minute: int = 0, day: date = DAY, zone: ZoneInfo = TZ) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=zone)


def span(start: datetime, end: datetime) -> Interval:
    return Interval(start, end)


def local(interval: Interval, zone: ZoneInfo = TZ) -> tuple[str, str]:
    return (
        interval.start.astimezone(zone).strftime("%H:%M"),
        interval.end.astimezone(zone).strftime("%H:%M"),
    )


def open_all_day(day: date = DAY, zone: ZoneInfo = TZ) -> list[Interval]:
    return [span(at(9, day=day, zone=zone), at(17, day=day, zone=zone))]


def starts(
    resources: Sequence[Resource],
    *,
    phases: Sequence[Phase] = MICRONEEDLING,
    day: date = DAY,
    grid: int = 15,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    **options: object,
) -> list[Slot]:
    first = datetime.combine(day, time(0), tzinfo=TZ)
    last = first + timedelta(days=1)
    return find_starts(
        phases=phases,
        resources=resources,
        start=first,
        end=last,
        grid_minutes=grid,
        zone=CHICAGO,
        not_before=not_before or first,
        not_after=not_after or last,
        **options,  # type: ignore[arg-type]
    )


def clock_times(slots: Sequence[Slot]) -> list[str]:
    return [s.start.astimezone(TZ).strftime("%H:%M") for s in slots]


def team(
    provider: list[Interval] | None = None,
    rooms: Sequence[list[Interval]] | None = None,
    devices: Sequence[list[Interval]] | None = None,
) -> list[Resource]:
    """A provider, rooms and devices, each free all day unless given."""
    resources = [Resource("provider:ana", "provider", provider or open_all_day())]
    for index, free in enumerate(rooms or [open_all_day()], start=1):
        resources.append(Resource(f"room:{index}", "room", free))
    for index, free in enumerate(devices or [open_all_day()], start=1):
        resources.append(Resource(f"device:{index}", "device", free))
    return resources


# --- intervals -----------------------------------------------------------------------------


def test_interval_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="time-zone aware"):
        Interval(datetime(2027, 6, 8, 9), at(10))  # noqa: DTZ001 - the point of the test


def test_interval_refuses_an_end_before_its_start() -> None:
    with pytest.raises(InputError, match="before"):
        Interval(at(10), at(9))


def test_intersect_keeps_only_shared_time() -> None:
    a = [span(at(9), at(12)), span(at(13), at(17))]
    b = [span(at(11), at(14))]
    assert [local(i) for i in intersect(a, b)] == [("11:00", "12:00"), ("13:00", "14:00")]


def test_subtract_cuts_bookings_out_of_free_time() -> None:
    free = [span(at(9), at(17))]
    booked = [span(at(8), at(9, 30)), span(at(10), at(11)), span(at(10, 30), at(12))]
    assert [local(i) for i in subtract(free, booked)] == [
        ("09:30", "10:00"),
        ("12:00", "17:00"),
    ]


def test_union_merges_touching_intervals() -> None:
    merged = union([span(at(9), at(10))], [span(at(10), at(11)), span(at(12), at(13))])
    assert [local(i) for i in merged] == [("09:00", "11:00"), ("12:00", "13:00")]


def test_set_operations_answer_in_utc() -> None:
    result = intersect([span(at(9), at(10))], [span(at(8), at(11))])
    assert result[0].start.tzinfo is UTC
    assert result[0].start == at(9)


def test_set_operations_refuse_unsorted_input() -> None:
    with pytest.raises(InputError, match="sorted"):
        subtract([span(at(9), at(17))], [span(at(13), at(14)), span(at(10), at(11))])


# --- free time -----------------------------------------------------------------------------


def test_free_time_follows_weekly_local_hours() -> None:
    free = free_time(
        days=(date(2027, 6, 7), date(2027, 6, 13)),
        zone=CHICAGO,
        weekly={0: [(time(9), time(12)), (time(13), time(17))], 5: [(time(10), time(14))]},
    )
    assert [(i.start.astimezone(TZ).date().isoformat(), *local(i)) for i in free] == [
        ("2027-06-07", "09:00", "12:00"),
        ("2027-06-07", "13:00", "17:00"),
        ("2027-06-12", "10:00", "14:00"),
    ]
    assert all(i.start.tzinfo is UTC for i in free)


def test_local_hours_survive_spring_forward() -> None:
    # Chicago moves from UTC-6 to UTC-5 at 02:00 on Sunday 2027-03-14.
    free = free_time(days=(date(2027, 3, 13), date(2027, 3, 15)), zone=CHICAGO, weekly=EVERY_DAY)
    assert [local(i) for i in free] == [("09:00", "17:00")] * 3
    assert [i.start.astimezone(UTC).hour for i in free] == [15, 14, 14]


def test_local_hours_survive_fall_back() -> None:
    # Chicago moves from UTC-5 back to UTC-6 at 02:00 on Sunday 2027-11-07.
    free = free_time(days=(date(2027, 11, 6), date(2027, 11, 8)), zone=CHICAGO, weekly=EVERY_DAY)
    assert [local(i) for i in free] == [("09:00", "17:00")] * 3
    assert [i.start.astimezone(UTC).hour for i in free] == [14, 15, 15]


@pytest.mark.parametrize(
    ("first", "utc_hours"),
    [(date(2027, 3, 27), [8, 7]), (date(2027, 10, 30), [7, 8])],
)
def test_local_hours_survive_berlin_clock_changes(first: date, utc_hours: list[int]) -> None:
    berlin = ZoneInfo(BERLIN)
    free = free_time(days=(first, first + timedelta(days=1)), zone=BERLIN, weekly=EVERY_DAY)
    assert [local(i, berlin) for i in free] == [("09:00", "17:00")] * 2
    assert [i.start.astimezone(UTC).hour for i in free] == utc_hours


def test_hours_in_the_skipped_hour_start_and_end_at_the_jump() -> None:
    # 02:00–02:59 does not exist on 2027-03-14: the clock jumps from 01:59:59 to 03:00.
    sunday = date(2027, 3, 14)
    free = free_time(
        days=(sunday, sunday),
        zone=CHICAGO,
        weekly={6: [(time(0, 30), time(2, 30)), (time(2, 45), time(4))]},
    )
    # Both ranges reach the jump (08:00 UTC = 03:00 local), so they merge into one.
    assert [local(i) for i in free] == [("00:30", "04:00")]
    only_late = free_time(days=(sunday, sunday), zone=CHICAGO, weekly={6: [(time(2, 30), time(5))]})
    assert only_late == [Interval(datetime(2027, 3, 14, 8, tzinfo=UTC), at(5, day=sunday))]


def test_hours_at_a_repeated_time_use_its_first_reading() -> None:
    # 01:00–01:59 happens twice on 2027-11-07 (first at UTC-5, then at UTC-6).
    sunday = date(2027, 11, 7)
    free = free_time(days=(sunday, sunday), zone=CHICAGO, weekly={6: [(time(0), time(1, 30))]})
    assert free == [
        Interval(datetime(2027, 11, 7, 5, tzinfo=UTC), datetime(2027, 11, 7, 6, 30, tzinfo=UTC))
    ]


def test_closed_days_remove_whole_local_days() -> None:
    free = free_time(
        days=(date(2027, 6, 7), date(2027, 6, 9)),
        zone=CHICAGO,
        weekly=EVERY_DAY,
        closed_days={date(2027, 6, 8)},
    )
    assert [i.start.astimezone(TZ).day for i in free] == [7, 9]


def test_partial_leave_and_bookings_are_subtracted_unsorted() -> None:
    free = free_time(
        days=(DAY, DAY),
        zone=CHICAGO,
        weekly=EVERY_DAY,
        extra_blocks=[span(at(15), at(18))],
        busy=[span(at(11), at(12)), span(at(9), at(9, 30))],
    )
    assert [local(i) for i in free] == [("09:30", "11:00"), ("12:00", "15:00")]


def test_closing_at_midnight_means_the_end_of_the_day() -> None:
    free = free_time(days=(DAY, DAY), zone=CHICAGO, weekly={1: [(time(18), time(0))]})
    assert free == [Interval(at(18), at(0, day=DAY + timedelta(days=1)))]


@pytest.mark.parametrize(
    ("weekly", "field"),
    [
        ({7: [(time(9), time(17))]}, "weekly.7"),
        ({1: [(time(17), time(9))]}, "weekly.1.0"),
        ({1: [(time(9, tzinfo=UTC), time(17))]}, "weekly.1.0"),
    ],
)
def test_free_time_refuses_impossible_hours(
    weekly: dict[int, list[tuple[time, time]]], field: str
) -> None:
    with pytest.raises(InputError) as caught:
        free_time(days=(DAY, DAY), zone=CHICAGO, weekly=weekly)
    assert caught.value.field == field


def test_free_time_refuses_an_unknown_zone() -> None:
    with pytest.raises(InputError, match="unknown time zone"):
        free_time(days=(DAY, DAY), zone="Mars/Olympus_Mons", weekly=EVERY_DAY)


# --- resources and phases -------------------------------------------------------------------


def test_phase_refuses_an_unknown_resource_kind() -> None:
    with pytest.raises(InputError, match="unknown resource kind"):
        Phase("procedure", 30, ("laser",))


def test_resource_refuses_overlapping_free_time() -> None:
    with pytest.raises(InputError, match="must not overlap"):
        Resource("room:1", "room", [span(at(9), at(12)), span(at(11), at(13))])


def test_resource_merges_touching_free_time_so_a_visit_may_cross_the_seam() -> None:
    room = Resource("room:1", "room", [span(at(9), at(9, 40)), span(at(9, 40), at(10, 30))])
    assert room.free == (span(at(9), at(10, 30)),)
    slots = starts(team(rooms=[list(room.free)]))
    assert clock_times(slots)[0] == "09:00"


# --- slot starts ----------------------------------------------------------------------------


def test_a_free_day_offers_every_grid_start_that_ends_by_closing() -> None:
    slots = starts(team())
    times = clock_times(slots)
    assert times[0] == "09:00"
    assert times[-1] == "15:30"  # 80 minutes: 15:30 ends at 16:50, 15:45 would end at 17:05
    assert len(times) == 27
    first = slots[0]
    assert first.end - first.start == timedelta(minutes=80)
    assert dict(first.assignment["procedure"]) == {
        "provider": "provider:ana",
        "room": "room:1",
        "device": "device:1",
    }
    assert first.provider_id == "provider:ana"


def test_phases_share_one_room() -> None:
    # Room 1 is free only until 09:40 and room 2 only from 09:40: together they would cover
    # a 09:00 visit, but the patient does not change rooms.
    room_one = [span(at(9), at(9, 40))]
    room_two = [span(at(9, 40), at(17))]
    slots = starts(team(rooms=[room_one, room_two]))
    assert clock_times(slots)[0] == "09:45"
    assert {code: needs["room"] for code, needs in slots[0].assignment.items()} == {
        "check_in": "room:2",
        "numbing": "room:2",
        "procedure": "room:2",
        "serum": "room:2",
    }


def test_rooms_may_change_between_phases_when_allowed() -> None:
    room_one = [span(at(9), at(9, 40))]
    room_two = [span(at(9, 40), at(17))]
    slots = starts(team(rooms=[room_one, room_two]), same_room=False)
    assert clock_times(slots)[0] == "09:00"
    assert slots[0].assignment["numbing"]["room"] == "room:1"
    assert slots[0].assignment["procedure"]["room"] == "room:2"


def test_provider_free_while_patient_numbs_allows_overlapping_visits() -> None:
    # Ana treats another patient 09:40–10:10. A visit starting 09:30 numbs in its room from
    # 09:40 to 10:10 and needs Ana only from 10:10: it overlaps her other visit.
    provider = subtract(open_all_day(), [span(at(9, 40), at(10, 10))])
    room_two_busy = [span(at(9), at(10, 20))]  # the other patient's room
    slots = starts(team(provider=provider, rooms=[room_two_busy, open_all_day()]))
    times = clock_times(slots)
    assert "09:30" in times
    assert "09:00" not in times  # its procedure (09:40) would meet the other one
    assert "09:15" not in times
    chosen = slots[times.index("09:30")]
    assert chosen.assignment["procedure"]["provider"] == "provider:ana"


def test_procedure_waits_for_a_free_device() -> None:
    device = [span(at(9), at(10)), span(at(11), at(17))]
    times = clock_times(starts(team(devices=[device])))
    assert "08:45" not in times
    assert "09:00" not in times  # its procedure 09:40–10:10 overruns the device
    assert "09:15" not in times
    assert "10:15" not in times  # procedure 10:55–11:25 starts before the device is back
    assert "10:30" in times


def test_the_first_listed_resource_that_fits_is_chosen() -> None:
    resources = team(rooms=[[span(at(9), at(10))], open_all_day()], devices=[[], open_all_day()])
    slots = starts(resources)
    by_time = {clock_times([s])[0]: s for s in slots}
    assert by_time["09:00"].assignment["check_in"]["room"] == "room:2"  # room 1 too short
    assert by_time["09:00"].assignment["procedure"]["device"] == "device:2"
    reordered = list(reversed(resources))
    assert starts(reordered)[0].assignment["check_in"]["room"] == "room:2"


def test_minimum_notice_hides_early_starts() -> None:
    slots = starts(team(), not_before=at(11, 5))
    assert clock_times(slots)[0] == "11:15"


def test_booking_horizon_hides_late_starts_but_not_visits_running_past_it() -> None:
    slots = starts(team(), not_after=at(12))
    times = clock_times(slots)
    assert times[-1] == "11:45"
    assert slots[-1].end > at(12)


def test_grid_counts_from_local_midnight() -> None:
    provider = [span(at(9, 10), at(17))]
    times = clock_times(starts(team(provider=provider), grid=20))
    # The procedure needs Ana from start + 40 minutes, so 08:40 would already work for her,
    # but the rooms open at 09:00; 20-minute steps from midnight give 09:00, 09:20, ...
    assert times[:3] == ["09:00", "09:20", "09:40"]


def test_a_grid_that_does_not_divide_the_day_restarts_at_midnight() -> None:
    first = datetime.combine(DAY, time(23), tzinfo=TZ)
    always = [span(first - timedelta(days=1), first + timedelta(days=1))]
    phases = (Phase("consult", 10, ("room",)),)
    slots = find_starts(
        phases=phases,
        resources=[Resource("room:1", "room", always)],
        start=first,
        end=first + timedelta(hours=2),
        grid_minutes=7,
        zone=CHICAGO,
        not_before=first,
        not_after=first + timedelta(hours=2),
    )
    times = [s.start.astimezone(TZ).strftime("%H:%M") for s in slots]
    # 23:06 is 198 × 7 minutes after midnight; 23:55 is the last reading before the next one.
    assert times[:2] == ["23:06", "23:13"]
    index = times.index("23:55")
    assert times[index : index + 3] == ["23:55", "00:00", "00:07"]


@pytest.mark.parametrize(
    ("sunday", "count"),
    [(date(2027, 3, 14), 23 * 4), (date(2027, 11, 7), 25 * 4), (DAY, 24 * 4)],
)
def test_a_day_has_a_start_for_each_real_quarter_hour(sunday: date, count: int) -> None:
    """Skipped readings have no start; repeated ones have two (different instants)."""
    first = datetime.combine(sunday, time(0), tzinfo=TZ)
    last = datetime.combine(sunday + timedelta(days=1), time(0), tzinfo=TZ)
    always = [span(first - timedelta(days=1), last + timedelta(days=1))]
    slots = find_starts(
        phases=(Phase("consult", 15, ("room",)),),
        resources=[Resource("room:1", "room", always)],
        start=first,
        end=last,
        grid_minutes=15,
        zone=CHICAGO,
        not_before=first,
        not_after=last,
    )
    assert len(slots) == count
    readings = [s.start.astimezone(TZ).strftime("%H:%M") for s in slots]
    if sunday.month == 3:
        assert "02:30" not in readings
    if sunday.month == 11:
        assert readings.count("01:30") == 2


def test_grid_readings_follow_the_local_clock_through_a_change() -> None:
    """On a 45-minute grid the offset matters: 01:30 and 03:00 are half an hour apart."""
    sunday = date(2027, 3, 14)
    first = datetime.combine(sunday, time(0), tzinfo=TZ)
    always = [span(first - timedelta(days=1), first + timedelta(days=2))]
    slots = find_starts(
        phases=(Phase("consult", 15, ("room",)),),
        resources=[Resource("room:1", "room", always)],
        start=first,
        end=first + timedelta(hours=6),
        grid_minutes=45,
        zone=CHICAGO,
        not_before=first,
        not_after=first + timedelta(hours=6),
    )
    readings = [s.start.astimezone(TZ).strftime("%H:%M") for s in slots]
    assert readings[:6] == ["00:00", "00:45", "01:30", "03:00", "03:45", "04:30"]
    assert slots[3].start - slots[2].start == timedelta(minutes=30)


def test_starts_keep_their_local_times_across_spring_forward() -> None:
    first = date(2027, 3, 13)
    free = free_time(days=(first, first + timedelta(days=2)), zone=CHICAGO, weekly=EVERY_DAY)
    resources = [
        Resource("provider:ana", "provider", free),
        Resource("room:1", "room", free),
        Resource("device:1", "device", free),
    ]
    begin = datetime.combine(first, time(0), tzinfo=TZ)
    slots = find_starts(
        phases=MICRONEEDLING,
        resources=resources,
        start=begin,
        end=begin + timedelta(days=3),
        grid_minutes=15,
        zone=CHICAGO,
        not_before=begin,
        not_after=begin + timedelta(days=3),
    )
    by_day: dict[int, list[str]] = {}
    for slot in slots:
        reading = slot.start.astimezone(TZ)
        by_day.setdefault(reading.day, []).append(reading.strftime("%H:%M"))
    assert by_day[13] == by_day[14] == by_day[15]
    assert by_day[14][0] == "09:00"


def test_every_provider_offers_one_slot_per_provider_and_start() -> None:
    resources = [
        Resource("provider:ana", "provider", open_all_day()),
        Resource("provider:ben", "provider", [span(at(13), at(17))]),
        Resource("room:1", "room", open_all_day()),
        Resource("room:2", "room", open_all_day()),
        Resource("device:1", "device", open_all_day()),
        Resource("device:2", "device", open_all_day()),
    ]
    single = starts(resources)
    every = starts(resources, every_provider=True)
    assert len(single) == 27
    assert {s.provider_id for s in single} == {"provider:ana"}
    ben = [s for s in every if s.provider_id == "provider:ben"]
    assert clock_times(ben)[0] == "12:30"  # Ben's procedure starts at 13:10
    assert len(every) == 27 + len(ben)
    assert [s.start for s in every] == sorted(s.start for s in every)
    # The same start is offered by Ana first, then by Ben.
    same_time = [s for s in every if s.start == ben[0].start]
    assert [s.provider_id for s in same_time] == ["provider:ana", "provider:ben"]
    assert same_time[0] != same_time[1]  # same span, different assignment
    assert len(set(same_time)) == 2  # hashable, and both kept


def test_provider_ids_restrict_the_providers() -> None:
    resources = [
        Resource("provider:ana", "provider", open_all_day()),
        Resource("provider:ben", "provider", [span(at(13), at(17))]),
        *team()[1:],
    ]
    slots = starts(resources, provider_ids=["provider:ben"])
    assert {s.provider_id for s in slots} == {"provider:ben"}
    assert clock_times(slots)[0] == "12:30"


def test_no_slots_without_a_resource_of_a_needed_kind() -> None:
    resources = [r for r in team() if r.kind != "device"]
    assert starts(resources) == []


def test_slot_assignments_are_read_only() -> None:
    slot = starts(team())[0]
    with pytest.raises(TypeError):
        slot.assignment["procedure"]["room"] = "room:9"  # type: ignore[index]


def test_find_starts_refuses_naive_datetimes() -> None:
    with pytest.raises(InputError) as caught:
        find_starts(
            phases=MICRONEEDLING,
            resources=team(),
            start=datetime(2027, 6, 8),  # noqa: DTZ001 - the point of the test
            end=at(17),
            grid_minutes=15,
            zone=CHICAGO,
            not_before=at(0),
            not_after=at(23),
        )
    assert caught.value.field == "start"


@pytest.mark.parametrize(
    ("phases", "grid", "problem"),
    [
        ((), 15, "at least one phase"),
        ((Phase("a", 10, ("room",)), Phase("a", 10, ("room",))), 15, "unique"),
        (MICRONEEDLING, 0, "positive"),
    ],
)
def test_find_starts_refuses_a_malformed_service(
    phases: tuple[Phase, ...], grid: int, problem: str
) -> None:
    with pytest.raises(InputError, match=problem):
        starts(team(), phases=phases, grid=grid)


def test_phase_refuses_a_non_positive_duration() -> None:
    with pytest.raises(InputError, match="positive"):
        Phase("numbing", 0, ("room",))
