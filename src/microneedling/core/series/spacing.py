"""Spacing between treatments of the same skin, whichever course or visit they belong to.

A course spaces its own sessions (its plan's gap), but a patient may also have another
course, or single treatment visits, on the same area: two courses of the face booked a
fortnight apart would needle the face every two weeks, half the shortest interval any source
allows. This module turns the patient's other treatments into whole local days on which a
new treatment of an overlapping area may not fall, in the same ``(start, end)`` form as the
patient's other visits, so that every search can plan around them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from microneedling.core.availability.clock import zone_info

AreasOverlap = Callable[[str, str], bool]


@dataclass(frozen=True)
class Treatment:
    """One of the patient's treatments: its local day and the areas it treats."""

    day: date
    areas: tuple[str, ...]


def shares_skin(first: Iterable[str], second: Iterable[str], overlap: AreasOverlap) -> bool:
    """Whether two sets of areas share any skin (``overlap`` says so for one pair). A
    treatment that names no area (a service set up without them) may be anywhere, so it
    shares skin with every treatment: the safe reading."""
    first, second = tuple(first), tuple(second)
    if not first or not second:
        return True
    return any(overlap(a, b) for a in first for b in second)


def too_close(
    day: date,
    areas: Sequence[str],
    treatments: Iterable[Treatment],
    *,
    min_days: int,
    overlap: AreasOverlap,
) -> Treatment | None:
    """The first treatment of skin shared with ``areas`` fewer than ``min_days`` days from
    ``day`` (either side), or ``None``."""
    for treatment in treatments:
        if abs((treatment.day - day).days) < min_days and shares_skin(
            areas, treatment.areas, overlap
        ):
            return treatment
    return None


def spacing_blocks(
    treatments: Iterable[Treatment],
    areas: Sequence[str],
    *,
    min_days: int,
    zone: str,
    overlap: AreasOverlap,
) -> tuple[tuple[datetime, datetime], ...]:
    """Stretches of whole local days (aware instants in ``zone``) on which a treatment of
    ``areas`` would come fewer than ``min_days`` days before or after one of
    ``treatments`` of shared skin; treatments of other skin block nothing."""
    if min_days < 1:
        raise ValueError("min_days must be at least 1")
    tz = zone_info(zone)
    blocks = []
    for treatment in sorted(treatments, key=lambda t: t.day):
        if not shares_skin(areas, treatment.areas, overlap):
            continue
        first = treatment.day - timedelta(days=min_days - 1)
        after = treatment.day + timedelta(days=min_days)
        blocks.append(
            (
                datetime.combine(first, time.min, tzinfo=tz),
                datetime.combine(after, time.min, tzinfo=tz),
            )
        )
    return tuple(blocks)


def day_blocked(blocks: Iterable[tuple[datetime, datetime]], day: date, zone: str) -> bool:
    """Whether ``day`` (a local day in ``zone``) lies in one of ``blocks``."""
    noon = datetime.combine(day, time(12), tzinfo=zone_info(zone))  # inside the day, always
    return any(start <= noon < end for start, end in blocks)


def first_unblocked(blocks: Sequence[tuple[datetime, datetime]], day: date, zone: str) -> date:
    """The first local day from ``day`` on that no block covers (blocks are finite)."""
    while day_blocked(blocks, day, zone):
        day += timedelta(days=1)
    return day
