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
    shortest_needs,
)
from microneedling.core.availability.hours import WeeklyHours, free_time, open_seconds
from microneedling.core.availability.intervals import (
    FreeSeconds,
    Interval,
    intersect,
    intersect_pairs,
    subtract,
    subtract_pairs,
    union,
    union_pairs,
)

__all__ = [
    "KINDS",
    "FreeSeconds",
    "Interval",
    "Phase",
    "Resource",
    "Slot",
    "WeeklyHours",
    "find_starts",
    "free_time",
    "intersect",
    "intersect_pairs",
    "open_seconds",
    "shortest_needs",
    "subtract",
    "subtract_pairs",
    "union",
    "union_pairs",
]
