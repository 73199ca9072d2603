"""How long a closed patient's records must be kept before they may be erased.

Medical records outlive the account: the law where the clinic practises sets a number of
years after the last treatment, and for a patient treated as a minor, until some age at
least. Both numbers are the deployment's (see ``MICRONEEDLING["RETENTION"]``); this module
only does the date arithmetic, the same everywhere.
"""

from __future__ import annotations

from datetime import date


def add_years(day: date, years: int) -> date:
    """``day`` moved ``years`` on; 29 February becomes 28 February in a common year."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def retain_until(
    *,
    closed_on: date,
    last_treatment: date | None,
    birth_date: date,
    adult_years: int,
    minor_until_age: int,
) -> date:
    """The first day the records may be erased: ``adult_years`` after the last treatment
    (or after closing, if never treated), and not before the patient turns
    ``minor_until_age``; never before the account was closed."""
    if adult_years < 0 or minor_until_age < 0:
        raise ValueError("retention periods cannot be negative")
    counted_from = last_treatment or closed_on
    return max(
        add_years(counted_from, adult_years),
        add_years(birth_date, minor_until_age),
        closed_on,
    )
