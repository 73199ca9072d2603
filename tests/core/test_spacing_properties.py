"""Spacing between treatments of the same skin (hypothesis): the blocked days are exactly
the days too close to a treatment of shared skin, in the zone's local days."""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from microneedling.core.knowledge import load_pack
from microneedling.core.series.spacing import (
    Treatment,
    day_blocked,
    first_unblocked,
    spacing_blocks,
    too_close,
)

PACK = load_pack()
AREAS = ["face", "face.forehead", "face.periorbital", "neck", "chest", "hands"]
ZONES = ["America/Chicago", "Europe/Berlin", "Australia/Sydney"]
START = date(2027, 1, 1)

treatments = st.lists(
    st.builds(
        Treatment,
        day=st.integers(0, 200).map(lambda n: START + timedelta(days=n)),
        # No area at all: a service set up without them.
        areas=st.lists(st.sampled_from(AREAS), min_size=0, max_size=2).map(tuple),
    ),
    max_size=5,
)


@given(
    treatments,
    st.lists(st.sampled_from(AREAS), min_size=1, max_size=2),
    st.integers(1, 60),
    st.sampled_from(ZONES),
    st.integers(-70, 270),
)
def test_a_day_is_blocked_exactly_when_a_treatment_of_shared_skin_is_too_close(
    done, areas, min_days, zone, offset
) -> None:
    day = START + timedelta(days=offset)
    blocks = spacing_blocks(done, areas, min_days=min_days, zone=zone, overlap=PACK.skin_shared)
    close = too_close(day, areas, done, min_days=min_days, overlap=PACK.skin_shared)
    expected = any(
        abs((t.day - day).days) < min_days
        and (not t.areas or any(PACK.skin_shared(a, b) for a in areas for b in t.areas))
        for t in done
    )
    assert (close is not None) == expected
    assert day_blocked(blocks, day, zone) == expected
    free = first_unblocked(blocks, day, zone)
    assert free >= day and not day_blocked(blocks, free, zone)
    assert all(day_blocked(blocks, day + timedelta(days=n), zone) for n in range((free - day).days))


@given(treatments, st.sampled_from(ZONES))
def test_blocks_are_whole_local_days_and_aware(done, zone) -> None:
    tz = ZoneInfo(zone)
    for start, end in spacing_blocks(
        done, ["face"], min_days=28, zone=zone, overlap=PACK.skin_shared
    ):
        assert start.tzinfo is not None and end.tzinfo is not None
        for edge in (start, end):
            local = edge.astimezone(tz)
            # These zones change their clocks in the small hours, never at midnight.
            assert (local.hour, local.minute) == (0, 0)


def test_a_part_of_an_area_shares_skin_with_the_whole_but_not_with_a_neighbour() -> None:
    assert PACK.skin_shared("face.forehead", "face")
    assert PACK.skin_shared("face", "face.periorbital")
    assert not PACK.skin_shared("face.forehead", "face.periorbital")
    assert not PACK.skin_shared("face", "neck")
    # A code the pack no longer has shares skin with itself only.
    assert PACK.skin_shared("retired_area", "retired_area")
    assert not PACK.skin_shared("retired_area", "face")


def test_a_treatment_without_areas_shares_skin_with_every_treatment() -> None:
    anywhere = Treatment(day=START, areas=())
    assert too_close(START, ["hands"], [anywhere], min_days=28, overlap=PACK.skin_shared)
    assert too_close(
        START, [], [Treatment(day=START, areas=("neck",))], min_days=28, overlap=PACK.skin_shared
    )


def test_a_spacing_of_less_than_a_day_is_refused() -> None:
    with pytest.raises(ValueError, match="min_days"):
        spacing_blocks([], ["face"], min_days=0, zone="UTC", overlap=PACK.skin_shared)
