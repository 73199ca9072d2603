"""Availability: free time from hours and bookings, and the starts at which a visit fits.

See :func:`free_time` for one resource's free time, :func:`intersect` / :func:`subtract` /
:func:`union` to combine constraints, and :func:`find_starts` for a service's start times.
"""

from microneedling.core.availability.engine import (
    KINDS,
    Phase,
    Resource,
    Slot,
    find_starts,
)
from microneedling.core.availability.hours import WeeklyHours, free_time
from microneedling.core.availability.intervals import (
    Interval,
    from_utc_pairs,
    intersect,
    subtract,
    union,
)

__all__ = [
    "KINDS",
    "Interval",
    "Phase",
    "Resource",
    "Slot",
    "WeeklyHours",
    "find_starts",
    "free_time",
    "from_utc_pairs",
    "intersect",
    "subtract",
    "union",
]
