"""Retention dates: properties that must hold for every patient."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from microneedling.core.retention import add_years, retain_until

DAYS = st.dates(min_value=date(1920, 1, 1), max_value=date(2090, 12, 31))


@given(
    closed=DAYS,
    last=st.one_of(st.none(), DAYS),
    born=DAYS,
    years=st.integers(0, 30),
    age=st.integers(0, 30),
)
def test_records_are_kept_for_every_rule_at_once(closed, last, born, years, age) -> None:  # type: ignore[no-untyped-def]
    until = retain_until(
        closed_on=closed,
        last_treatment=last,
        birth_date=born,
        adult_years=years,
        minor_until_age=age,
    )
    assert until >= closed
    assert until >= add_years(last or closed, years)
    assert until >= add_years(born, age)
    # And no later than the latest of the rules asks.
    assert until in {closed, add_years(last or closed, years), add_years(born, age)}


def test_a_minor_treated_at_fifteen_is_kept_until_twenty_one_when_that_is_later() -> None:
    until = retain_until(
        closed_on=date(2027, 6, 1),
        last_treatment=date(2027, 5, 1),
        birth_date=date(2012, 3, 10),
        adult_years=7,
        minor_until_age=21,
    )
    assert until == date(2034, 5, 1)  # seven years after: later than 21 (2033-03-10)
    younger = retain_until(
        closed_on=date(2027, 6, 1),
        last_treatment=date(2027, 5, 1),
        birth_date=date(2020, 3, 10),
        adult_years=7,
        minor_until_age=21,
    )
    assert younger == date(2041, 3, 10)


def test_a_leap_day_moves_to_the_twenty_eighth() -> None:
    assert add_years(date(2028, 2, 29), 7) == date(2035, 2, 28)


def test_negative_periods_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        retain_until(
            closed_on=date(2027, 1, 1),
            last_treatment=None,
            birth_date=date(1990, 1, 1),
            adult_years=-1,
            minor_until_age=21,
        )
